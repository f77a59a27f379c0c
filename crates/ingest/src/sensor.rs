//! Sensors: what kinds there are, what a valid sensor id is, and the
//! online / stale / offline status that follows from the age of the last
//! heartbeat (computed when read, so it is never out of date); and sensor
//! control: what a valid configuration is and what the relay publishes,
//! retained, on a sensor's control topic.

use serde::{Deserialize, Serialize};
use vigil_core::ApiError;
use vigil_core::audit::Actor;
use vigil_core::audited::{self, Audited};
use vigil_core::sql::{Columns, Sql, Value, opt_text, text};
use vigil_core::wire::wire;

/// Default: a heartbeat within 2 minutes is online.
pub const DEFAULT_ONLINE_MS: i64 = 2 * 60 * 1000;
/// Default: silent for over 10 minutes (or never heard from) is offline.
pub const DEFAULT_OFFLINE_MS: i64 = 10 * 60 * 1000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SensorKind {
    Network,
    Honeypot,
    Wireless,
    Physical,
    Other,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SensorStatus {
    Online,
    Stale,
    Offline,
}

/// Largest heartbeat body kept.
const MAX_HEARTBEAT_BYTES: usize = 4096;

/// What a sensor reports with its heartbeat (all optional), over HTTP or MQTT.
#[derive(Deserialize, Serialize, schemars::JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct Heartbeat {
    /// The sensor software's version.
    #[schemars(length(max = 64))]
    version: Option<String>,
    uptime_seconds: Option<u64>,
    /// Free-form gauges (queue depth, CPU, dropped packets …); 4 KiB at most.
    metrics: Option<serde_json::Map<String, serde_json::Value>>,
}

impl Heartbeat {
    /// The body as stored, if it keeps to the limits (422 naming the field).
    pub fn kept(&self) -> Result<String, ApiError> {
        if self
            .version
            .as_ref()
            .is_some_and(|v| v.chars().count() > 64)
        {
            return Err(ApiError::invalid_field(
                "version",
                "must be at most 64 characters",
            ));
        }
        let kept = serde_json::to_string(self).expect("serializes");
        if kept.len() > MAX_HEARTBEAT_BYTES {
            return Err(ApiError::invalid_field(
                "metrics",
                "must be at most 4 KiB of JSON",
            ));
        }
        Ok(kept)
    }
}

/// Sensor `id` was heard from (a heartbeat with its `body`, or events from
/// its own key), inside the caller's transaction: it is online now. Coming
/// back, or being heard from for the first time, is audited and published
/// (`sensor.status`); routine contact is not. False when no sensor has the
/// id (nothing is written then).
pub async fn heard_from(
    db: &impl Sql,
    actor: &Actor,
    id: &str,
    body: Option<&str>,
    now: i64,
) -> Result<bool, ApiError> {
    let was = db
        .query(
            "SELECT published_status FROM sensors WHERE id = ?1",
            &[Value::Text(id.into())],
        )
        .await?;
    let Some(was) = was.first().and_then(|r| text(r, 0)) else {
        return Ok(false);
    };
    db.query(
        "UPDATE sensors SET last_heartbeat = ?2, heartbeat = coalesce(?3, heartbeat), published_status = 'online'
         WHERE id = ?1",
        &[Value::Text(id.into()), Value::Integer(now), opt_text(body)],
    )
    .await?;
    if was != wire(&SensorStatus::Online) {
        announce(db, actor, id, &was, SensorStatus::Online, now).await?;
    }
    Ok(true)
}

/// A sensor's status changed from `was`: audited and published (`sensor.status`).
async fn announce(
    db: &impl Sql,
    actor: &Actor,
    id: &str,
    was: &str,
    status: SensorStatus,
    now: i64,
) -> Result<(), ApiError> {
    let audited = Audited::new(actor.entry("sensor.status", "sensor", id, now))
        .before(&serde_json::json!({"status": was}))
        .after(&serde_json::json!({"status": status}))
        .publish(
            "sensor.status",
            serde_json::json!({"id": id, "status": status, "was": was}),
        );
    audited::record(db, &audited).await
}

/// How many sensors one staleness check looks at (the rest wait for the next).
pub const STALENESS_PER_CALL: i64 = 1000;

/// Sensors fall silent without telling anyone: publish each whose status
/// has slipped (online → stale → offline) since it was last published,
/// audited as `actor`, inside the caller's write transaction. Coming back
/// online is [`heard_from`]'s. Returns the sensors and their new status.
pub async fn publish_staleness(
    db: &impl Sql,
    actor: &Actor,
    liveness: &Liveness,
    now: i64,
) -> Result<Vec<(String, SensorStatus)>, ApiError> {
    // Only sensors last published as online or stale, and silent for longer
    // than counts as online, can have slipped.
    static SLIPPING: Columns = Columns::new("id, last_heartbeat, published_status");
    let rows = db
        .query(
            &format!(
                "SELECT {SLIPPING} FROM sensors
                 WHERE published_status <> 'offline' AND (last_heartbeat IS NULL OR last_heartbeat < ?1)
                 ORDER BY id LIMIT ?2"
            ),
            &[
                Value::Integer(now - liveness.online_ms),
                Value::Integer(STALENESS_PER_CALL),
            ],
        )
        .await?;
    let mut changed = Vec::new();
    for row in &rows {
        let row = SLIPPING.row(row);
        let (Some(id), Some(was)) = (row.text("id"), row.text("published_status")) else {
            continue;
        };
        let status = liveness.status(row.int("last_heartbeat"), now);
        if wire(&status) == was {
            continue;
        }
        db.query(
            "UPDATE sensors SET published_status = ?2 WHERE id = ?1",
            &[Value::Text(id.clone()), Value::Text(wire(&status))],
        )
        .await?;
        announce(db, actor, &id, &was, status, now).await?;
        changed.push((id, status));
    }
    Ok(changed)
}

/// When a sensor counts as online and when as offline (`online_ms < offline_ms`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Liveness {
    pub online_ms: i64,
    pub offline_ms: i64,
}

impl Default for Liveness {
    fn default() -> Self {
        Liveness {
            online_ms: DEFAULT_ONLINE_MS,
            offline_ms: DEFAULT_OFFLINE_MS,
        }
    }
}

impl Liveness {
    /// From the configured seconds; falls back to the defaults when they
    /// are not positive or not in order.
    pub fn from_seconds(online: Option<i64>, offline: Option<i64>) -> Liveness {
        let d = Liveness::default();
        let online_ms = online.filter(|s| *s > 0).map_or(d.online_ms, |s| s * 1000);
        let offline_ms = offline
            .filter(|s| *s > 0)
            .map_or(d.offline_ms, |s| s * 1000);
        if online_ms < offline_ms {
            Liveness {
                online_ms,
                offline_ms,
            }
        } else {
            d
        }
    }

    pub fn status(&self, last_heartbeat_ms: Option<i64>, now_ms: i64) -> SensorStatus {
        match last_heartbeat_ms.map(|at| now_ms - at) {
            Some(age) if age <= self.online_ms => SensorStatus::Online,
            Some(age) if age <= self.offline_ms => SensorStatus::Stale,
            _ => SensorStatus::Offline,
        }
    }

    /// The heartbeat times that give `status` at `now_ms`, as an SQL-ready
    /// range `(after, at_or_before)` of `last_heartbeat` (`None` = unbounded;
    /// offline also covers sensors never heard from).
    pub fn heartbeat_range(&self, status: SensorStatus, now_ms: i64) -> (Option<i64>, Option<i64>) {
        match status {
            SensorStatus::Online => (Some(now_ms - self.online_ms - 1), None),
            SensorStatus::Stale => (
                Some(now_ms - self.offline_ms - 1),
                Some(now_ms - self.online_ms - 1),
            ),
            SensorStatus::Offline => (None, Some(now_ms - self.offline_ms - 1)),
        }
    }
}

/// Largest configuration kept, serialized: it travels in one retained MQTT
/// message to a device that may be small.
pub const MAX_CONFIG_BYTES: usize = 16 * 1024;
/// Deepest nesting in a configuration (objects and arrays).
pub const MAX_CONFIG_DEPTH: usize = 8;

/// A sensor's configuration as stored: a JSON object of at most
/// [`MAX_CONFIG_BYTES`], nested at most [`MAX_CONFIG_DEPTH`] deep, with keys
/// of 1–64 characters. What the keys mean is the sensor software's business;
/// Vigil keeps, audits and delivers them. A 422 names `config` otherwise.
pub fn checked_config(value: &serde_json::Value) -> Result<String, ApiError> {
    let Some(object) = value.as_object() else {
        return Err(ApiError::invalid_field("config", "must be a JSON object"));
    };
    if let Some(key) = object
        .keys()
        .find(|k| !(1..=64).contains(&k.chars().count()))
    {
        return Err(ApiError::invalid_field(
            "config",
            format!("key {key:?} must be 1-64 characters"),
        ));
    }
    if depth(value) > MAX_CONFIG_DEPTH {
        return Err(ApiError::invalid_field(
            "config",
            format!("must be nested at most {MAX_CONFIG_DEPTH} deep"),
        ));
    }
    let kept = serde_json::to_string(value).expect("serializes");
    if kept.len() > MAX_CONFIG_BYTES {
        return Err(ApiError::invalid_field(
            "config",
            format!("must be at most {} KiB of JSON", MAX_CONFIG_BYTES / 1024),
        ));
    }
    Ok(kept)
}

fn depth(value: &serde_json::Value) -> usize {
    match value {
        serde_json::Value::Object(m) => 1 + m.values().map(depth).max().unwrap_or(0),
        serde_json::Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// Where a sensor's configuration is published (retained, QoS 1). Only the
/// relay may publish there (the broker's ACL; see the README).
pub fn control_topic(id: &str) -> String {
    format!("vigil/sensors/{id}/control")
}

/// Outbox events after which a sensor's control message is published again
/// (read from its row; a sensor no longer there has its message cleared).
pub const CONTROL_EVENTS: [&str; 3] = ["sensor.registered", "sensor.updated", "sensor.deleted"];

/// The retained control message of sensor `id` at `version` with its stored
/// `config`: `{"sensor_id", "version", "config"}`. It is read from the
/// sensor's row, never from an event, so every relay publishes the same
/// bytes for the same row; `version` (the sensor's, which every change
/// bumps) lets a sensor ignore an older message arriving late.
pub fn control_message(id: &str, version: i64, config: &str) -> Vec<u8> {
    let config: serde_json::Value = serde_json::from_str(config)
        .ok()
        .filter(serde_json::Value::is_object)
        .unwrap_or_else(|| serde_json::json!({}));
    serde_json::to_vec(&serde_json::json!({
        "sensor_id": id,
        "version": version,
        "config": config,
    }))
    .expect("serializes")
}

/// A sensor id: 1–64 of `A-Z a-z 0-9 . _ -`, so it is safe in MQTT topics
/// (`vigil/sensors/{id}/events`) and URLs without escaping.
pub fn valid_sensor_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_follows_heartbeat_age() {
        let l = Liveness::default();
        let now = 10_000_000;
        assert_eq!(l.status(Some(now), now), SensorStatus::Online);
        assert_eq!(
            l.status(Some(now - DEFAULT_ONLINE_MS), now),
            SensorStatus::Online
        );
        assert_eq!(
            l.status(Some(now - DEFAULT_ONLINE_MS - 1), now),
            SensorStatus::Stale
        );
        assert_eq!(
            l.status(Some(now - DEFAULT_OFFLINE_MS), now),
            SensorStatus::Stale
        );
        assert_eq!(
            l.status(Some(now - DEFAULT_OFFLINE_MS - 1), now),
            SensorStatus::Offline
        );
        assert_eq!(l.status(None, now), SensorStatus::Offline);
    }

    #[test]
    fn heartbeat_ranges_agree_with_status() {
        let l = Liveness::from_seconds(Some(60), Some(300));
        let now = 50_000_000;
        for age in [
            0, 1, 59_999, 60_000, 60_001, 299_999, 300_000, 300_001, 9_999_999,
        ] {
            let at = now - age;
            let status = l.status(Some(at), now);
            for candidate in [
                SensorStatus::Online,
                SensorStatus::Stale,
                SensorStatus::Offline,
            ] {
                let (after, until) = l.heartbeat_range(candidate, now);
                let inside = after.is_none_or(|a| at > a) && until.is_none_or(|u| at <= u);
                assert_eq!(inside, candidate == status, "age {age} as {candidate:?}");
            }
        }
    }

    #[test]
    fn thresholds_out_of_order_fall_back_to_defaults() {
        assert_eq!(
            Liveness::from_seconds(Some(600), Some(60)),
            Liveness::default()
        );
        assert_eq!(Liveness::from_seconds(Some(0), None), Liveness::default());
        assert_eq!(
            Liveness::from_seconds(Some(30), Some(90)),
            Liveness {
                online_ms: 30_000,
                offline_ms: 90_000
            }
        );
    }

    #[test]
    fn sensor_ids_are_topic_and_url_safe() {
        assert!(valid_sensor_id("hp-7.edge_2"));
        for bad in ["", "a/b", "a b", "+", "#", "é", &"x".repeat(65)] {
            assert!(!valid_sensor_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn a_config_is_a_bounded_object() {
        use serde_json::json;
        assert_eq!(checked_config(&json!({})).unwrap(), "{}");
        assert_eq!(
            checked_config(&json!({"interval_seconds": 30, "bands": ["2.4", "5"]})).unwrap(),
            r#"{"bands":["2.4","5"],"interval_seconds":30}"#
        );
        for bad in [json!([1]), json!("x"), json!(1), json!(null)] {
            let e = checked_config(&bad).unwrap_err();
            assert_eq!(
                (e.status, e.errors[0].field.as_str()),
                (422, "config"),
                "{bad}"
            );
        }
        let big = json!({"blob": "x".repeat(MAX_CONFIG_BYTES)});
        assert!(
            checked_config(&big).unwrap_err().errors[0]
                .message
                .contains("KiB")
        );
        let mut deep = json!(1);
        for _ in 0..MAX_CONFIG_DEPTH {
            deep = json!({"a": deep});
        }
        assert!(checked_config(&deep).is_ok());
        let deeper = json!({"a": deep});
        assert!(
            checked_config(&deeper).unwrap_err().errors[0]
                .message
                .contains("nested")
        );
        assert!(checked_config(&json!({"": 1})).is_err());
        assert!(checked_config(&json!({"k".repeat(65): 1})).is_err());
    }

    #[test]
    fn the_control_message_is_the_row_and_only_the_row() {
        let m = control_message("hp-1", 4, r#"{"mode":"passive"}"#);
        assert_eq!(
            String::from_utf8(m.clone()).unwrap(),
            r#"{"config":{"mode":"passive"},"sensor_id":"hp-1","version":4}"#
        );
        assert_eq!(m, control_message("hp-1", 4, r#"{"mode":"passive"}"#));
        // A row that somehow is not an object is published as an empty one.
        let empty = control_message("hp-1", 1, "[]");
        assert!(String::from_utf8(empty).unwrap().contains(r#""config":{}"#));
        assert_eq!(control_topic("hp-1"), "vigil/sensors/hp-1/control");
    }
}
