//! Decisions as stored, shared by the `decisions` component (engines and
//! analysts submit) and the `threats` component (playbooks open decisions
//! for actions that must wait for a person), so both open them one way.
//!
//! - [`record`]: a decision as stored and served, and reading it back.
//! - [`settings`]: the safety policy, SLA and dispatch-type actions (variables).

pub mod record;
pub mod settings;

use crate::db::Value;
use spin_sdk::sqlite::Connection;
use vigil_core::decision::{Action, Priority, ThreatLevel, wire};

use vigil_core::audit::AuditEntry;

use crate::audit;
use crate::{ApiError, db};
use record::{Decision, Evidence, Subject};

/// What a new decision proposes.
pub struct NewDecision {
    /// The proposing engine (or `playbook`).
    pub source: String,
    pub subject: Subject,
    pub action: Action,
    pub parameters: serde_json::Map<String, serde_json::Value>,
    pub threat_level: ThreatLevel,
    pub confidence: f64,
    pub summary: String,
    pub rationale: String,
    pub evidence: Evidence,
}

/// Insert `new` as a pending decision inside the caller's transaction, with
/// its first history row, the audit `entry` (its `after` is filled in here)
/// and the `decision.created` outbox event. Priority and SLA deadline follow
/// the threat level. The caller has already run the safety check.
pub fn open_pending(
    conn: &Connection,
    id: &str,
    new: &NewDecision,
    submitted_by: &str,
    mut entry: AuditEntry,
    now: i64,
) -> Result<Decision, ApiError> {
    let priority = Priority::from_threat_level(new.threat_level);
    let deadline = settings::sla().deadline(priority, now);
    db::query(
        conn,
        "INSERT INTO decisions (id, source, subject_kind, subject_id, action, parameters, threat_level, confidence,
                                summary, rationale, evidence, priority, sla_deadline, status, version, submitted_by,
                                created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, 'pending', 1, ?14, ?15, ?15)",
        &[
            Value::Text(id.into()),
            Value::Text(new.source.clone()),
            Value::Text(wire(&new.subject.kind)),
            Value::Text(new.subject.id.clone()),
            Value::Text(wire(&new.action)),
            Value::Text(serde_json::Value::Object(new.parameters.clone()).to_string()),
            Value::Text(wire(&new.threat_level)),
            Value::Real(new.confidence),
            Value::Text(new.summary.clone()),
            Value::Text(new.rationale.clone()),
            Value::Text(serde_json::to_string(&new.evidence).expect("evidence serializes")),
            Value::Integer(priority.rank()),
            Value::Integer(deadline),
            Value::Text(submitted_by.into()),
            Value::Integer(now),
        ],
    )?;
    db::query(
        conn,
        "INSERT INTO decision_transitions (decision_id, at, actor, command, to_status) VALUES (?1, ?2, ?3, 'submit', 'pending')",
        &[
            Value::Text(id.into()),
            Value::Integer(now),
            Value::Text(submitted_by.into()),
        ],
    )?;
    let created = record::load(conn, id, now)?;
    entry.after = Some(serde_json::to_string(&created).expect("decision serializes"));
    audit::append(conn, &entry)?;
    audit::publish(
        conn,
        "decision.created",
        &serde_json::to_value(&created).expect("serializes"),
        now,
    )?;
    Ok(created)
}
