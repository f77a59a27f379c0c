//! The JSON forms of stored rows, as packs and exports write them. Times are
//! RFC 3339 (UTC, milliseconds), except in audit entries, whose `at` stays
//! the stored integer so that anyone can recompute the chain's hashes.
//! Stored JSON (payloads, breakdowns, outcomes) is written as stored.

use serde::Serialize;
use serde_json::value::RawValue;
use vigil_core::audit::AuditEntry;
use vigil_core::sql::{Named, Row};
use vigil_core::time::rfc3339;

/// A stored row that does not read as its record (a broken invariant).
pub fn unreadable() -> vigil_core::ApiError {
    vigil_core::ApiError::internal().with_detail("a stored row could not be read")
}

/// Stored JSON, as stored.
fn raw(row: &Named, column: &str) -> Option<Box<RawValue>> {
    row.text(column).and_then(|t| RawValue::from_string(t).ok())
}

fn time(row: &Named, column: &str) -> Option<String> {
    row.int(column).map(rfc3339)
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

pub fn event(row: &Row) -> Option<Event> {
    let r = Named::new(EVENT_COLUMNS, row);
    Some(Event {
        id: r.text("id")?,
        sensor_id: r.text("sensor_id")?,
        event_id: r.text("event_id")?,
        observed_at: time(&r, "observed_at")?,
        received_at: time(&r, "received_at")?,
        event_type: r.text("event_type")?,
        source_ip: r.text("source_ip")?,
        source_class: r.text("source_class")?,
        source_country: r.text("source_country"),
        source_asn: r.int("source_asn"),
        source_as_org: r.text("source_as_org"),
        source_port: r.int("source_port"),
        dest_ip: r.text("dest_ip"),
        dest_port: r.int("dest_port"),
        dest_zone: r.text("dest_zone"),
        protocol: r.text("protocol"),
        technique: r.text("technique"),
        score: r.int("score")?,
        severity: r.text("severity")?,
        breakdown: raw(&r, "breakdown")?,
        confidence: r.real("confidence")?,
        payload: raw(&r, "payload")?,
        tags: raw(&r, "tags")?,
        alert_id: r.text("alert_id"),
        observed_ms: r.int("observed_at")?,
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

pub fn alert(row: &Row) -> Option<Alert> {
    let r = Named::new(ALERT_COLUMNS, row);
    Some(Alert {
        id: r.text("id")?,
        status: r.text("status")?,
        source_ip: r.text("source_ip")?,
        event_type: r.text("event_type")?,
        sensor_id: r.text("sensor_id")?,
        severity: r.text("severity")?,
        max_score: r.int("max_score")?,
        event_count: r.int("event_count")?,
        first_seen: time(&r, "first_seen")?,
        last_seen: time(&r, "last_seen")?,
        version: r.int("version")?,
        created_at: time(&r, "created_at")?,
        updated_at: time(&r, "updated_at")?,
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

pub fn decision(row: &Row) -> Option<Decision> {
    let r = Named::new(DECISION_COLUMNS, row);
    Some(Decision {
        id: r.text("id")?,
        source: r.text("source")?,
        subject: SubjectRef {
            kind: r.text("subject_kind")?,
            id: r.text("subject_id")?,
        },
        action: r.text("action")?,
        parameters: raw(&r, "parameters")?,
        threat_level: r.text("threat_level")?,
        confidence: r.real("confidence")?,
        summary: r.text("summary")?,
        rationale: r.text("rationale")?,
        evidence: raw(&r, "evidence")?,
        priority: r.int("priority")?,
        sla_deadline: time(&r, "sla_deadline")?,
        status: r.text("status")?,
        version: r.int("version")?,
        assignee: r.text("assignee"),
        first_approver: r.text("first_approver"),
        submitted_by: r.text("submitted_by")?,
        outcome_detail: r.text("outcome_detail"),
        created_at: time(&r, "created_at")?,
        updated_at: time(&r, "updated_at")?,
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

pub fn transition(row: &Row) -> Option<Transition> {
    let r = Named::new(TRANSITION_COLUMNS, row);
    Some(Transition {
        decision_id: r.text("decision_id")?,
        at: time(&r, "at")?,
        actor: r.text("actor")?,
        command: r.text("command")?,
        from: r.text("from_status"),
        to: r.text("to_status")?,
        note: r.text("note"),
        reason: r.text("reason"),
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

pub fn execution(row: &Row) -> Option<Execution> {
    let r = Named::new(EXECUTION_COLUMNS, row);
    Some(Execution {
        id: r.text("id")?,
        playbook_id: r.text("playbook_id")?,
        playbook_name: r.text("playbook_name")?,
        alert_id: r.text("alert_id")?,
        mode: r.text("mode")?,
        started_by: r.text("started_by")?,
        status: r.text("status")?,
        outcomes: raw(&r, "outcomes")?,
        started_at: time(&r, "started_at")?,
        finished_at: time(&r, "finished_at")?,
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

pub fn sensor(row: &Row) -> Option<Sensor> {
    let r = Named::new(SENSOR_COLUMNS, row);
    Some(Sensor {
        id: r.text("id")?,
        name: r.text("name")?,
        kind: r.text("kind")?,
        location: r.text("location"),
        description: r.text("description"),
        last_heartbeat: time(&r, "last_heartbeat"),
        version: r.int("version")?,
        created_by: r.text("created_by")?,
        created_at: time(&r, "created_at")?,
        updated_at: time(&r, "updated_at")?,
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

pub fn audit(row: &Row) -> Option<AuditRecord> {
    let r = Named::new(AUDIT_COLUMNS, row);
    Some(AuditRecord {
        id: r.int("id")?,
        entry: AuditEntry {
            at: r.int("at")?,
            actor: r.text("actor")?,
            action: r.text("action")?,
            subject_kind: r.text("subject_kind"),
            subject_id: r.text("subject_id"),
            request_id: r.text("request_id"),
            client_addr: r.text("client_addr"),
            before: r.text("before"),
            after: r.text("after"),
        },
        prev_hash: r.text("prev_hash")?,
        hash: r.text("hash")?,
    })
}
