//! The JSON forms of stored rows, as packs and exports write them. Times are
//! RFC 3339 (UTC, milliseconds), except in audit entries, whose `at` stays
//! the stored integer so that anyone can recompute the chain's hashes.
//! Stored JSON (payloads, breakdowns, outcomes) is written as stored.

use serde::Serialize;
use serde_json::value::RawValue;
use vigil_core::audit::AuditEntry;
use vigil_core::sql::{Row, Value, int, real, text};
use vigil_core::time::rfc3339;

/// A stored row that does not read as its record (a broken invariant).
pub fn unreadable() -> vigil_core::ApiError {
    vigil_core::ApiError::internal().with_detail("a stored row could not be read")
}

fn raw(row: &[Value], i: usize) -> Option<Box<RawValue>> {
    text(row, i).and_then(|t| RawValue::from_string(t).ok())
}

fn time(row: &[Value], i: usize) -> Option<String> {
    int(row, i).map(rfc3339)
}

/// A threat event (the fields of `GET /api/threats/{id}`).
#[derive(Serialize)]
pub struct Event {
    pub id: String,
    pub sensor_id: String,
    pub event_id: String,
    pub observed_at: String,
    pub received_at: String,
    pub event_type: String,
    pub source_ip: String,
    pub source_class: String,
    pub source_country: Option<String>,
    pub source_asn: Option<i64>,
    pub source_as_org: Option<String>,
    pub source_port: Option<i64>,
    pub dest_ip: Option<String>,
    pub dest_port: Option<i64>,
    pub dest_zone: Option<String>,
    pub protocol: Option<String>,
    pub technique: Option<String>,
    pub score: i64,
    pub severity: String,
    pub breakdown: Box<RawValue>,
    pub confidence: f64,
    pub payload: Box<RawValue>,
    pub tags: Box<RawValue>,
    pub alert_id: Option<String>,
    #[serde(skip)]
    pub observed_ms: i64,
}

pub const EVENT_COLUMNS: &str = "id, sensor_id, event_id, observed_at, received_at, event_type, source_ip, source_class, \
    source_country, source_asn, source_as_org, source_port, dest_ip, dest_port, dest_zone, protocol, technique, \
    score, severity, breakdown, confidence, payload, tags, alert_id";

pub fn event(r: &Row) -> Option<Event> {
    Some(Event {
        id: text(r, 0)?,
        sensor_id: text(r, 1)?,
        event_id: text(r, 2)?,
        observed_at: time(r, 3)?,
        received_at: time(r, 4)?,
        event_type: text(r, 5)?,
        source_ip: text(r, 6)?,
        source_class: text(r, 7)?,
        source_country: text(r, 8),
        source_asn: int(r, 9),
        source_as_org: text(r, 10),
        source_port: int(r, 11),
        dest_ip: text(r, 12),
        dest_port: int(r, 13),
        dest_zone: text(r, 14),
        protocol: text(r, 15),
        technique: text(r, 16),
        score: int(r, 17)?,
        severity: text(r, 18)?,
        breakdown: raw(r, 19)?,
        confidence: real(r, 20)?,
        payload: raw(r, 21)?,
        tags: raw(r, 22)?,
        alert_id: text(r, 23),
        observed_ms: int(r, 3)?,
    })
}

#[derive(Serialize)]
pub struct Alert {
    pub id: String,
    pub status: String,
    pub source_ip: String,
    pub event_type: String,
    pub sensor_id: String,
    pub severity: String,
    pub max_score: i64,
    pub event_count: i64,
    pub first_seen: String,
    pub last_seen: String,
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
}

pub const ALERT_COLUMNS: &str = "id, status, source_ip, event_type, sensor_id, severity, max_score, event_count, \
    first_seen, last_seen, version, created_at, updated_at";

pub fn alert(r: &Row) -> Option<Alert> {
    Some(Alert {
        id: text(r, 0)?,
        status: text(r, 1)?,
        source_ip: text(r, 2)?,
        event_type: text(r, 3)?,
        sensor_id: text(r, 4)?,
        severity: text(r, 5)?,
        max_score: int(r, 6)?,
        event_count: int(r, 7)?,
        first_seen: time(r, 8)?,
        last_seen: time(r, 9)?,
        version: int(r, 10)?,
        created_at: time(r, 11)?,
        updated_at: time(r, 12)?,
    })
}

#[derive(Serialize)]
pub struct SubjectRef {
    pub kind: String,
    pub id: String,
}

/// A decision with its full transition history, oldest first.
#[derive(Serialize)]
pub struct Decision {
    pub id: String,
    pub source: String,
    pub subject: SubjectRef,
    pub action: String,
    pub parameters: Box<RawValue>,
    pub threat_level: String,
    pub confidence: f64,
    pub summary: String,
    pub rationale: String,
    pub evidence: Box<RawValue>,
    pub priority: i64,
    pub sla_deadline: String,
    pub status: String,
    pub version: i64,
    pub assignee: Option<String>,
    pub first_approver: Option<String>,
    pub submitted_by: String,
    pub outcome_detail: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub transitions: Vec<Transition>,
}

pub const DECISION_COLUMNS: &str = "id, source, subject_kind, subject_id, action, parameters, threat_level, confidence, \
    summary, rationale, evidence, priority, sla_deadline, status, version, assignee, first_approver, submitted_by, \
    outcome_detail, created_at, updated_at";

pub fn decision(r: &Row) -> Option<Decision> {
    Some(Decision {
        id: text(r, 0)?,
        source: text(r, 1)?,
        subject: SubjectRef {
            kind: text(r, 2)?,
            id: text(r, 3)?,
        },
        action: text(r, 4)?,
        parameters: raw(r, 5)?,
        threat_level: text(r, 6)?,
        confidence: real(r, 7)?,
        summary: text(r, 8)?,
        rationale: text(r, 9)?,
        evidence: raw(r, 10)?,
        priority: int(r, 11)?,
        sla_deadline: time(r, 12)?,
        status: text(r, 13)?,
        version: int(r, 14)?,
        assignee: text(r, 15),
        first_approver: text(r, 16),
        submitted_by: text(r, 17)?,
        outcome_detail: text(r, 18),
        created_at: time(r, 19)?,
        updated_at: time(r, 20)?,
        transitions: Vec::new(),
    })
}

/// One step of a decision's history.
#[derive(Serialize)]
pub struct Transition {
    pub at: String,
    pub actor: String,
    pub command: String,
    pub from: Option<String>,
    pub to: String,
    pub note: Option<String>,
    pub reason: Option<String>,
    #[serde(skip)]
    pub decision_id: String,
}

pub const TRANSITION_COLUMNS: &str =
    "decision_id, at, actor, command, from_status, to_status, note, reason";

pub fn transition(r: &Row) -> Option<Transition> {
    Some(Transition {
        decision_id: text(r, 0)?,
        at: time(r, 1)?,
        actor: text(r, 2)?,
        command: text(r, 3)?,
        from: text(r, 4),
        to: text(r, 5)?,
        note: text(r, 6),
        reason: text(r, 7),
    })
}

#[derive(Serialize)]
pub struct Execution {
    pub id: String,
    pub playbook_id: String,
    pub playbook_name: String,
    pub alert_id: String,
    pub mode: String,
    pub started_by: String,
    pub status: String,
    pub outcomes: Box<RawValue>,
    pub started_at: String,
    pub finished_at: String,
}

pub const EXECUTION_COLUMNS: &str = "id, playbook_id, playbook_name, alert_id, mode, started_by, status, outcomes, \
    started_at, finished_at";

pub fn execution(r: &Row) -> Option<Execution> {
    Some(Execution {
        id: text(r, 0)?,
        playbook_id: text(r, 1)?,
        playbook_name: text(r, 2)?,
        alert_id: text(r, 3)?,
        mode: text(r, 4)?,
        started_by: text(r, 5)?,
        status: text(r, 6)?,
        outcomes: raw(r, 7)?,
        started_at: time(r, 8)?,
        finished_at: time(r, 9)?,
    })
}

#[derive(Serialize)]
pub struct Sensor {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub location: Option<String>,
    pub description: Option<String>,
    pub last_heartbeat: Option<String>,
    pub version: i64,
    pub created_by: String,
    pub created_at: String,
    pub updated_at: String,
}

pub const SENSOR_COLUMNS: &str = "id, name, kind, location, description, last_heartbeat, version, created_by, created_at, updated_at";

pub fn sensor(r: &Row) -> Option<Sensor> {
    Some(Sensor {
        id: text(r, 0)?,
        name: text(r, 1)?,
        kind: text(r, 2)?,
        location: text(r, 3),
        description: text(r, 4),
        last_heartbeat: time(r, 5),
        version: int(r, 6)?,
        created_by: text(r, 7)?,
        created_at: time(r, 8)?,
        updated_at: time(r, 9)?,
    })
}

/// An audit entry exactly as stored: `before` and `after` are the stored
/// JSON text, and `hash` is SHA-256 over `prev_hash`, a newline, and the
/// JSON of the fields from `at` to `after` in this order
/// (`vigil_core::audit::chain_hash`).
#[derive(Serialize)]
pub struct AuditRecord {
    pub id: i64,
    #[serde(flatten)]
    pub entry: AuditEntry,
    pub prev_hash: String,
    pub hash: String,
}

pub const AUDIT_COLUMNS: &str = "id, at, actor, action, subject_kind, subject_id, request_id, client_addr, before, \
    after, prev_hash, hash";

pub fn audit(r: &Row) -> Option<AuditRecord> {
    Some(AuditRecord {
        id: int(r, 0)?,
        entry: AuditEntry {
            at: int(r, 1)?,
            actor: text(r, 2)?,
            action: text(r, 3)?,
            subject_kind: text(r, 4),
            subject_id: text(r, 5),
            request_id: text(r, 6),
            client_addr: text(r, 7),
            before: text(r, 8),
            after: text(r, 9),
        },
        prev_hash: text(r, 10)?,
        hash: text(r, 11)?,
    })
}
