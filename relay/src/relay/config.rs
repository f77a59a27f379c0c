//! The relay's settings, from `VIGIL_*` environment variables (each in the
//! README with its default). A bad value is an error naming the variable.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use vigil_core::decision::{SafetyPolicy, SlaPolicy};
use vigil_core::net::ProtectedTargets;
use vigil_core::retention::Retention;
use vigil_ingest::execution::DecisionRules;

use super::jobs::JOBS;
use super::vars::{duration, event_retention_ms, number};
use super::webhook::WebhookConfig;
use vigil_core::token::{Expectations, KeySet};
use vigil_ingest::sensor::Liveness;

#[derive(Clone, Debug)]
pub struct Config {
    /// `VIGIL_RELAY_LISTEN` (default `127.0.0.1:3001`).
    pub listen: SocketAddr,
    /// `VIGIL_JWT_PUBLIC_KEYS`: the JWKS the app's `jwt_public_keys` holds.
    pub keys: KeySet,
    /// `VIGIL_JWT_ISSUER`, `VIGIL_JWT_AUDIENCE` (default `vigil` each).
    pub expect: Expectations,
    /// `VIGIL_RELAY_POLL_MS` (default 50).
    pub poll: Duration,
    /// `VIGIL_RELAY_CLIENT_QUEUE` (default 1024 messages, at least one poll's batch).
    pub client_queue: usize,
    /// `VIGIL_RELAY_MAX_CONNECTIONS` (default 10000).
    pub max_connections: usize,
    /// `VIGIL_RELAY_ALLOWED_ORIGINS`: exact origins (`scheme://host[:port]`)
    /// browsers may connect from; empty: only clients that send no `Origin`.
    pub allowed_origins: Vec<String>,
    /// `VIGIL_RELAY_PING_MS` (default 20000): the heartbeat; two unanswered
    /// pings close the socket.
    pub ping: Duration,
    /// `VIGIL_RELAY_AUTH_TIMEOUT_MS` (default 5000): time to authenticate.
    pub auth_timeout: Duration,
    /// `VIGIL_SENSOR_ONLINE_SECONDS`, `VIGIL_SENSOR_OFFLINE_SECONDS` (120,
    /// 600): a sensor's status in snapshots, as the app's variables say.
    pub liveness: Liveness,
    /// `VIGIL_RELAY_SEND_BUFFER` (default 65536 bytes): each socket's kernel
    /// send buffer. Bounded so that what a slow client has not read piles up
    /// in its queue, where it is counted, rather than unseen in the kernel.
    pub send_buffer: usize,
    /// `VIGIL_MQTT_*`: MQTT ingestion, when `VIGIL_MQTT_URL` is set.
    pub mqtt: Option<super::ingest::MqttConfig>,
    /// `VIGIL_JOB_*`, `VIGIL_OUTBOX_RETENTION`: the scheduled jobs.
    pub jobs: super::jobs::JobsConfig,
    /// `VIGIL_RELAY_DB_CONNECTIONS` (default 4): connections for
    /// authentication, snapshots and replays (the poller has its own).
    pub db_connections: usize,
}

/// Largest inbound message; a bigger one closes the socket with 1009.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

impl Config {
    /// From the process environment.
    pub fn from_env() -> Result<Config> {
        Config::from_lookup(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    /// From any variable lookup (tests pass a map).
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Config> {
        let number =
            |name: &str, default: u64, min: u64, max: u64| number(&var, name, default, min, max);
        let listen = var("VIGIL_RELAY_LISTEN").unwrap_or_else(|| "127.0.0.1:3001".into());
        let listen = listen.parse().with_context(|| {
            format!("VIGIL_RELAY_LISTEN must be an address and port such as 127.0.0.1:3001, not {listen:?}")
        })?;
        let jwks = var("VIGIL_JWT_PUBLIC_KEYS").context(
            "set VIGIL_JWT_PUBLIC_KEYS to the JWKS document the app's jwt_public_keys variable holds",
        )?;
        let keys = KeySet::from_jwks(&jwks)
            .map_err(|e| anyhow::anyhow!("VIGIL_JWT_PUBLIC_KEYS is not usable: {e}"))?;
        let allowed_origins = var("VIGIL_RELAY_ALLOWED_ORIGINS")
            .unwrap_or_default()
            .split(',')
            .map(|o| o.trim().trim_end_matches('/').to_string())
            .filter(|o| !o.is_empty())
            .collect::<Vec<_>>();
        for origin in &allowed_origins {
            if !(origin.starts_with("http://") || origin.starts_with("https://")) {
                bail!(
                    "VIGIL_RELAY_ALLOWED_ORIGINS holds {origin:?}: each origin is scheme://host[:port], e.g. https://console.example.com"
                );
            }
        }
        let online = number("VIGIL_SENSOR_ONLINE_SECONDS", 120, 1, 86_400 * 365)?;
        let offline = number("VIGIL_SENSOR_OFFLINE_SECONDS", 600, 1, 86_400 * 365)?;
        if online >= offline {
            bail!(
                "VIGIL_SENSOR_ONLINE_SECONDS ({online}) must be less than VIGIL_SENSOR_OFFLINE_SECONDS ({offline})"
            );
        }
        let liveness = Liveness::from_seconds(Some(online as i64), Some(offline as i64));
        let seconds = |name: &str, default: u64| -> Result<Duration> {
            Ok(Duration::from_secs(number(name, default, 1, 86_400)?))
        };
        let mut enabled = [true; JOBS];
        if let Some(names) = var("VIGIL_RELAY_JOBS") {
            enabled = [false; JOBS];
            for name in names.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                match (name, super::jobs::Job::parse(name)) {
                    ("all", _) => enabled = [true; JOBS],
                    ("none", _) => {}
                    (_, Some(job)) => enabled[job.index()] = true,
                    (_, None) => bail!(
                        "VIGIL_RELAY_JOBS holds {name:?}: list sla_escalation, sensor_staleness, retention, playbooks, weekly_report, or say all or none"
                    ),
                }
            }
        }
        let jobs = super::jobs::JobsConfig {
            enabled,
            every: [
                seconds("VIGIL_JOB_SLA_ESCALATION_SECONDS", 30)?,
                seconds("VIGIL_JOB_SENSOR_STALENESS_SECONDS", 30)?,
                seconds("VIGIL_JOB_RETENTION_SECONDS", 3600)?,
                Duration::from_millis(number("VIGIL_JOB_PLAYBOOKS_MS", 500, 10, 3_600_000)?),
                seconds("VIGIL_JOB_WEEKLY_REPORT_SECONDS", 3600)?,
            ],
            retention: Retention {
                events_ms: event_retention_ms(&var)?,
                outbox_ms: duration(
                    &var,
                    "VIGIL_OUTBOX_RETENTION",
                    Duration::from_secs(7 * 86_400),
                )?
                .as_millis() as i64,
            },
            liveness,
            decision_rules: Arc::new(DecisionRules {
                safety: safety_policy(&var)?,
                sla: match var("VIGIL_DECISION_SLA_MINUTES") {
                    Some(v) => SlaPolicy::from_minutes(&v).map_err(|why| {
                        anyhow::anyhow!(
                            "VIGIL_DECISION_SLA_MINUTES (the app's decision_sla_minutes): {why}"
                        )
                    })?,
                    None => SlaPolicy::default(),
                },
            }),
            webhooks: WebhookConfig {
                origin: match var("VIGIL_WEBHOOK_ORIGIN") {
                    Some(o) if vigil_ingest::playbook::origin(&o).is_none() => bail!(
                        "VIGIL_WEBHOOK_ORIGIN must be an http(s) origin such as https://hooks.example.com, not {o:?}"
                    ),
                    o => o,
                },
                secret: var("VIGIL_WEBHOOK_SECRET"),
            },
        };
        Ok(Config {
            listen,
            keys,
            expect: Expectations {
                issuer: var("VIGIL_JWT_ISSUER").unwrap_or_else(|| "vigil".into()),
                audience: var("VIGIL_JWT_AUDIENCE").unwrap_or_else(|| "vigil".into()),
            },
            poll: Duration::from_millis(number("VIGIL_RELAY_POLL_MS", 50, 1, 60_000)?),
            // A poll fans out up to a batch at once: a smaller queue would
            // drop healthy sockets on every burst.
            client_queue: number(
                "VIGIL_RELAY_CLIENT_QUEUE",
                1024,
                super::outbox::BATCH as u64,
                1_000_000,
            )? as usize,
            max_connections: number("VIGIL_RELAY_MAX_CONNECTIONS", 10_000, 1, 1_000_000)? as usize,
            allowed_origins,
            ping: Duration::from_millis(number("VIGIL_RELAY_PING_MS", 20_000, 100, 3_600_000)?),
            auth_timeout: Duration::from_millis(number(
                "VIGIL_RELAY_AUTH_TIMEOUT_MS",
                5_000,
                100,
                60_000,
            )?),
            liveness,
            jobs,
            db_connections: number("VIGIL_RELAY_DB_CONNECTIONS", 4, 1, 64)? as usize,
            send_buffer: number("VIGIL_RELAY_SEND_BUFFER", 65_536, 4096, 16 << 20)? as usize,
            mqtt: super::ingest::MqttConfig::from_lookup(&var)?,
        })
    }

    /// Whether a request with this `Origin` header (if any) may upgrade.
    /// No header: not a browser (browsers always send one on WebSocket
    /// upgrades), so the token alone decides. A header: it must be listed.
    pub fn origin_allowed(&self, origin: Option<&str>) -> bool {
        match origin {
            None => true,
            Some(o) => self
                .allowed_origins
                .iter()
                .any(|allowed| allowed.eq_ignore_ascii_case(o.trim_end_matches('/'))),
        }
    }
}

/// The safety rules of decisions opened by playbooks, from
/// `VIGIL_DECISION_CONFIDENCE_FLOOR`, `VIGIL_DECISION_PROTECTED_TARGETS` and
/// `VIGIL_DECISION_IDENTITY_PATTERNS` (the app's `decision_*` of the same
/// names); unset ones keep the app's defaults, a bad one is named.
fn safety_policy(var: &impl Fn(&str) -> Option<String>) -> Result<SafetyPolicy> {
    let mut policy = SafetyPolicy::default();
    if let Some(v) = var("VIGIL_DECISION_CONFIDENCE_FLOOR") {
        policy.confidence_floor = SafetyPolicy::parse_floor(&v).map_err(|why| {
            anyhow::anyhow!(
                "VIGIL_DECISION_CONFIDENCE_FLOOR (the app's decision_confidence_floor): {why}"
            )
        })?;
    }
    if let Some(v) = var("VIGIL_DECISION_PROTECTED_TARGETS") {
        policy.protected_targets = ProtectedTargets::parse(&v).map_err(|why| {
            anyhow::anyhow!(
                "VIGIL_DECISION_PROTECTED_TARGETS (the app's decision_protected_targets): {why}"
            )
        })?;
    }
    if let Some(v) = var("VIGIL_DECISION_IDENTITY_PATTERNS") {
        policy.identity_patterns = SafetyPolicy::parse_patterns(&v);
    }
    Ok(policy)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use vigil_core::token::{TokenSigner, jwks_json};

    fn config(vars: &[(&str, &str)]) -> Result<Config> {
        let jwks = jwks_json(&[TokenSigner::generate("k").public_jwk()]);
        let mut map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        map.entry("VIGIL_JWT_PUBLIC_KEYS".into()).or_insert(jwks);
        Config::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn defaults() {
        let c = config(&[]).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:3001");
        assert_eq!(c.poll, Duration::from_millis(50));
        assert_eq!(c.client_queue, 1024);
        assert_eq!(c.max_connections, 10_000);
        assert_eq!(c.ping, Duration::from_secs(20));
        assert_eq!(c.auth_timeout, Duration::from_secs(5));
        assert_eq!(c.expect.issuer, "vigil");
        assert!(c.allowed_origins.is_empty());
        assert_eq!(c.send_buffer, 65_536);
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (name, value) in [
            ("VIGIL_RELAY_POLL_MS", "soon"),
            ("VIGIL_RELAY_CLIENT_QUEUE", "0"),
            ("VIGIL_RELAY_LISTEN", "localhost"),
            ("VIGIL_RELAY_ALLOWED_ORIGINS", "console.example.com"),
            ("VIGIL_JWT_PUBLIC_KEYS", "{}"),
            ("VIGIL_DECISION_CONFIDENCE_FLOOR", "1.5"),
            ("VIGIL_DECISION_PROTECTED_TARGETS", "10.0.0.0/abc"),
            ("VIGIL_DECISION_SLA_MINUTES", "15,60"),
        ] {
            let e = config(&[(name, value)]).unwrap_err().to_string();
            assert!(e.contains(name), "{e}");
            // Each names its own variable only.
            let others = e.matches("VIGIL_").count();
            assert_eq!(others, 1, "{e}");
        }
        let c = config(&[
            (
                "VIGIL_DECISION_PROTECTED_TARGETS",
                "10.0.0.0/8, DC1.corp.example.",
            ),
            ("VIGIL_DECISION_CONFIDENCE_FLOOR", "0.7"),
        ])
        .unwrap();
        let safety = &c.jobs.decision_rules.safety;
        assert_eq!(safety.confidence_floor, 0.7);
        assert_eq!(
            safety.protected_targets,
            ProtectedTargets::parse("10.0.0.0/8,dc1.corp.example").unwrap()
        );
        let e = Config::from_lookup(|_| None).unwrap_err().to_string();
        assert!(e.contains("VIGIL_JWT_PUBLIC_KEYS"), "{e}");
    }

    #[test]
    fn origins_are_an_exact_allow_list() {
        let c = config(&[(
            "VIGIL_RELAY_ALLOWED_ORIGINS",
            "http://127.0.0.1:3000, https://console.example.com/",
        )])
        .unwrap();
        assert!(c.origin_allowed(None));
        assert!(c.origin_allowed(Some("http://127.0.0.1:3000")));
        assert!(c.origin_allowed(Some("https://console.example.com")));
        assert!(!c.origin_allowed(Some("https://console.example.com.evil.net")));
        assert!(!c.origin_allowed(Some("http://127.0.0.1:3001")));
        assert!(!c.origin_allowed(Some("null")));
        let strict = config(&[]).unwrap();
        assert!(strict.origin_allowed(None));
        assert!(!strict.origin_allowed(Some("http://127.0.0.1:3000")));
    }
}
