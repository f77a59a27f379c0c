//! The JSON forms of stored rows, as packs and exports write them. Times are
//! RFC 3339 (UTC, milliseconds), except in audit entries, whose `at` stays
//! the stored integer so that anyone can recompute the chain's hashes.
//! Stored JSON (payloads, breakdowns, outcomes) is written as stored.

use serde::Serialize;
use serde_json::value::RawValue;
use vigil_core::audit::AuditEntry;
use vigil_core::sql::{Columns, Named, Value};
use vigil_core::time::rfc3339;

/// A stored row that does not read as its record (a broken invariant).
pub fn unreadable() -> vigil_core::ApiError {
    vigil_core::ApiError::internal().with_detail("a stored row could not be read")
}

/// Stored JSON, as stored.
fn time(row: &Named, column: &str) -> Option<String> {
    row.int(column).map(rfc3339)
}

// Events, alerts and playbook runs are written as the API serves them, by
// the same readers.
pub use vigil_ingest::alert::{Alert, COLUMNS as ALERT_COLUMNS, from_row as alert};
pub use vigil_ingest::execution::{EXECUTION_COLUMNS, Execution, execution_from_row as execution};
pub use vigil_ingest::threat::{COLUMNS as EVENT_COLUMNS, Threat as Event, from_row as event};

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

pub static DECISION_COLUMNS: Columns = Columns::new(
    "id, source, subject_kind, subject_id, action, parameters, threat_level, confidence, \
    summary, rationale, evidence, priority, sla_deadline, status, version, assignee, first_approver, submitted_by, \
    outcome_detail, created_at, updated_at",
);

pub fn decision(row: &[Value]) -> Option<Decision> {
    let r = DECISION_COLUMNS.row(row);
    Some(Decision {
        id: r.text("id")?,
        source: r.text("source")?,
        subject: SubjectRef {
            kind: r.text("subject_kind")?,
            id: r.text("subject_id")?,
        },
        action: r.text("action")?,
        parameters: r.json("parameters")?,
        threat_level: r.text("threat_level")?,
        confidence: r.real("confidence")?,
        summary: r.text("summary")?,
        rationale: r.text("rationale")?,
        evidence: r.json("evidence")?,
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

pub static TRANSITION_COLUMNS: Columns =
    Columns::new("decision_id, at, actor, command, from_status, to_status, note, reason");

pub fn transition(row: &[Value]) -> Option<Transition> {
    let r = TRANSITION_COLUMNS.row(row);
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

pub static SENSOR_COLUMNS: Columns = Columns::new(
    "id, name, kind, location, description, last_heartbeat, version, created_by, created_at, updated_at",
);

pub fn sensor(row: &[Value]) -> Option<Sensor> {
    let r = SENSOR_COLUMNS.row(row);
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

pub static AUDIT_COLUMNS: Columns = Columns::new(
    "id, at, actor, action, subject_kind, subject_id, request_id, client_addr, before, \
    after, prev_hash, hash",
);

pub fn audit(row: &[Value]) -> Option<AuditRecord> {
    let r = AUDIT_COLUMNS.row(row);
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
