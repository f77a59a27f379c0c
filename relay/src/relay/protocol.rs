//! The relay's wire protocol: channels and the permission each needs, the
//! filters a subscription carries, and the JSON messages both sides send.
//! Plain data and functions, tested natively.

use serde::Deserialize;
use serde_json::{Value, json};
use vigil_core::{ApiError, Permission, Principal};

/// What a socket can subscribe to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Channel {
    Alerts,
    Threats,
    Decisions,
    Sensors,
    Playbooks,
    /// The audit log itself, tailed by its own id (not the outbox).
    Audit,
}

impl Channel {
    pub const ALL: [Channel; 6] = [
        Channel::Alerts,
        Channel::Threats,
        Channel::Decisions,
        Channel::Sensors,
        Channel::Playbooks,
        Channel::Audit,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Alerts => "alerts",
            Channel::Threats => "threats",
            Channel::Decisions => "decisions",
            Channel::Sensors => "sensors",
            Channel::Playbooks => "playbooks",
            Channel::Audit => "audit",
        }
    }

    pub fn parse(s: &str) -> Option<Channel> {
        Channel::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// A dense index, for per-socket tables.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The permission that reads the same records over HTTP: a socket gets
    /// exactly what its principal could fetch.
    pub fn permission(self) -> Permission {
        match self {
            Channel::Alerts => Permission::AlertsRead,
            Channel::Threats => Permission::ThreatsRead,
            Channel::Decisions => Permission::DecisionsRead,
            Channel::Sensors => Permission::SensorsRead,
            Channel::Playbooks => Permission::PlaybooksRead,
            Channel::Audit => Permission::AuditRead,
        }
    }

    /// The channel of an outbox row's `type` (`alert.opened` → alerts), by
    /// its prefix; `None` for events no channel carries (`user.*`).
    pub fn of_event_type(event_type: &str) -> Option<Channel> {
        let prefix = event_type.split_once('.')?.0;
        match prefix {
            "alert" => Some(Channel::Alerts),
            "threat" => Some(Channel::Threats),
            "decision" => Some(Channel::Decisions),
            "sensor" => Some(Channel::Sensors),
            "playbook" => Some(Channel::Playbooks),
            _ => None,
        }
    }

    /// The channels `who` may read.
    pub fn readable_by(who: &Principal) -> Vec<Channel> {
        Channel::ALL
            .into_iter()
            .filter(|c| who.may(c.permission()))
            .collect()
    }
}

/// Threat severities and decision threat levels share the ingestion scale.
pub use vigil_ingest::event::Severity;

/// What filters look at in an event's payload (or a snapshot item).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Facets {
    pub severity: Option<Severity>,
    pub sensor_id: Option<String>,
    pub status: Option<String>,
}

impl Facets {
    /// The facets of a payload: its own fields, else those of the record it
    /// wraps (`{"alert": {…}}`, `{"decision": {…}}`). A decision's
    /// `threat_level` is its severity; a sensor record's `id` is its sensor id.
    pub fn of(channel: Channel, data: &Value) -> Facets {
        let nested = ["alert", "decision", "playbook"]
            .iter()
            .find_map(|k| data.get(k).filter(|v| v.is_object()));
        let field = |name: &str| {
            data.get(name)
                .or_else(|| nested.and_then(|n| n.get(name)))
                .and_then(Value::as_str)
        };
        let severity = field("severity")
            .or_else(|| field("threat_level"))
            .and_then(vigil_core::wire::parse_wire::<Severity>);
        let sensor_id = field("sensor_id")
            .or_else(|| (channel == Channel::Sensors).then(|| field("id")).flatten())
            .map(str::to_string);
        Facets {
            severity,
            sensor_id,
            status: field("status").map(str::to_string),
        }
    }
}

/// A subscription's filters. Each one given constrains the events that carry
/// that field; an event without the field is not held back by it (an
/// `alert.opened` names no sensor, for example).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filters {
    #[serde(default)]
    pub min_severity: Option<Severity>,
    #[serde(default)]
    pub sensor_id: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
}

impl Filters {
    pub fn admits(&self, f: &Facets) -> bool {
        let severity_ok = match (self.min_severity, f.severity) {
            (Some(min), Some(s)) => s >= min,
            _ => true,
        };
        let sensor_ok = match (&self.sensor_id, &f.sensor_id) {
            (Some(want), Some(got)) => want == got,
            _ => true,
        };
        let status_ok = match (&self.status, &f.status) {
            (Some(want), Some(got)) => want == got,
            _ => true,
        };
        severity_ok && sensor_ok && status_ok
    }
}

/// A message from the client.
#[derive(Debug, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMessage {
    Auth {
        token: String,
    },
    Subscribe {
        channels: Vec<String>,
        #[serde(default)]
        filters: Filters,
    },
    Unsubscribe {
        channels: Vec<String>,
    },
    Resume {
        last_event_id: i64,
    },
    Ping,
}

impl ClientMessage {
    pub fn parse(text: &str) -> Result<ClientMessage, ApiError> {
        serde_json::from_str(text).map_err(|e| {
            ApiError::bad_request(format!(
                "expected a JSON message with a `type` of auth, subscribe, unsubscribe, resume or ping: {e}"
            ))
        })
    }
}

/// Channels named in a message, each known; `Err` names the first unknown one.
pub fn parse_channels(names: &[String]) -> Result<Vec<Channel>, ApiError> {
    let mut out = Vec::new();
    for name in names {
        let c = Channel::parse(name).ok_or_else(|| {
            ApiError::invalid_field(
                "channels",
                format!(
                    "unknown channel {name:?} (expected alerts, threats, decisions, sensors, playbooks or audit)"
                ),
            )
        })?;
        if !out.contains(&c) {
            out.push(c);
        }
    }
    if out.is_empty() {
        return Err(ApiError::invalid_field(
            "channels",
            "name at least one channel",
        ));
    }
    Ok(out)
}

/// `{"type": "event", …}`: one outbox row (or audit entry) as pushed.
pub fn event_message(id: i64, event: &str, channel: Channel, data: &Value, ts_ms: i64) -> String {
    json!({
        "type": "event",
        "id": id,
        "event": event,
        "channel": channel.as_str(),
        "data": data,
        "ts": vigil_core::time::rfc3339(ts_ms),
    })
    .to_string()
}

/// `{"type": "snapshot", …}`: the channel's current state as of outbox id `as_of`.
pub fn snapshot_message(channel: Channel, as_of: i64, items: &[Value], limit: usize) -> String {
    json!({
        "type": "snapshot",
        "channel": channel.as_str(),
        "as_of": as_of,
        "items": items,
        // The snapshot is bounded: `truncated` says there was more.
        "limit": limit,
        "truncated": items.len() >= limit,
    })
    .to_string()
}

/// `{"type": "ack", "for": …}` plus what the request established.
pub fn ack_message(for_: &str, extra: Value) -> String {
    let mut m = json!({"type": "ack", "for": for_});
    if let (Some(m), Value::Object(extra)) = (m.as_object_mut(), extra) {
        m.extend(extra);
    }
    m.to_string()
}

/// `{"type": "error", "problem": {…}}`: an RFC 7807 problem document (type,
/// title, status, detail, errors), nested so its `type` keeps its meaning.
pub fn error_message(e: &ApiError) -> String {
    let mut problem = json!({
        "type": e.type_uri(),
        "title": e.title,
        "status": e.status,
        "detail": e.detail,
    });
    if !e.errors.is_empty() {
        problem["errors"] = serde_json::to_value(&e.errors).expect("field errors serialize");
    }
    json!({"type": "error", "problem": problem}).to_string()
}

pub fn pong_message() -> String {
    json!({"type": "pong"}).to_string()
}

/// The client's `last_event_id` cannot be resumed: it must take a snapshot again.
pub fn resync_message(last_event_id: i64, why: &str, oldest: Option<i64>) -> String {
    json!({
        "type": "resync_required",
        "last_event_id": last_event_id,
        "oldest_retained": oldest,
        "detail": why,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_core::Role;

    fn user(role: Role) -> Principal {
        Principal {
            subject: "u".into(),
            role: Some(role),
            scopes: vec![],
            token_id: "t".into(),
            session: Some("s".into()),
            pending: None,
        }
    }

    #[test]
    fn event_types_map_to_channels_by_prefix() {
        assert_eq!(
            Channel::of_event_type("alert.opened"),
            Some(Channel::Alerts)
        );
        assert_eq!(
            Channel::of_event_type("decision.updated"),
            Some(Channel::Decisions)
        );
        assert_eq!(
            Channel::of_event_type("threat.created"),
            Some(Channel::Threats)
        );
        assert_eq!(
            Channel::of_event_type("sensor.status"),
            Some(Channel::Sensors)
        );
        assert_eq!(
            Channel::of_event_type("playbook.executed"),
            Some(Channel::Playbooks)
        );
        assert_eq!(Channel::of_event_type("user.created"), None);
        assert_eq!(Channel::of_event_type("alert"), None);
        assert_eq!(Channel::of_event_type("alerts.opened"), None);
    }

    #[test]
    fn channels_follow_the_permission_table() {
        let viewer = Channel::readable_by(&user(Role::Viewer));
        assert!(viewer.contains(&Channel::Alerts) && viewer.contains(&Channel::Decisions));
        assert!(!viewer.contains(&Channel::Audit));
        assert!(Channel::readable_by(&user(Role::Supervisor)).contains(&Channel::Audit));
        let mut owing = user(Role::Admin);
        owing.pending = Some(vigil_core::Pending::PasswordChange);
        assert!(Channel::readable_by(&owing).is_empty());
        let sensor_key = Principal {
            subject: "key:1".into(),
            role: None,
            scopes: vec![Permission::SensorsIngest],
            token_id: "k".into(),
            session: None,
            pending: None,
        };
        assert!(Channel::readable_by(&sensor_key).is_empty());
        let reader_key = Principal {
            scopes: vec![Permission::AlertsRead],
            ..sensor_key
        };
        assert_eq!(Channel::readable_by(&reader_key), vec![Channel::Alerts]);
    }

    #[test]
    fn facets_come_from_the_payload_or_the_record_it_wraps() {
        let opened = json!({"id": "a1", "severity": "high", "score": 70, "events": 1});
        let f = Facets::of(Channel::Alerts, &opened);
        assert_eq!(f.severity, Some(Severity::High));
        assert_eq!(f.sensor_id, None);
        let acked = json!({"alert": {"id": "a1", "severity": "critical", "sensor_id": "hp-1", "status": "acknowledged"}, "command": "acknowledge"});
        let f = Facets::of(Channel::Alerts, &acked);
        assert_eq!(f.severity, Some(Severity::Critical));
        assert_eq!(f.sensor_id.as_deref(), Some("hp-1"));
        assert_eq!(f.status.as_deref(), Some("acknowledged"));
        let decision = json!({"decision": {"threat_level": "medium", "status": "claimed"}});
        let f = Facets::of(Channel::Decisions, &decision);
        assert_eq!(f.severity, Some(Severity::Medium));
        assert_eq!(f.status.as_deref(), Some("claimed"));
        let sensor = json!({"id": "hp-2", "status": "online", "was": "offline"});
        assert_eq!(
            Facets::of(Channel::Sensors, &sensor).sensor_id.as_deref(),
            Some("hp-2")
        );
        // Only a sensor record's own id is a sensor id.
        assert_eq!(Facets::of(Channel::Alerts, &opened).sensor_id, None);
    }

    #[test]
    fn filters_hold_back_only_events_that_carry_the_field() {
        let f: Filters =
            serde_json::from_str(r#"{"min_severity": "high", "sensor_id": "hp-1"}"#).unwrap();
        let facets = |sev: Option<Severity>, sensor: Option<&str>| Facets {
            severity: sev,
            sensor_id: sensor.map(str::to_string),
            status: None,
        };
        assert!(f.admits(&facets(Some(Severity::High), Some("hp-1"))));
        assert!(f.admits(&facets(Some(Severity::Critical), None)));
        assert!(!f.admits(&facets(Some(Severity::Medium), Some("hp-1"))));
        assert!(!f.admits(&facets(Some(Severity::Critical), Some("hp-2"))));
        assert!(f.admits(&facets(None, None)));
        let status: Filters = serde_json::from_str(r#"{"status": "open"}"#).unwrap();
        assert!(!status.admits(&Facets {
            status: Some("resolved".into()),
            ..Facets::default()
        }));
        assert!(Filters::default().admits(&facets(Some(Severity::Info), Some("x"))));
        assert!(serde_json::from_str::<Filters>(r#"{"min_severity": "urgent"}"#).is_err());
        assert!(serde_json::from_str::<Filters>(r#"{"colour": "red"}"#).is_err());
    }

    #[test]
    fn client_messages_parse_strictly() {
        assert_eq!(
            ClientMessage::parse(r#"{"type":"auth","token":"t"}"#).unwrap(),
            ClientMessage::Auth { token: "t".into() }
        );
        assert_eq!(
            ClientMessage::parse(r#"{"type":"subscribe","channels":["alerts"]}"#).unwrap(),
            ClientMessage::Subscribe {
                channels: vec!["alerts".into()],
                filters: Filters::default()
            }
        );
        assert_eq!(
            ClientMessage::parse(r#"{"type":"resume","last_event_id":42}"#).unwrap(),
            ClientMessage::Resume { last_event_id: 42 }
        );
        assert_eq!(
            ClientMessage::parse(r#"{"type":"ping"}"#).unwrap(),
            ClientMessage::Ping
        );
        for bad in [
            "",
            "[]",
            r#"{"type":"shout"}"#,
            r#"{"token":"t"}"#,
            r#"{"type":"auth","token":"t","extra":1}"#,
            r#"{"type":"resume","last_event_id":"x"}"#,
        ] {
            assert!(ClientMessage::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn channel_lists_are_checked() {
        assert_eq!(
            parse_channels(&["alerts".into(), "alerts".into(), "audit".into()]).unwrap(),
            vec![Channel::Alerts, Channel::Audit]
        );
        assert_eq!(parse_channels(&["mail".into()]).unwrap_err().status, 422);
        assert_eq!(parse_channels(&[]).unwrap_err().status, 422);
    }

    #[test]
    fn events_carry_id_type_channel_data_and_commit_time() {
        let m: Value = serde_json::from_str(&event_message(
            7,
            "decision.updated",
            Channel::Decisions,
            &json!({"x": 1}),
            1_795_737_600_123,
        ))
        .unwrap();
        assert_eq!(
            m,
            json!({"type": "event", "id": 7, "event": "decision.updated", "channel": "decisions",
                   "data": {"x": 1}, "ts": "2026-11-27T00:00:00.123Z"})
        );
        let e: Value =
            serde_json::from_str(&error_message(&ApiError::forbidden("audit:read"))).unwrap();
        assert_eq!(e["type"], "error");
        assert_eq!(e["problem"]["status"], 403);
        assert_eq!(e["problem"]["type"], "urn:vigil:problem:forbidden");
    }
}
