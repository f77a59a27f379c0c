//! `vigil simulate`: realistic sensor traffic for demos, benchmarks and a
//! first run. The events are `vigil_traffic`'s mix (repeat offenders, the
//! usual event types), with floods (one source hammering one sensor, which
//! alert grouping turns into one alert with a count), a malformed message
//! now and then (which the relay keeps as a dead letter, or the API
//! refuses), and heartbeats every 30 s. A progress line on stderr.
//!
//! Over MQTT every sensor (`sim-01` …) must prove itself with its own key,
//! as real ones do: the command registers the sensors it is missing in the
//! database and mints a key for each (audited as `cli:simulate`), and
//! revokes those keys when it stops. Over HTTP it posts with the bearer it
//! is given (an access token, or a key that may post for those sensors).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::PublishProperties;
use rumqttc::v5::{AsyncClient, MqttOptions};
use serde_json::json;
use vigil_core::api_key::{self, NewApiKey};
use vigil_core::audit::{Actor, append};
use vigil_core::id::new_id;
use vigil_core::sql::{Sql, Value, int};
use vigil_core::time::now_millis;
use vigil_db::Target;
use vigil_db::sql::{LibsqlSql, begin_immediate, finish};
use vigil_traffic::Mix;

/// Who the command acts as, in the audit log.
const ACTOR: &str = "cli:simulate";
/// Events per message at most (a sensor batches what it saw in a tick).
const PER_MESSAGE: usize = 20;
/// One message in this many is malformed.
const MALFORMED_EVERY: u64 = 50;
/// One tick in this many starts a flood.
const FLOOD_EVERY: u64 = 100;
const FLOOD_EVENTS: usize = 50;
const HEARTBEAT_EVERY: Duration = Duration::from_secs(30);
const TICK: Duration = Duration::from_millis(100);

#[derive(clap::Args)]
pub struct SimulateArgs {
    /// How many sensors (`sim-01`, `sim-02` …).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=999))]
    sensors: u16,
    /// Events per second, all sensors together (floods come on top).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    rate: u64,
    /// Stop after this many seconds (default: at Ctrl-C or SIGTERM).
    #[arg(long)]
    seconds: Option<u64>,
    /// Seed of the traffic (the same seed sends the same events).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Publish to this MQTT broker (`mqtt://host:port`), as the sensors
    /// would; the relay ingests from it.
    #[arg(long, conflicts_with = "http", required_unless_present = "http")]
    mqtt: Option<String>,
    /// Post to this Vigil app (`http://127.0.0.1:3000`) instead.
    #[arg(long, requires = "key")]
    http: Option<String>,
    /// The bearer for --http: an access token, or an API key allowed to post
    /// for the simulated sensors.
    #[arg(long, env = "VIGIL_SIMULATE_KEY", hide_env_values = true)]
    key: Option<String>,
}

/// What was sent so far.
#[derive(Default)]
struct Sent {
    events: AtomicU64,
    messages: AtomicU64,
    floods: AtomicU64,
    malformed: AtomicU64,
    heartbeats: AtomicU64,
    errors: AtomicU64,
}

impl Sent {
    fn line(&self, elapsed: Duration) -> String {
        let events = self.events.load(Relaxed);
        format!(
            "{:.1} s: {events} events ({:.0}/s), {} messages, {} floods, {} malformed, {} heartbeats, {} errors",
            elapsed.as_secs_f64(),
            events as f64 / elapsed.as_secs_f64().max(0.001),
            self.messages.load(Relaxed),
            self.floods.load(Relaxed),
            self.malformed.load(Relaxed),
            self.heartbeats.load(Relaxed),
            self.errors.load(Relaxed),
        )
    }
}

/// One thing to send: events of a sensor, a heartbeat, or a broken message.
enum Message {
    Events {
        sensor: String,
        events: Vec<serde_json::Value>,
    },
    Heartbeat {
        sensor: String,
        body: serde_json::Value,
    },
    Malformed {
        sensor: String,
        payload: Vec<u8>,
    },
}

/// The traffic of one tick: `budget` events over the sensors in messages of
/// at most [`PER_MESSAGE`], a flood now and then, a malformed message now and
/// then, and the heartbeats that are due.
struct Traffic {
    mix: Mix,
    sensors: Vec<String>,
    next_sensor: usize,
    messages: u64,
    ticks: u64,
    heartbeat_due: Vec<Instant>,
    started: Instant,
    /// Prefix of every event id sent (see [`drain`]).
    prefix: String,
}

impl Traffic {
    fn new(seed: u64, sensors: Vec<String>) -> Traffic {
        let prefix = format!("sim{seed}-{}", now_millis());
        let now = Instant::now();
        Traffic {
            mix: Mix::new(seed, &prefix).tagged("simulated"),
            prefix,
            heartbeat_due: vec![now; sensors.len()],
            sensors,
            next_sensor: 0,
            messages: 0,
            ticks: 0,
            started: now,
        }
    }

    fn tick(&mut self, budget: usize) -> Vec<Message> {
        self.ticks += 1;
        let now_ms = now_millis();
        let mut out = Vec::new();
        for (i, sensor) in self.sensors.iter().enumerate() {
            if self.heartbeat_due[i] <= Instant::now() {
                self.heartbeat_due[i] = Instant::now() + HEARTBEAT_EVERY;
                let uptime = self.started.elapsed().as_secs();
                out.push(Message::Heartbeat {
                    sensor: sensor.clone(),
                    body: self.mix.heartbeat(uptime),
                });
            }
        }
        let mut left = budget;
        while left > 0 {
            let n = left.min(PER_MESSAGE);
            left -= n;
            let sensor = self.sensors[self.next_sensor].clone();
            self.next_sensor = (self.next_sensor + 1) % self.sensors.len();
            self.messages += 1;
            if self.messages.is_multiple_of(MALFORMED_EVERY) {
                let payload = self.mix.malformed(&sensor, now_ms);
                out.push(Message::Malformed { sensor, payload });
                continue;
            }
            let events = (0..n)
                .map(|_| {
                    let mut e = self.mix.event(now_ms);
                    e["sensor_id"] = json!(sensor);
                    e
                })
                .collect();
            out.push(Message::Events { sensor, events });
        }
        if self.ticks.is_multiple_of(FLOOD_EVERY) {
            let sensor = self.sensors[self.mix.below(self.sensors.len() as u64) as usize].clone();
            let events = self.mix.flood(&sensor, FLOOD_EVENTS, now_ms);
            out.push(Message::Events { sensor, events });
        }
        out
    }
}

pub async fn run(args: SimulateArgs, target: Target) -> Result<()> {
    let sensors: Vec<String> = (1..=args.sensors).map(|i| format!("sim-{i:02}")).collect();
    let sent = Arc::new(Sent::default());
    let started = Instant::now();
    let until = args.seconds.map(|s| started + Duration::from_secs(s));
    let mut traffic = Traffic::new(args.seed, sensors.clone());
    let result = match (&args.mqtt, &args.http) {
        (Some(url), _) => {
            let keys = provision(&target, &sensors).await?;
            eprintln!(
                "registered {} sensors (sim-01 …) with keys of their own; publishing to {url}",
                keys.len()
            );
            let sending = mqtt(url, &keys, &mut traffic, args.rate, until, &sent, started).await;
            // The keys must outlive the relay's backlog, or its tail would
            // be refused as sent with a revoked key.
            drain(
                &target,
                &sensors,
                &traffic.prefix,
                sent.events.load(Relaxed),
            )
            .await?;
            revoke(&target, &keys).await?;
            eprintln!("revoked the simulated sensors' keys");
            sending
        }
        (None, Some(url)) => {
            let key = args.key.clone().context("--http needs --key")?;
            eprintln!("posting to {url}/api/threats/events");
            http(url, &key, &mut traffic, args.rate, until, &sent, started).await
        }
        (None, None) => bail!("give --mqtt URL or --http URL --key K"),
    };
    eprintln!("\n{}", sent.line(started.elapsed()));
    result
}

/// A simulated sensor's key.
struct SensorKey {
    sensor: String,
    key_id: String,
    presented: String,
}

/// Register the sensors that are missing and mint a key for each, in one
/// audited transaction.
async fn provision(target: &Target, sensors: &[String]) -> Result<Vec<SensorKey>> {
    let conn = target.connect().await?;
    if vigil_db::migrations::current_version(&conn).await? == 0 {
        bail!("the database is not migrated; run `vigil migrate` first");
    }
    let db = LibsqlSql(&conn);
    let now = now_millis();
    let who = Actor::program(ACTOR);
    begin_immediate(&conn).await?;
    let written = async {
        let mut keys = Vec::new();
        for sensor in sensors {
            let registered = db
                .query(
                    "INSERT INTO sensors (id, name, kind, description, version, created_by, created_at, updated_at)
                     VALUES (?1, ?1, 'other', 'simulated by vigil simulate', 1, ?2, ?3, ?3)
                     ON CONFLICT (id) DO NOTHING RETURNING id",
                    &[
                        Value::Text(sensor.clone()),
                        Value::Text(ACTOR.into()),
                        Value::Integer(now),
                    ],
                )
                .await?;
            if !registered.is_empty() {
                append(&db, &who.entry("sensor.created", "sensor", sensor, now)).await?;
            }
            let (presented, prefix, hash) = api_key::generate();
            let key_id = new_id();
            api_key::insert(
                &db,
                &NewApiKey {
                    id: &key_id,
                    name: "vigil simulate",
                    sensor_id: Some(sensor),
                    prefix: &prefix,
                    secret_hash: &hash,
                    scopes: &["sensors:ingest".to_string()],
                    created_by: None,
                },
                now,
            )
            .await?;
            append(&db, &who.entry("api_key.created", "api_key", &key_id, now)).await?;
            keys.push(SensorKey {
                sensor: sensor.clone(),
                key_id,
                presented,
            });
        }
        Ok(keys)
    }
    .await;
    Ok(finish(&conn, written).await?)
}

/// How long [`drain`] waits without seeing a new event stored.
const DRAIN_PATIENCE: Duration = Duration::from_secs(60);

/// Wait until the `sent` events (ids starting with `prefix`) are stored, so
/// a relay with a backlog has the keys it needs; give up, with a warning,
/// when nothing new is stored for [`DRAIN_PATIENCE`] (no relay running) or
/// at Ctrl-C.
async fn drain(target: &Target, sensors: &[String], prefix: &str, sent: u64) -> Result<()> {
    let conn = target.connect().await?;
    let db = LibsqlSql(&conn);
    let placeholders = (0..sensors.len())
        .map(|i| format!("?{}", i + 3))
        .collect::<Vec<_>>()
        .join(", ");
    // `event_id` in [prefix-, prefix.): the de-duplication index answers it.
    let sql = format!(
        "SELECT count(*) FROM threat_events
         WHERE sensor_id IN ({placeholders}) AND event_id >= ?1 AND event_id < ?2"
    );
    let mut params = vec![
        Value::Text(format!("{prefix}-")),
        Value::Text(format!("{prefix}.")),
    ];
    params.extend(sensors.iter().map(|s| Value::Text(s.clone())));
    let (mut stored, mut progress_at) = (0, Instant::now());
    loop {
        let now_stored = db
            .query(&sql, &params)
            .await?
            .first()
            .and_then(|row| int(row, 0))
            .unwrap_or(0) as u64;
        if now_stored >= sent {
            return Ok(());
        }
        if now_stored > stored {
            (stored, progress_at) = (now_stored, Instant::now());
        }
        if progress_at.elapsed() > DRAIN_PATIENCE {
            eprintln!(
                "\n{} of {sent} events stored and none for {} s (is the relay running?); revoking the keys anyway",
                now_stored,
                DRAIN_PATIENCE.as_secs()
            );
            return Ok(());
        }
        eprint!(
            "\rwaiting for the relay to store the last {} events",
            sent - now_stored
        );
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
    }
}

/// Revoke the keys [`provision`] minted (the sensors and their events stay).
async fn revoke(target: &Target, keys: &[SensorKey]) -> Result<()> {
    let conn = target.connect().await?;
    let db = LibsqlSql(&conn);
    let now = now_millis();
    let who = Actor::program(ACTOR);
    begin_immediate(&conn).await?;
    let written = async {
        for k in keys {
            db.query(
                "UPDATE api_keys SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
                &[Value::Text(k.key_id.clone()), Value::Integer(now)],
            )
            .await?;
            append(
                &db,
                &who.entry("api_key.revoked", "api_key", &k.key_id, now),
            )
            .await?;
        }
        Ok(())
    };
    Ok(finish(&conn, written.await).await?)
}

/// Ticks until `until` (or a signal), each with its share of `rate`.
struct Clock {
    rate: u64,
    until: Option<Instant>,
    started: Instant,
    ticks: u64,
    owed: u64,
}

impl Clock {
    /// The events of the next tick, after waiting for it; `None` when done.
    async fn next(&mut self, sent: &Sent) -> Option<usize> {
        let at = self.started + TICK * self.ticks as u32;
        tokio::select! {
            _ = tokio::time::sleep_until(at.into()) => {}
            _ = tokio::signal::ctrl_c() => return None,
        }
        if self.until.is_some_and(|u| Instant::now() >= u) {
            return None;
        }
        self.ticks += 1;
        if self.ticks.is_multiple_of(10) {
            eprint!("\r{}", sent.line(self.started.elapsed()));
        }
        // Whole events per tick, the remainder carried over.
        self.owed += self.rate;
        let n = self.owed / 10;
        self.owed %= 10;
        Some(n as usize)
    }
}

async fn mqtt(
    url: &str,
    keys: &[SensorKey],
    traffic: &mut Traffic,
    rate: u64,
    until: Option<Instant>,
    sent: &Sent,
    started: Instant,
) -> Result<()> {
    let rest = url
        .strip_prefix("mqtt://")
        .with_context(|| format!("--mqtt must be mqtt://host:port, not {url:?}"))?;
    let (host, port) = rest
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h.to_string(), p.parse::<u16>().ok()?)))
        .with_context(|| format!("--mqtt must be mqtt://host:port, not {url:?}"))?;
    let mut options = MqttOptions::new(format!("vigil-simulate-{}", &new_id()[..8]), host, port);
    options.set_keep_alive(Duration::from_secs(20));
    let (client, mut eventloop) = AsyncClient::new(options, 1000);
    let driver = tokio::spawn(async move {
        loop {
            if let Err(e) = eventloop.poll().await {
                eprintln!("\nmqtt: {e}; reconnecting");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    });
    let key_of = |sensor: &str| {
        keys.iter()
            .find(|k| k.sensor == sensor)
            .map(|k| k.presented.clone())
    };
    let mut clock = Clock {
        rate,
        until,
        started,
        ticks: 0,
        owed: 0,
    };
    while let Some(budget) = clock.next(sent).await {
        for message in traffic.tick(budget) {
            let (topic, sensor, payload) = match message {
                Message::Events { sensor, events } => {
                    sent.events.fetch_add(events.len() as u64, Relaxed);
                    if events.len() == FLOOD_EVENTS {
                        sent.floods.fetch_add(1, Relaxed);
                    }
                    let payload = json!({"events": events}).to_string().into_bytes();
                    (format!("vigil/sensors/{sensor}/events"), sensor, payload)
                }
                Message::Heartbeat { sensor, body } => {
                    sent.heartbeats.fetch_add(1, Relaxed);
                    let payload = body.to_string().into_bytes();
                    (format!("vigil/sensors/{sensor}/heartbeat"), sensor, payload)
                }
                Message::Malformed { sensor, payload } => {
                    sent.malformed.fetch_add(1, Relaxed);
                    (format!("vigil/sensors/{sensor}/events"), sensor, payload)
                }
            };
            let properties = PublishProperties {
                user_properties: key_of(&sensor)
                    .map(|k| vec![("authorization".to_string(), format!("Bearer {k}"))])
                    .unwrap_or_default(),
                ..Default::default()
            };
            sent.messages.fetch_add(1, Relaxed);
            if client
                .publish_with_properties(topic, QoS::AtLeastOnce, false, payload, properties)
                .await
                .is_err()
            {
                sent.errors.fetch_add(1, Relaxed);
            }
        }
    }
    // Let what is queued reach the broker before the keys are revoked.
    let _ = tokio::time::timeout(Duration::from_secs(5), client.disconnect()).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    driver.abort();
    Ok(())
}

async fn http(
    url: &str,
    key: &str,
    traffic: &mut Traffic,
    rate: u64,
    until: Option<Instant>,
    sent: &Sent,
    started: Instant,
) -> Result<()> {
    let endpoint = format!("{}/api/threats/events", url.trim_end_matches('/'));
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let mut clock = Clock {
        rate,
        until,
        started,
        ticks: 0,
        owed: 0,
    };
    while let Some(budget) = clock.next(sent).await {
        // One request per tick: its events, and the malformed ones as
        // events the API refuses one by one. Heartbeats need each sensor's
        // own key, so they are not sent over HTTP.
        let mut events = Vec::new();
        for message in traffic.tick(budget) {
            match message {
                Message::Events { events: e, .. } => {
                    if e.len() == FLOOD_EVENTS {
                        sent.floods.fetch_add(1, Relaxed);
                    }
                    events.extend(e);
                }
                Message::Malformed { payload, .. } => {
                    if let Ok(serde_json::Value::Object(mut body)) =
                        serde_json::from_slice(&payload)
                        && let Some(serde_json::Value::Array(bad)) = body.remove("events")
                    {
                        sent.malformed.fetch_add(1, Relaxed);
                        events.extend(bad);
                    }
                }
                Message::Heartbeat { .. } => {}
            }
        }
        if events.is_empty() {
            continue;
        }
        let n = events.len() as u64;
        let body = json!({"events": events}).to_string();
        let (agent, to, auth) = (agent.clone(), endpoint.clone(), format!("Bearer {key}"));
        let status = tokio::task::spawn_blocking(move || {
            agent
                .post(&to)
                .header("authorization", &auth)
                .header("content-type", "application/json")
                .send(body.as_bytes())
                .map(|r| r.status().as_u16())
        })
        .await?;
        sent.messages.fetch_add(1, Relaxed);
        match status {
            Ok(200) => {
                sent.events.fetch_add(n, Relaxed);
            }
            Ok(401 | 403) => bail!("{endpoint} refused the key (HTTP 401/403)"),
            _ => {
                sent.errors.fetch_add(1, Relaxed);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tick_spreads_its_budget_over_the_sensors_with_heartbeats_floods_and_malformed_messages() {
        let sensors: Vec<String> = (1..=3).map(|i| format!("sim-{i:02}")).collect();
        let mut t = Traffic::new(1, sensors.clone());
        let first = t.tick(45);
        let heartbeats = first
            .iter()
            .filter(|m| matches!(m, Message::Heartbeat { .. }))
            .count();
        assert_eq!(
            heartbeats, 3,
            "every sensor's first heartbeat is due at once"
        );
        let events: usize = first
            .iter()
            .map(|m| match m {
                Message::Events { sensor, events } => {
                    assert!(events.iter().all(|e| e["sensor_id"] == sensor.as_str()));
                    events.len()
                }
                _ => 0,
            })
            .sum();
        assert_eq!(events, 45);
        let (mut malformed, mut floods) = (0, 0);
        for _ in 0..FLOOD_EVENTS * 2 {
            for m in t.tick(40) {
                match m {
                    Message::Malformed { .. } => malformed += 1,
                    Message::Events { events, .. } if events.len() == FLOOD_EVENTS => floods += 1,
                    _ => {}
                }
            }
        }
        assert!(malformed >= 1 && floods >= 1, "{malformed} {floods}");
    }
}
