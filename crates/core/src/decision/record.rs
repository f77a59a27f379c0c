//! A decision as stored and as served, reading it back, and writing one
//! transition with its history, audit entry, outbox event and metrics
//! rollup (`crate::rollup`). The `decisions` component, playbooks and the
//! relay's jobs all write through here, on Spin's SQLite and on libSQL
//! alike ([`Sql`]).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{
    Action, Actor, Command, DecisionState, Priority, Status, ThreatLevel, Transition,
    TransitionError, parse_wire, transition, wire,
};
use crate::ApiError;
use crate::audit::{self, Actor as AuditActor};
use crate::outbox;
use crate::sql::{Sql, Value, int, opt_text, real, text};
use crate::time::rfc3339;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SubjectKind {
    Alert,
    Threat,
    Incident,
    Sensor,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Subject {
    pub kind: SubjectKind,
    #[schemars(length(min = 1, max = 128))]
    pub id: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Evidence {
    /// References to what supports the proposal (event ids, URLs, file hashes).
    #[serde(default)]
    #[schemars(length(max = 100))]
    pub refs: Vec<String>,
    /// A watchlist confirmed the identity a summary asserts.
    #[serde(default)]
    pub watchlist_match: bool,
}

/// A decision as the API shows it.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct Decision {
    #[schemars(extend("format" = "uuid"))]
    pub id: String,
    pub source: String,
    pub subject: Subject,
    pub proposed_action: Action,
    pub parameters: serde_json::Map<String, serde_json::Value>,
    pub threat_level: ThreatLevel,
    pub confidence: f64,
    pub summary: String,
    pub rationale: String,
    pub evidence: Evidence,
    pub priority: Priority,
    #[schemars(extend("format" = "date-time"))]
    pub sla_deadline: String,
    /// Open and past its deadline.
    pub overdue: bool,
    pub status: Status,
    /// Changes with every transition; the ETag is `"<version>"`.
    pub version: i64,
    pub assignee: Option<String>,
    pub submitted_by: String,
    /// For a decision a playbook opened on an alert: who ingested the
    /// alert's events (users, `key:<id>`). They count as submitters, so an
    /// analyst cannot approve what their own events asked for.
    pub ingested_by: Vec<String>,
    pub first_approver: Option<String>,
    pub outcome_detail: Option<String>,
    #[schemars(extend("format" = "date-time"))]
    pub created_at: String,
    #[schemars(extend("format" = "date-time"))]
    pub updated_at: String,
    #[serde(skip)]
    pub deadline_ms: i64,
}

pub const COLUMNS: &str = "id, source, subject_kind, subject_id, action, parameters, threat_level, confidence, \
    summary, rationale, evidence, priority, sla_deadline, status, version, assignee, submitted_by, first_approver, \
    outcome_detail, created_at, updated_at, ingested_by";

/// A row of [`COLUMNS`], as the API shows it at `now`.
pub fn from_row(r: &[Value], now: i64) -> Option<Decision> {
    let status: Status = parse_wire(&text(r, 13)?)?;
    let deadline = int(r, 12)?;
    Some(Decision {
        id: text(r, 0)?,
        source: text(r, 1)?,
        subject: Subject {
            kind: parse_wire(&text(r, 2)?)?,
            id: text(r, 3)?,
        },
        proposed_action: parse_wire(&text(r, 4)?)?,
        parameters: serde_json::from_str(&text(r, 5)?).ok()?,
        threat_level: parse_wire(&text(r, 6)?)?,
        confidence: real(r, 7)?,
        summary: text(r, 8)?,
        rationale: text(r, 9)?,
        evidence: serde_json::from_str(&text(r, 10)?).ok()?,
        priority: Priority::from_rank(int(r, 11)?)?,
        sla_deadline: rfc3339(deadline),
        overdue: status.is_open() && now > deadline,
        status,
        version: int(r, 14)?,
        assignee: text(r, 15),
        submitted_by: text(r, 16)?,
        ingested_by: serde_json::from_str(&text(r, 21)?).ok()?,
        first_approver: text(r, 17),
        outcome_detail: text(r, 18),
        created_at: rfc3339(int(r, 19)?),
        updated_at: rfc3339(int(r, 20)?),
        deadline_ms: deadline,
    })
}

/// Decision `id` (404 when there is none).
pub async fn load(db: &impl Sql, id: &str, now: i64) -> Result<Decision, ApiError> {
    let rows = db
        .query(
            &format!("SELECT {COLUMNS} FROM decisions WHERE id = ?1"),
            &[Value::Text(id.into())],
        )
        .await?;
    rows.first()
        .and_then(|r| from_row(r, now))
        .ok_or_else(ApiError::not_found)
}

impl Decision {
    pub fn state(&self) -> DecisionState {
        DecisionState {
            status: self.status,
            action: self.proposed_action,
            submitted_by: self.submitted_by.clone(),
            ingested_by: self.ingested_by.clone(),
            assignee: self.assignee.clone(),
            first_approver: self.first_approver.clone(),
            deadline: self.deadline_ms,
        }
    }
}

impl From<TransitionError> for ApiError {
    fn from(e: TransitionError) -> ApiError {
        match e {
            TransitionError::Illegal { from, command } => {
                ApiError::new(409, "illegal-transition", "Illegal transition").with_detail(format!(
                    "cannot {command} a decision that is {}",
                    wire(&from)
                ))
            }
            TransitionError::NotAllowed(why) => {
                ApiError::new(403, "not-allowed", "Not allowed").with_detail(why)
            }
            TransitionError::Invalid { field, message } => ApiError::invalid_field(field, message),
        }
    }
}

/// One checked transition, with what the person said about it.
pub struct Change<'a> {
    pub command: &'a Command,
    pub to: &'a Transition,
    /// The decision actor's id (a user, or `system:…` for the scheduler).
    pub actor: &'a str,
    pub note: Option<&'a str>,
    pub reason: Option<&'a str>,
    pub outcome_detail: Option<&'a str>,
}

/// Write one transition of `before` with its history, audit entry (by
/// `who`, under the change's actor) and `decision.updated` event, inside the
/// caller's write transaction. 412 when the decision changed meanwhile.
pub async fn record_transition(
    db: &impl Sql,
    who: &AuditActor,
    before: &Decision,
    change: &Change<'_>,
    now: i64,
) -> Result<Decision, ApiError> {
    let Change {
        command,
        to: t,
        actor,
        note,
        reason,
        outcome_detail,
    } = *change;
    let updated = db
        .query(
            "UPDATE decisions SET status = ?2, version = version + 1, assignee = ?3, first_approver = ?4,
                    outcome_detail = coalesce(?5, outcome_detail), updated_at = ?6
             WHERE id = ?1 AND version = ?7 RETURNING id",
            &[
                Value::Text(before.id.clone()),
                Value::Text(wire(&t.to)),
                opt_text(t.assignee.as_deref()),
                opt_text(t.first_approver.as_deref()),
                opt_text(outcome_detail),
                Value::Integer(now),
                Value::Integer(before.version),
            ],
        )
        .await?;
    if updated.is_empty() {
        return Err(ApiError::precondition_failed(
            "the decision changed meanwhile; reload it",
        ));
    }
    db.query(
        "INSERT INTO decision_transitions (decision_id, at, actor, command, from_status, to_status, note, reason)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        &[
            Value::Text(before.id.clone()),
            Value::Integer(now),
            Value::Text(actor.into()),
            Value::Text(command.name().into()),
            Value::Text(wire(&before.status)),
            Value::Text(wire(&t.to)),
            opt_text(note),
            opt_text(reason),
        ],
    )
    .await?;
    crate::rollup::decision_transition(
        db,
        &before.id,
        &wire(&before.status),
        &wire(&t.to),
        actor,
        reason,
        now,
    )
    .await?;
    let after = load(db, &before.id, now).await?;
    let mut entry = who.entry(
        &format!("decision.{}", command.name()),
        "decision",
        &before.id,
        now,
    );
    entry.actor = actor.into();
    entry.before = Some(serde_json::to_string(before).expect("serializes"));
    entry.after = Some(serde_json::to_string(&after).expect("serializes"));
    audit::append(db, &entry).await?;
    let event = serde_json::json!({"decision": after, "command": command.name(), "from": before.status, "actor": actor});
    outbox::publish(db, "decision.updated", &event, now).await?;
    Ok(after)
}

/// How many overdue decisions one call escalates (the rest wait for the next).
pub const ESCALATIONS_PER_CALL: i64 = 500;

/// Escalate every open decision past its SLA deadline that nobody has
/// escalated yet (pending or claimed), most urgent first, inside the
/// caller's write transaction; the ids escalated. The scheduler's own
/// decision actor is `system:<who>`.
pub async fn escalate_overdue(
    db: &impl Sql,
    who: &AuditActor,
    now: i64,
) -> Result<Vec<String>, ApiError> {
    let system = Actor {
        id: format!("system:{}", who.actor),
        role: None,
    };
    let rows = db
        .query(
            &format!(
                "SELECT {COLUMNS} FROM decisions WHERE status IN ('pending', 'claimed') AND sla_deadline < ?1
                 ORDER BY priority, sla_deadline LIMIT ?2"
            ),
            &[Value::Integer(now), Value::Integer(ESCALATIONS_PER_CALL)],
        )
        .await?;
    let mut ids = Vec::new();
    for before in rows.iter().filter_map(|r| from_row(r, now)) {
        let t = transition(&before.state(), &Command::EscalateOverdue, &system, &[])?;
        let change = Change {
            command: &Command::EscalateOverdue,
            to: &t,
            actor: &system.id,
            note: Some("past its SLA deadline"),
            reason: None,
            outcome_detail: None,
        };
        record_transition(db, who, &before, &change, now).await?;
        ids.push(before.id);
    }
    Ok(ids)
}

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
    /// Who ingested the events it rests on (see [`Decision::ingested_by`]);
    /// empty for a decision an engine or a person submitted.
    pub ingested_by: Vec<String>,
}

/// Insert `new` as a pending decision inside the caller's transaction, with
/// its first history row, the audit `entry` (its `after` is filled in here)
/// and the `decision.created` outbox event. Priority follows the threat
/// level, and the deadline the priority under `sla`. The caller has already
/// run the safety check.
pub async fn open_pending(
    db: &impl Sql,
    id: &str,
    new: &NewDecision,
    submitted_by: &str,
    mut entry: audit::AuditEntry,
    sla: &super::SlaPolicy,
    now: i64,
) -> Result<Decision, ApiError> {
    let priority = Priority::from_threat_level(new.threat_level);
    let deadline = sla.deadline(priority, now);
    db.query(
        "INSERT INTO decisions (id, source, subject_kind, subject_id, action, parameters, threat_level, confidence,
                                summary, rationale, evidence, priority, sla_deadline, status, version, submitted_by,
                                created_at, updated_at, ingested_by)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, 'pending', 1, ?14, ?15, ?15, ?16)",
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
            Value::Text(serde_json::to_string(&new.ingested_by).expect("serializes")),
        ],
    )
    .await?;
    db.query(
        "INSERT INTO decision_transitions (decision_id, at, actor, command, to_status) VALUES (?1, ?2, ?3, 'submit', 'pending')",
        &[
            Value::Text(id.into()),
            Value::Integer(now),
            Value::Text(submitted_by.into()),
        ],
    )
    .await?;
    crate::rollup::decision_submitted(db, priority.rank(), now).await?;
    let created = load(db, id, now).await?;
    entry.after = Some(serde_json::to_string(&created).expect("decision serializes"));
    audit::append(db, &entry).await?;
    outbox::publish(
        db,
        "decision.created",
        &serde_json::to_value(&created).expect("serializes"),
        now,
    )
    .await?;
    Ok(created)
}
