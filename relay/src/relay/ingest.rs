//! MQTT ingestion. Sensors publish, QoS 1, to `vigil/sensors/{id}/events`
//! (one event or `{"events": [...]}`, as over HTTP) and
//! `vigil/sensors/{id}/heartbeat`, with their own API key in the MQTT 5 user
//! property `authorization: Bearer vgk_…` (a stock Mosquitto forwards user
//! properties to subscribers). Messages go through the shared pipeline
//! (`vigil_ingest::pipeline`, the one the threats component runs for HTTP)
//! in batched transactions, and each is acknowledged to the broker only
//! after its transaction commits: a crash loses nothing, and a redelivery
//! is de-duplicated by (sensor, event id). What cannot be stored goes to
//! `dead_letters` with the reason, never silently dropped.
//!
//! The relay keeps a persistent session (clean start off, a session expiry)
//! under a stable client id, so the broker queues what arrives while it is
//! down; with `VIGIL_MQTT_SHARE_GROUP` several relays split the stream.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rumqttc::Transport;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{Filter, Packet, Publish, SubscribeReasonCode};
use rumqttc::v5::{AsyncClient, ConnectionError, Event, MqttOptions};
use serde_json::json;
use tokio::sync::{mpsc, watch};
use vigil_core::audit::Actor;
use vigil_core::sql::{Row, Value, insert_rows, opt_text};
use vigil_core::time::now_millis;
use vigil_core::{ApiError, Permission, Principal, api_key};
use vigil_db::Target;
use vigil_db::sql::{LibsqlSql, begin_immediate, finish};
use vigil_ingest::classify::ZoneMap;
use vigil_ingest::event::Event as SensorEvent;
use vigil_ingest::geo::GeoLookup;
use vigil_ingest::pipeline::{self, Outcome, Sender, Storing, Submission, Validated};
use vigil_ingest::sensor::{self, Heartbeat, valid_sensor_id};

use super::log;

/// The subscriptions (prefixed with `$share/<group>/` when sharing).
const TOPICS: [&str; 2] = ["vigil/sensors/+/events", "vigil/sensors/+/heartbeat"];
/// How long a key's verdict is reused: a revoked key stops within this.
const KEY_TTL: Duration = Duration::from_secs(5);
/// Most of a dead letter's payload kept.
const DEAD_LETTER_BYTES: usize = 16 * 1024;
/// Unacknowledged messages the broker may have sent us at once: a few
/// batches' worth, so the next batch fills while one commits.
const RECEIVE_MAXIMUM: u16 = 2000;
/// How long the broker keeps the relay's session (and queues for it) while
/// it is away.
const SESSION_EXPIRY_SECONDS: u32 = 7 * 24 * 3600;

/// MQTT ingestion's settings (`VIGIL_MQTT_*`, and the pipeline's, which must
/// match the app's Spin variables of the same names).
#[derive(Clone, Debug)]
pub struct MqttConfig {
    /// `VIGIL_MQTT_URL`: `mqtt://host:port` or `mqtts://host:port`; unset, no MQTT.
    pub url: String,
    /// `VIGIL_MQTT_CLIENT_ID` (default `vigil-relay`): stable, so the session persists.
    pub client_id: String,
    /// `VIGIL_MQTT_SHARE_GROUP`: subscribe as `$share/<group>/…`.
    pub share_group: Option<String>,
    /// `VIGIL_MQTT_USERNAME`, `VIGIL_MQTT_PASSWORD`: the relay's broker login.
    pub credentials: Option<(String, String)>,
    /// `VIGIL_MQTT_CA_FILE`: PEM certificates that `mqtts://` trusts instead
    /// of the system's roots (a private CA).
    pub ca: Option<Vec<u8>>,
    /// `VIGIL_MQTT_BATCH_EVENTS` (default 500) and `VIGIL_MQTT_BATCH_MS`
    /// (default 50): a transaction commits when either is reached.
    pub batch_events: usize,
    pub batch_wait: Duration,
    /// `VIGIL_THREAT_ZONES`, `VIGIL_ALERT_WINDOW_MINUTES` (15),
    /// `VIGIL_EVENT_RETENTION_DAYS` (90), `VIGIL_GEOIP_DATABASES`: as the
    /// threats component's `threat_zones`, `alert_window_minutes`,
    /// `event_retention_days`, `geoip_databases`.
    pub zones: ZoneMap,
    pub alert_window_ms: i64,
    pub retention_ms: i64,
    pub geoip_databases: Vec<String>,
}

impl MqttConfig {
    /// `None` when `VIGIL_MQTT_URL` is unset; a bad value is an error naming
    /// the variable.
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Option<MqttConfig>> {
        let Some(url) = var("VIGIL_MQTT_URL") else {
            return Ok(None);
        };
        if !(url.starts_with("mqtt://") || url.starts_with("mqtts://")) {
            bail!("VIGIL_MQTT_URL must be mqtt://host:port or mqtts://host:port, not {url:?}");
        }
        let number = |name: &str, default: u64, max: u64| -> Result<i64> {
            Ok(super::vars::number(&var, name, default, 1, max)? as i64)
        };
        let zones = ZoneMap::parse(&var("VIGIL_THREAT_ZONES").unwrap_or_default())
            .map_err(|why| anyhow::anyhow!("VIGIL_THREAT_ZONES: {why}"))?;
        let credentials = match (var("VIGIL_MQTT_USERNAME"), var("VIGIL_MQTT_PASSWORD")) {
            (Some(user), password) => Some((user, password.unwrap_or_default())),
            (None, Some(_)) => bail!("VIGIL_MQTT_PASSWORD is set without VIGIL_MQTT_USERNAME"),
            (None, None) => None,
        };
        let ca = match var("VIGIL_MQTT_CA_FILE") {
            Some(_) if !url.starts_with("mqtts://") => {
                bail!("VIGIL_MQTT_CA_FILE is set but VIGIL_MQTT_URL is not mqtts://… (TLS)")
            }
            Some(path) => Some(
                std::fs::read(&path)
                    .with_context(|| format!("VIGIL_MQTT_CA_FILE: cannot read {path:?}"))?,
            ),
            None => None,
        };
        let config = MqttConfig {
            ca,
            url,
            client_id: var("VIGIL_MQTT_CLIENT_ID").unwrap_or_else(|| "vigil-relay".into()),
            share_group: var("VIGIL_MQTT_SHARE_GROUP"),
            credentials,
            batch_events: number("VIGIL_MQTT_BATCH_EVENTS", 500, 10_000)? as usize,
            batch_wait: Duration::from_millis(number("VIGIL_MQTT_BATCH_MS", 50, 10_000)? as u64),
            zones,
            alert_window_ms: number("VIGIL_ALERT_WINDOW_MINUTES", 15, 7 * 24 * 60)? * 60 * 1000,
            retention_ms: super::vars::event_retention_ms(&var)?,
            geoip_databases: var("VIGIL_GEOIP_DATABASES")
                .unwrap_or_default()
                .split(',')
                .map(|p| p.trim().to_string())
                .filter(|p| !p.is_empty())
                .collect(),
        };
        config.options()?;
        Ok(Some(config))
    }

    fn options(&self) -> Result<MqttOptions> {
        let (tls, rest) = match self.url.split_once("://") {
            Some(("mqtts", rest)) => (true, rest),
            Some(("mqtt", rest)) => (false, rest),
            _ => bail!(
                "VIGIL_MQTT_URL must be mqtt://host:port or mqtts://host:port, not {:?}",
                self.url
            ),
        };
        let rest = rest.trim_end_matches('/');
        let (host, port) = match rest.rsplit_once(':') {
            Some((host, port)) => (
                host,
                port.parse::<u16>()
                    .with_context(|| format!("VIGIL_MQTT_URL {:?} has a bad port", self.url))?,
            ),
            None => (rest, if tls { 8883 } else { 1883 }),
        };
        if host.is_empty() {
            bail!("VIGIL_MQTT_URL {:?} names no host", self.url);
        }
        let mut options = MqttOptions::new(&self.client_id, host, port);
        if tls {
            // Two rustls back ends are linked in (through other crates), so
            // rustls cannot pick one itself: without this, TLS panics.
            let _ = rustls::crypto::ring::default_provider().install_default();
            options.set_transport(match &self.ca {
                Some(ca) => Transport::tls(ca.clone(), None, None),
                None => Transport::tls_with_default_config(),
            });
        }
        options
            .set_clean_start(false)
            .set_session_expiry_interval(Some(SESSION_EXPIRY_SECONDS))
            .set_manual_acks(true)
            .set_receive_maximum(Some(RECEIVE_MAXIMUM))
            .set_keep_alive(Duration::from_secs(30));
        if let Some((user, password)) = &self.credentials {
            options.set_credentials(user, password);
        }
        Ok(options)
    }

    fn topics(&self) -> Vec<String> {
        TOPICS
            .iter()
            .map(|t| match &self.share_group {
                Some(group) => format!("$share/{group}/{t}"),
                None => t.to_string(),
            })
            .collect()
    }
}

/// What a topic says a message is.
#[derive(Debug, PartialEq, Eq)]
pub enum Topic {
    Events(String),
    Heartbeat(String),
}

/// `vigil/sensors/{id}/events` or `…/heartbeat` with a valid sensor id.
pub fn parse_topic(topic: &str) -> Option<Topic> {
    let rest = topic.strip_prefix("vigil/sensors/")?;
    let (id, kind) = rest.split_once('/')?;
    if !valid_sensor_id(id) {
        return None;
    }
    match kind {
        "events" => Some(Topic::Events(id.into())),
        "heartbeat" => Some(Topic::Heartbeat(id.into())),
        _ => None,
    }
}

/// The API key in the `authorization: Bearer vgk_…` user property.
pub fn presented_key(publish: &Publish) -> Option<&str> {
    let props = publish.properties.as_ref()?;
    props
        .user_properties
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("authorization"))
        .and_then(|(_, value)| value.strip_prefix("Bearer "))
        .map(str::trim)
}

/// A message once read, before its key is checked.
pub enum Parsed {
    Events {
        sensor: String,
        key: String,
        validated: Validated,
    },
    Heartbeat {
        sensor: String,
        key: String,
        body: String,
    },
    /// Refused whole: why, and the topic's sensor when it names one.
    Dead {
        sensor: Option<String>,
        reason: String,
    },
}

/// Read a message: its topic, key and payload (no database).
pub fn parse(publish: &Publish, now: i64, retention_ms: i64) -> Parsed {
    let dead = |sensor: Option<&str>, reason: String| Parsed::Dead {
        sensor: sensor.map(str::to_string),
        reason,
    };
    let topic = String::from_utf8_lossy(&publish.topic);
    let Some(topic) = parse_topic(&topic) else {
        return dead(
            None,
            "the topic is not vigil/sensors/{id}/events or vigil/sensors/{id}/heartbeat with a valid sensor id".into(),
        );
    };
    let sensor = match &topic {
        Topic::Events(s) | Topic::Heartbeat(s) => s.clone(),
    };
    let Some(key) = presented_key(publish) else {
        return dead(
            Some(&sensor),
            "no `authorization: Bearer vgk_…` user property (MQTT 5) with the sensor's API key"
                .into(),
        );
    };
    let key = key.to_string();
    match topic {
        Topic::Events(_) => {
            let items = serde_json::from_slice::<Submission>(&publish.payload)
                .map_err(|e| format!("the payload is not one event or {{\"events\": [...]}}: {e}"))
                .and_then(|s| s.items().map_err(|e| e.to_string()));
            let validated = match items {
                Ok(items) => pipeline::validate(items, now, retention_ms),
                Err(reason) => return dead(Some(&sensor), reason),
            };
            if let Err(e) = validated.check_sender(Some(&sensor)) {
                return dead(Some(&sensor), e.to_string());
            }
            Parsed::Events {
                sensor,
                key,
                validated,
            }
        }
        Topic::Heartbeat(_) => {
            let body = if publish.payload.is_empty() {
                Ok(Heartbeat::default())
            } else {
                serde_json::from_slice::<Heartbeat>(&publish.payload)
                    .map_err(|e| ApiError::malformed_json(e.to_string()))
            };
            match body.and_then(|b| b.kept()) {
                Ok(body) => Parsed::Heartbeat { sensor, key, body },
                Err(e) => dead(Some(&sensor), format!("the heartbeat is refused: {e}")),
            }
        }
    }
}

/// A live key's principal and the sensor it speaks for.
#[derive(Clone)]
struct KeyOwner {
    principal: Principal,
    sensor: Option<String>,
}

impl Parsed {
    /// How much of a batch this message fills: its valid events, at least one.
    fn events(&self) -> usize {
        match self {
            Parsed::Events { validated, .. } => validated.valid.len().max(1),
            _ => 1,
        }
    }
}

fn read(publish: Publish, now: i64, retention_ms: i64) -> (Publish, Parsed) {
    let parsed = parse(&publish, now, retention_ms);
    (publish, parsed)
}

/// API keys already checked, with when.
#[derive(Default)]
struct KeyCache {
    verdicts: HashMap<String, (Instant, Option<KeyOwner>)>,
}

impl KeyCache {
    /// Whether `key` may send for `sensor`: a live key, allowed to ingest,
    /// and bound to that sensor. `Err` is a reason for the dead letter.
    async fn check(
        &mut self,
        db: &LibsqlSql<'_>,
        key: &str,
        sensor: &str,
    ) -> Result<Result<Principal, String>, ApiError> {
        let cached = self
            .verdicts
            .get(key)
            .filter(|(at, _)| at.elapsed() < KEY_TTL)
            .map(|(_, owner)| owner.clone());
        let owner = match cached {
            Some(owner) => owner,
            None => {
                let owner = match api_key::parse(key) {
                    Some((prefix, secret)) => {
                        match api_key::authenticate(db, prefix, secret).await? {
                            Some(principal) => Some(KeyOwner {
                                sensor: pipeline::speaks_for(db, &principal).await?,
                                principal,
                            }),
                            None => None,
                        }
                    }
                    None => None,
                };
                self.verdicts
                    .insert(key.to_string(), (Instant::now(), owner.clone()));
                owner
            }
        };
        let Some(KeyOwner {
            principal,
            sensor: own,
        }) = owner
        else {
            return Ok(Err("the API key is unknown, malformed or revoked".into()));
        };
        if !principal.may(Permission::SensorsIngest) {
            return Ok(Err("the API key may not ingest events".into()));
        }
        if own.as_deref() != Some(sensor) {
            return Ok(Err(format!(
                "the API key speaks for sensor {:?}, not the topic's {sensor:?}",
                own.unwrap_or_default()
            )));
        }
        Ok(Ok(principal))
    }
}

/// What one transaction stored.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Stored {
    pub events: usize,
    pub duplicates: usize,
    pub dead_letters: usize,
}

/// Store a batch of messages in one transaction: events grouped by sensor
/// through the pipeline, heartbeats, and dead letters. On error nothing is
/// stored and the caller retries the same batch.
async fn store_batch(
    conn: &libsql::Connection,
    keys: &mut KeyCache,
    storing: &Storing,
    batch: &[(Publish, Parsed)],
    now: i64,
) -> Result<Stored, ApiError> {
    let db = LibsqlSql(conn);
    // Every valid event of the batch, in arrival order, stored in one go;
    // `owner` says which sender (sensor and key) each came from.
    let mut valid: Vec<(usize, SensorEvent)> = Vec::new();
    let mut owner: Vec<usize> = Vec::new();
    let mut senders: Vec<(String, Actor)> = Vec::new();
    let mut heartbeats: Vec<(&Publish, String, Actor, &str)> = Vec::new();
    let mut dead: Vec<Row> = Vec::new();
    let dead_letter = |publish: &Publish, sensor: Option<&str>, reason: &str| -> Row {
        let kept = &publish.payload[..publish.payload.len().min(DEAD_LETTER_BYTES)];
        vec![
            Value::Integer(now),
            Value::Text(String::from_utf8_lossy(&publish.topic).into_owned()),
            opt_text(sensor),
            Value::Text(reason.into()),
            Value::Blob(kept.to_vec()),
            Value::Integer(publish.payload.len() as i64),
        ]
    };
    for (publish, parsed) in batch {
        let (sensor, key) = match parsed {
            Parsed::Dead { sensor, reason } => {
                dead.push(dead_letter(publish, sensor.as_deref(), reason));
                continue;
            }
            Parsed::Events { sensor, key, .. } | Parsed::Heartbeat { sensor, key, .. } => {
                (sensor, key)
            }
        };
        let principal = match keys.check(&db, key, sensor).await? {
            Ok(p) => p,
            Err(reason) => {
                dead.push(dead_letter(publish, Some(sensor), &reason));
                continue;
            }
        };
        let actor = Actor {
            actor: principal.subject,
            request_id: None,
            client_addr: None,
        };
        match parsed {
            Parsed::Events { validated, .. } => {
                if !validated.outcome.rejected.is_empty() {
                    let reasons: Vec<String> = validated
                        .outcome
                        .rejected
                        .iter()
                        .flat_map(|r| {
                            r.errors
                                .iter()
                                .map(|e| format!("{}: {}", e.field, e.message))
                        })
                        .collect();
                    dead.push(dead_letter(
                        publish,
                        Some(sensor),
                        &format!("invalid events: {}", reasons.join("; ")),
                    ));
                }
                if validated.valid.is_empty() {
                    continue;
                }
                let sender = match senders.iter().position(|(s, a)| s == sensor && *a == actor) {
                    Some(i) => i,
                    None => {
                        senders.push((sensor.clone(), actor));
                        senders.len() - 1
                    }
                };
                for (_, event) in &validated.valid {
                    // Who ingested it: the sensor's key (see vigil_ingest::execution::ingesters).
                    let mut event = event.clone();
                    event.ingested_by = Some(senders[sender].1.actor.clone());
                    valid.push((valid.len(), event));
                    owner.push(sender);
                }
            }
            Parsed::Heartbeat { body, .. } => {
                heartbeats.push((publish, sensor.clone(), actor, body))
            }
            Parsed::Dead { .. } => unreachable!("handled above"),
        }
    }

    // What depends on the events alone is worked out before the write lock.
    let prepared = pipeline::prepare(storing, &valid);
    begin_immediate(conn).await?;
    let written = async {
        let mut outcome = Outcome::default();
        if !prepared.is_empty() {
            pipeline::store(&db, storing, &prepared, &mut outcome, now).await?;
        }
        let mut stored = Stored {
            events: outcome.accepted.len(),
            duplicates: outcome.duplicates.len(),
            dead_letters: 0,
        };
        // Each sender's share: its sensor is alive, and one audit entry.
        let mut shares: Vec<Outcome> = senders.iter().map(|_| Outcome::default()).collect();
        for a in outcome.accepted {
            shares[owner[a.index]].accepted.push(a);
        }
        for d in outcome.duplicates {
            shares[owner[d.index]].duplicates.push(d);
        }
        for ((sensor, actor), share) in senders.iter().zip(&shares) {
            let sender = Sender {
                sensor: Some(sensor),
                actor,
            };
            pipeline::record_sender(&db, &sender, sensor, share, now).await?;
        }
        for (publish, sensor, actor, body) in &heartbeats {
            if !sensor::heard_from(&db, actor, sensor, Some(body), now).await? {
                dead.push(dead_letter(
                    publish,
                    Some(sensor),
                    &format!("no sensor {sensor:?} is registered"),
                ));
            }
        }
        stored.dead_letters = dead.len();
        insert_rows(
            &db,
            "INSERT INTO dead_letters (received_at, topic, sensor_id, reason, payload, payload_bytes) VALUES ",
            dead,
        )
        .await?;
        Ok::<_, ApiError>(stored)
    }
    .await;
    finish(conn, written).await
}

/// Ingest from the broker until `shutdown`. A batch being stored then is
/// still committed; acknowledgements that do not reach the broker before the
/// connection closes only mean a redelivery, which is de-duplicated. The
/// same connection publishes sensor control messages (`control`: the
/// sensors the outbox poller saw change).
pub async fn run(
    config: MqttConfig,
    target: Target,
    metrics: Arc<super::metrics::Metrics>,
    control: mpsc::UnboundedReceiver<String>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<()> {
    let shared_metrics = metrics;
    let metrics = &shared_metrics.mqtt;
    let (client, mut eventloop) = AsyncClient::new(config.options()?, 1024);
    let publisher = tokio::spawn(super::control::run(
        client.clone(),
        target.clone(),
        control,
        shared_metrics.clone(),
        shutdown.clone(),
    ));
    // Unbounded, so the connection task never waits on the batcher (which
    // acknowledges through that same task): what arrives is bounded by the
    // receive maximum, the unacknowledged messages the broker may send us.
    let (tx, mut rx) = mpsc::unbounded_channel::<Publish>();
    let topics = config.topics();

    // The connection: polled in its own task, so acknowledging never waits
    // on the task that reads the broker.
    let subscriber = client.clone();
    let conn_metrics = shared_metrics.clone();
    let mut conn_shutdown = shutdown.clone();
    let broker = tokio::spawn(async move {
        let mut backoff = Duration::from_millis(250);
        loop {
            let event = tokio::select! {
                event = eventloop.poll() => event,
                _ = super::stopping(&mut conn_shutdown) => break,
            };
            match event {
                Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                    backoff = Duration::from_millis(250);
                    log::line(
                        json!({"level": "info", "msg": "mqtt connected", "session_present": ack.session_present}),
                    );
                    let (client, topics) = (subscriber.clone(), topics.clone());
                    tokio::spawn(async move {
                        let filters = topics.into_iter().map(|t| Filter::new(t, QoS::AtLeastOnce));
                        if let Err(e) = client.subscribe_many(filters).await {
                            log::line(
                                json!({"level": "error", "msg": "mqtt subscribe failed", "error": e.to_string()}),
                            );
                        }
                    });
                }
                // Ready only once the broker holds the subscriptions: before
                // that, what sensors publish would not be queued for us.
                Ok(Event::Incoming(Packet::SubAck(ack))) => {
                    let refused: Vec<String> = ack
                        .return_codes
                        .iter()
                        .filter(|c| !matches!(c, SubscribeReasonCode::Success(_)))
                        .map(|c| format!("{c:?}"))
                        .collect();
                    if refused.is_empty() {
                        conn_metrics.mqtt.broker_connected.store(1, Relaxed);
                        log::line(
                            json!({"level": "info", "msg": "mqtt subscribed", "topics": TOPICS}),
                        );
                    } else {
                        log::line(
                            json!({"level": "error", "msg": "mqtt subscription refused", "codes": refused}),
                        );
                    }
                }
                Ok(Event::Incoming(Packet::Publish(publish))) => {
                    if tx.send(publish).is_err() {
                        break;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    conn_metrics.mqtt.broker_connected.store(0, Relaxed);
                    let line = match &e {
                        // Retrying will not help until someone changes a setting: say which.
                        ConnectionError::ConnectionRefused(code) => json!({
                            "level": "error",
                            "msg": "the MQTT broker refused the relay's connection: check VIGIL_MQTT_USERNAME and VIGIL_MQTT_PASSWORD (and the broker's password file and ACL)",
                            "reason": format!("{code:?}"),
                            "retry_ms": backoff.as_millis() as u64,
                        }),
                        ConnectionError::Tls(_) => json!({
                            "level": "error",
                            "msg": "TLS with the MQTT broker failed: check VIGIL_MQTT_URL's host name and VIGIL_MQTT_CA_FILE",
                            "error": e.to_string(),
                            "retry_ms": backoff.as_millis() as u64,
                        }),
                        _ => {
                            json!({"level": "warn", "msg": "mqtt connection lost; reconnecting", "error": e.to_string(), "retry_ms": backoff.as_millis() as u64})
                        }
                    };
                    log::line(line);
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
        }
    });

    let mut conn = target.connect().await?;
    let mut keys = KeyCache::default();
    let storing = Storing {
        zones: config.zones.clone(),
        alert_window_ms: config.alert_window_ms,
        geo: GeoLookup::new(config.geoip_databases.clone(), |why| {
            log::line(
                json!({"level": "error", "msg": "VIGIL_GEOIP_DATABASES: a database cannot be used", "why": why}),
            );
        }),
    };
    loop {
        let first = tokio::select! {
            first = rx.recv() => first,
            _ = super::stopping(&mut shutdown) => None,
        };
        let Some(first) = first else { break };
        let now = now_millis();
        let mut batch = vec![read(first, now, config.retention_ms)];
        let mut events = batch[0].1.events();
        let deadline = tokio::time::Instant::now() + config.batch_wait;
        while events < config.batch_events {
            tokio::select! {
                next = rx.recv() => match next {
                    Some(p) => {
                        let read = read(p, now, config.retention_ms);
                        events += read.1.events();
                        batch.push(read);
                    }
                    None => break,
                },
                _ = tokio::time::sleep_until(deadline) => break,
            }
        }
        metrics
            .messages_total
            .fetch_add(batch.len() as u64, Relaxed);
        // Never acknowledge what did not commit: retry until it does (or the
        // relay stops, and the broker redelivers it later). A failed part is
        // retried in halves: a libSQL server ends a transaction that held the
        // write lock for over 5 s while others waited, so on a slow server a
        // part must shrink until it fits.
        let mut backoff = Duration::from_millis(100);
        let mut part = batch.len();
        let mut from = 0;
        while from < batch.len() {
            let messages = &batch[from..(from + part).min(batch.len())];
            let stored = match store_batch(&conn, &mut keys, &storing, messages, now).await {
                Ok(stored) => stored,
                Err(e) => {
                    metrics.batch_failures_total.fetch_add(1, Relaxed);
                    log::line(
                        json!({"level": "error", "msg": "mqtt batch not stored; retrying", "error": e.to_string(), "messages": messages.len()}),
                    );
                    if *shutdown.borrow() {
                        break;
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                    part = (part / 2).max(1);
                    if let Ok(fresh) = target.connect().await {
                        conn = fresh;
                    }
                    continue;
                }
            };
            backoff = Duration::from_millis(100);
            from += messages.len();
            metrics.batches_total.fetch_add(1, Relaxed);
            metrics
                .events_stored_total
                .fetch_add(stored.events as u64, Relaxed);
            metrics
                .duplicates_total
                .fetch_add(stored.duplicates as u64, Relaxed);
            metrics
                .dead_letters_total
                .fetch_add(stored.dead_letters as u64, Relaxed);
            for (publish, _) in messages {
                // Acks go through the connection task, which stops on shutdown.
                let acked = tokio::select! {
                    acked = client.ack(publish) => acked,
                    _ = super::stopping(&mut shutdown) => break,
                };
                if let Err(e) = acked {
                    log::line(
                        json!({"level": "warn", "msg": "mqtt ack failed (the broker will redeliver)", "error": e.to_string()}),
                    );
                }
            }
        }
        if *shutdown.borrow() {
            break;
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), publisher).await;
    let _ = tokio::time::timeout(Duration::from_secs(1), client.disconnect()).await;
    let _ = tokio::time::timeout(Duration::from_secs(2), broker).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rumqttc::v5::mqttbytes::v5::PublishProperties;

    fn message(topic: &str, key: Option<&str>, payload: &str) -> Publish {
        let mut p = Publish::new(topic, QoS::AtLeastOnce, payload.to_string(), None);
        if let Some(key) = key {
            p.properties = Some(PublishProperties {
                user_properties: vec![("authorization".into(), format!("Bearer {key}"))],
                ..Default::default()
            });
        }
        p
    }

    #[test]
    fn topics_name_a_valid_sensor_and_a_known_kind() {
        assert_eq!(
            parse_topic("vigil/sensors/s1/events"),
            Some(Topic::Events("s1".into()))
        );
        assert_eq!(
            parse_topic("vigil/sensors/s1/heartbeat"),
            Some(Topic::Heartbeat("s1".into()))
        );
        assert_eq!(parse_topic("vigil/sensors/s1/control"), None);
        assert_eq!(parse_topic("vigil/sensors/a+b/events"), None);
        assert_eq!(parse_topic("vigil/sensors/s1/events/x"), None);
        assert_eq!(parse_topic("other/s1/events"), None);
    }

    #[test]
    fn messages_without_a_key_or_with_bad_json_are_dead_letters() {
        let no_key = parse(&message("vigil/sensors/s1/events", None, "{}"), 0, 1);
        assert!(
            matches!(no_key, Parsed::Dead { sensor: Some(s), reason } if s == "s1" && reason.contains("authorization"))
        );
        let bad = parse(
            &message("vigil/sensors/s1/events", Some("vgk_x"), "{nope"),
            0,
            1,
        );
        assert!(matches!(bad, Parsed::Dead { reason, .. } if reason.contains("payload")));
        let wrong_topic = parse(&message("vigil/s1/events", Some("vgk_x"), "{}"), 0, 1);
        assert!(matches!(wrong_topic, Parsed::Dead { sensor: None, .. }));
        let heartbeat = parse(
            &message("vigil/sensors/s1/heartbeat", Some("vgk_x"), r#"{"cpu": 1}"#),
            0,
            1,
        );
        assert!(matches!(heartbeat, Parsed::Dead { reason, .. } if reason.contains("heartbeat")));
    }

    #[test]
    fn an_event_for_another_sensor_refuses_the_whole_message() {
        let event = r#"{"sensor_id": "s2", "event_id": "e1", "event_type": "port_scan",
                        "observed_at": "2026-09-21T15:00:00Z", "source_ip": "198.51.100.7"}"#;
        let now = 1_790_010_000_000;
        let parsed = parse(
            &message("vigil/sensors/s1/events", Some("vgk_x"), event),
            now,
            i64::MAX / 2,
        );
        assert!(matches!(parsed, Parsed::Dead { reason, .. } if reason.contains("s2")));
        let own = event.replace("s2", "s1");
        let parsed = parse(
            &message("vigil/sensors/s1/events", Some("vgk_x"), &own),
            now,
            i64::MAX / 2,
        );
        assert!(matches!(parsed, Parsed::Events { validated, .. } if validated.valid.len() == 1));
    }

    #[test]
    fn the_relay_keeps_a_persistent_session_and_shares_when_asked() {
        let vars = HashMap::from([
            ("VIGIL_MQTT_URL", "mqtt://127.0.0.1:1883"),
            ("VIGIL_MQTT_SHARE_GROUP", "vigil"),
        ]);
        let config = MqttConfig::from_lookup(|n| vars.get(n).map(|v| v.to_string()))
            .unwrap()
            .unwrap();
        assert_eq!(config.topics()[0], "$share/vigil/vigil/sensors/+/events");
        let options = config.options().unwrap();
        assert!(!options.clean_start());
        assert!(MqttConfig::from_lookup(|_| None).unwrap().is_none());
        let bad = HashMap::from([
            ("VIGIL_MQTT_URL", "mqtt://x:1"),
            ("VIGIL_MQTT_BATCH_MS", "0"),
        ]);
        let err = MqttConfig::from_lookup(|n| bad.get(n).map(|v| v.to_string())).unwrap_err();
        assert!(err.to_string().contains("VIGIL_MQTT_BATCH_MS"));
        for (url, ca) in [
            ("mqtt://x:1", "/dev/null"),
            ("mqtts://x:1", "/nonexistent/ca.pem"),
        ] {
            let vars = HashMap::from([("VIGIL_MQTT_URL", url), ("VIGIL_MQTT_CA_FILE", ca)]);
            let err = MqttConfig::from_lookup(|n| vars.get(n).map(|v| v.to_string())).unwrap_err();
            assert!(format!("{err:#}").contains("VIGIL_MQTT_CA_FILE"), "{err:#}");
        }
    }
}
