//! Event schema version 1: what a sensor sends, how it is checked, and the
//! normalized form that is stored.

use std::net::IpAddr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use vigil_core::FieldError;
use vigil_core::time::parse_rfc3339;

pub const SCHEMA_VERSION: u32 = 1;
/// How far in the future `observed_at` may be (clock skew), in ms.
pub const MAX_FUTURE_MS: i64 = 5 * 60 * 1000;
/// Largest `payload`, as serialized JSON.
pub const MAX_PAYLOAD_BYTES: usize = 16 * 1024;
pub const MAX_TAGS: usize = 32;

/// What a sensor saw. Types cover network, honeypot, wireless and physical sensors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    PortScan,
    BruteForce,
    CredentialStuffing,
    ExploitAttempt,
    SqlInjection,
    MalwareDownload,
    C2Beacon,
    DataExfiltration,
    Dos,
    SshSession,
    HttpProbe,
    SmbProbe,
    WifiDeauth,
    EvilTwin,
    BleSpam,
    UsbHidInjection,
    UsbMassStorage,
    Other,
}

/// A MITRE ATT&CK technique.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Technique {
    pub id: &'static str,
    pub name: &'static str,
}

impl EventType {
    /// The technique each type maps to, and the type's base score (0–50):
    /// one table, so the mapping and the scoring cannot drift apart.
    pub fn profile(self) -> (Option<Technique>, u8) {
        use EventType::*;
        let t = |id, name| Some(Technique { id, name });
        match self {
            PortScan => (t("T1046", "Network Service Discovery"), 10),
            BruteForce => (t("T1110", "Brute Force"), 25),
            CredentialStuffing => (t("T1110.004", "Brute Force: Credential Stuffing"), 30),
            ExploitAttempt => (t("T1190", "Exploit Public-Facing Application"), 40),
            SqlInjection => (t("T1190", "Exploit Public-Facing Application"), 35),
            MalwareDownload => (t("T1105", "Ingress Tool Transfer"), 40),
            C2Beacon => (t("T1071", "Application Layer Protocol"), 45),
            DataExfiltration => (t("T1041", "Exfiltration Over C2 Channel"), 50),
            Dos => (t("T1498", "Network Denial of Service"), 30),
            SshSession => (t("T1021.004", "Remote Services: SSH"), 20),
            HttpProbe => (t("T1595", "Active Scanning"), 10),
            SmbProbe => (
                t("T1021.002", "Remote Services: SMB/Windows Admin Shares"),
                20,
            ),
            WifiDeauth => (t("T1498", "Network Denial of Service"), 25),
            EvilTwin => (t("T1557", "Adversary-in-the-Middle"), 40),
            BleSpam => (t("T1499", "Endpoint Denial of Service"), 15),
            UsbHidInjection => (t("T1200", "Hardware Additions"), 45),
            UsbMassStorage => (t("T1091", "Replication Through Removable Media"), 25),
            Other => (None, 5),
        }
    }

    pub fn technique(self) -> Option<Technique> {
        self.profile().0
    }
}

/// What the sensor thinks the severity is (one factor of the score, not the verdict).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

/// An event as a sensor sends it (schema version 1). Unknown fields are rejected.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawEvent {
    /// The sensor's own id for the event; (sensor_id, event_id) de-duplicates.
    #[schemars(length(min = 1, max = 128))]
    pub event_id: String,
    #[schemars(length(min = 1, max = 64))]
    pub sensor_id: String,
    /// When the sensor saw it (RFC 3339, or milliseconds since the epoch).
    pub observed_at: serde_json::Value,
    pub event_type: EventType,
    pub source_ip: String,
    pub source_port: Option<u16>,
    pub dest_ip: Option<String>,
    pub dest_port: Option<u16>,
    #[schemars(length(max = 16))]
    pub protocol: Option<String>,
    pub severity_hint: Option<Severity>,
    /// The sensor's confidence, 0–1.
    pub confidence: Option<f64>,
    #[serde(default)]
    pub payload: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    pub tags: Vec<String>,
}

/// A valid event, normalized: what is stored and scored.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Event {
    pub event_id: String,
    pub sensor_id: String,
    pub observed_at_ms: i64,
    pub event_type: EventType,
    pub source_ip: IpAddr,
    pub source_port: Option<u16>,
    pub dest_ip: Option<IpAddr>,
    pub dest_port: Option<u16>,
    /// Lower-case.
    pub protocol: Option<String>,
    pub severity_hint: Option<Severity>,
    pub confidence: f64,
    pub payload: serde_json::Map<String, serde_json::Value>,
    /// Lower-case, sorted, without duplicates.
    pub tags: Vec<String>,
    /// Who ingested it (the request's principal: a user id or `key:<id>`),
    /// set by the caller once it knows who sent it ([`crate::pipeline::commit`]).
    pub ingested_by: Option<String>,
}

fn bounded_text(field: &str, value: &str, max: usize, errors: &mut Vec<FieldError>) {
    if value.trim().is_empty() || value.len() > max || value.chars().any(char::is_control) {
        errors.push(FieldError {
            field: field.into(),
            message: format!("must be 1-{max} characters without control characters"),
        });
    }
}

/// Check an event and normalize it. `now` and `retention_ms` bound
/// `observed_at`; `path` prefixes field names (e.g. `events[3]`).
pub fn validate(
    raw: RawEvent,
    now: i64,
    retention_ms: i64,
    path: &str,
) -> Result<Event, Vec<FieldError>> {
    let mut errors = Vec::new();
    let field = |name: &str| {
        if path.is_empty() {
            name.to_string()
        } else {
            format!("{path}.{name}")
        }
    };
    bounded_text(&field("event_id"), &raw.event_id, 128, &mut errors);
    bounded_text(&field("sensor_id"), &raw.sensor_id, 64, &mut errors);
    let observed = match &raw.observed_at {
        serde_json::Value::String(s) => parse_rfc3339(s),
        serde_json::Value::Number(n) => n.as_i64(),
        _ => None,
    };
    let observed_at_ms = match observed {
        None => {
            errors.push(FieldError {
                field: field("observed_at"),
                message: "must be an RFC 3339 time or epoch milliseconds".into(),
            });
            0
        }
        Some(t) if t > now + MAX_FUTURE_MS => {
            errors.push(FieldError {
                field: field("observed_at"),
                message: "is more than 5 minutes in the future".into(),
            });
            t
        }
        Some(t) if t < now - retention_ms => {
            errors.push(FieldError {
                field: field("observed_at"),
                message: "is older than the retention window".into(),
            });
            t
        }
        Some(t) => t,
    };
    let source_ip = raw.source_ip.trim().parse::<IpAddr>().map_err(|_| {
        errors.push(FieldError {
            field: field("source_ip"),
            message: "is not an IPv4 or IPv6 address".into(),
        });
    });
    let dest_ip = match raw.dest_ip.as_deref().map(|d| d.trim().parse::<IpAddr>()) {
        None => Ok(None),
        Some(Ok(ip)) => Ok(Some(ip)),
        Some(Err(_)) => {
            errors.push(FieldError {
                field: field("dest_ip"),
                message: "is not an IPv4 or IPv6 address".into(),
            });
            Err(())
        }
    };
    if let Some(p) = &raw.protocol {
        bounded_text(&field("protocol"), p, 16, &mut errors);
    }
    let confidence = raw.confidence.unwrap_or(1.0);
    if !(0.0..=1.0).contains(&confidence) {
        errors.push(FieldError {
            field: field("confidence"),
            message: "must be between 0 and 1".into(),
        });
    }
    if serde_json::to_string(&raw.payload).map_or(usize::MAX, |p| p.len()) > MAX_PAYLOAD_BYTES {
        errors.push(FieldError {
            field: field("payload"),
            message: format!("must be at most {MAX_PAYLOAD_BYTES} bytes of JSON"),
        });
    }
    if raw.tags.len() > MAX_TAGS {
        errors.push(FieldError {
            field: field("tags"),
            message: format!("at most {MAX_TAGS} tags"),
        });
    }
    for (i, tag) in raw.tags.iter().enumerate() {
        bounded_text(&field(&format!("tags[{i}]")), tag, 64, &mut errors);
    }
    let (Ok(source_ip), Ok(dest_ip)) = (source_ip, dest_ip) else {
        return Err(errors);
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut tags: Vec<String> = raw.tags.iter().map(|t| t.trim().to_lowercase()).collect();
    tags.sort();
    tags.dedup();
    Ok(Event {
        event_id: raw.event_id.trim().to_string(),
        sensor_id: raw.sensor_id.trim().to_string(),
        observed_at_ms,
        event_type: raw.event_type,
        source_ip,
        source_port: raw.source_port,
        dest_ip,
        dest_port: raw.dest_port,
        protocol: raw.protocol.map(|p| p.trim().to_lowercase()),
        severity_hint: raw.severity_hint,
        confidence,
        payload: raw.payload,
        tags,
        ingested_by: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_795_200_000; // 2026-11-27T16:00:00Z
    const RETENTION: i64 = 90 * 24 * 3600 * 1000;

    fn raw(json: serde_json::Value) -> RawEvent {
        serde_json::from_value(json).unwrap()
    }

    fn good() -> serde_json::Value {
        serde_json::json!({
            "event_id": "e-1", "sensor_id": "hp-7", "observed_at": "2026-11-27T15:59:00Z",
            "event_type": "brute_force", "source_ip": "203.0.113.9", "dest_ip": "10.0.0.5",
            "dest_port": 22, "protocol": "TCP", "tags": ["SSH", "ssh", "honeypot"]
        })
    }

    #[test]
    fn a_good_event_is_normalized() {
        let e = validate(raw(good()), NOW, RETENTION, "").unwrap();
        assert_eq!(e.observed_at_ms, NOW - 60_000);
        assert_eq!(e.protocol.as_deref(), Some("tcp"));
        assert_eq!(e.tags, ["honeypot", "ssh"]);
        assert_eq!(e.confidence, 1.0);
        assert_eq!(e.source_ip, "203.0.113.9".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn bad_fields_are_each_named() {
        let mut j = good();
        j["source_ip"] = "999.1.1.1".into();
        j["dest_ip"] = "::zz".into();
        j["observed_at"] = "2026-11-27T16:10:00Z".into();
        j["confidence"] = 1.5.into();
        j["event_id"] = "".into();
        let errors = validate(raw(j), NOW, RETENTION, "events[2]").unwrap_err();
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        for f in [
            "events[2].source_ip",
            "events[2].dest_ip",
            "events[2].observed_at",
            "events[2].confidence",
            "events[2].event_id",
        ] {
            assert!(fields.contains(&f), "{f} in {fields:?}");
        }
        let mut old = good();
        old["observed_at"] = "2020-01-01T00:00:00Z".into();
        assert_eq!(
            validate(raw(old), NOW, RETENTION, "").unwrap_err()[0].field,
            "observed_at"
        );
        let mut ipv6 = good();
        ipv6["source_ip"] = "2001:db8::1".into();
        assert!(validate(raw(ipv6), NOW, RETENTION, "").is_ok());
    }

    #[test]
    fn observed_at_is_a_real_instant_with_any_offset() {
        let mut j = good();
        j["observed_at"] = "2026-11-27T16:59:00.250+01:00".into();
        assert_eq!(
            validate(raw(j), NOW, RETENTION, "").unwrap().observed_at_ms,
            NOW - 60_000 + 250
        );
        let mut j = good();
        j["observed_at"] = "2026-02-31T00:00:00Z".into();
        // Were it read as 3 March, it would be within range of this `now`.
        let march = parse_rfc3339("2026-03-05T00:00:00Z").unwrap();
        assert_eq!(
            validate(raw(j), march, RETENTION, "").unwrap_err()[0].field,
            "observed_at"
        );
    }

    #[test]
    fn unknown_fields_and_types_are_rejected() {
        let mut j = good();
        j["extra"] = 1.into();
        assert!(serde_json::from_value::<RawEvent>(j).is_err());
        let mut j = good();
        j["event_type"] = "alien_probe".into();
        assert!(serde_json::from_value::<RawEvent>(j).is_err());
    }

    #[test]
    fn the_mitre_table() {
        assert_eq!(EventType::BruteForce.technique().unwrap().id, "T1110");
        assert_eq!(EventType::PortScan.technique().unwrap().id, "T1046");
        assert_eq!(EventType::ExploitAttempt.technique().unwrap().id, "T1190");
        assert_eq!(EventType::UsbHidInjection.technique().unwrap().id, "T1200");
        assert_eq!(EventType::Other.technique(), None);
    }
}
