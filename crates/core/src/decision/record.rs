//! A decision as stored and as served, reading it back, and opening one
//! (with its first history row, audit entry, outbox event and metrics
//! rollup). Its transitions are written by [`super::transitions`]. The `decisions` component, playbooks and the
//! relay's jobs all write through here, on Spin's SQLite and on libSQL
//! alike ([`Sql`]).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{
    Action, DecisionState, Priority, Status, ThreatLevel, TransitionError, parse_wire, wire,
};
use crate::ApiError;
use crate::audit;
use crate::audited::{self, Audited};
use crate::sql::{Columns, Sql, Value};
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

pub static COLUMNS: Columns = Columns::new(
    "id, source, subject_kind, subject_id, action, parameters, threat_level, confidence, \
    summary, rationale, evidence, priority, sla_deadline, status, version, assignee, submitted_by, first_approver, \
    outcome_detail, created_at, updated_at, ingested_by",
);

/// A row of [`COLUMNS`], as the API shows it at `now`.
pub fn from_row(row: &[Value], now: i64) -> Option<Decision> {
    let r = COLUMNS.row(row);
    let status: Status = parse_wire(&r.text("status")?)?;
    let deadline = r.int("sla_deadline")?;
    Some(Decision {
        id: r.text("id")?,
        source: r.text("source")?,
        subject: Subject {
            kind: parse_wire(&r.text("subject_kind")?)?,
            id: r.text("subject_id")?,
        },
        proposed_action: parse_wire(&r.text("action")?)?,
        parameters: serde_json::from_str(&r.text("parameters")?).ok()?,
        threat_level: parse_wire(&r.text("threat_level")?)?,
        confidence: r.real("confidence")?,
        summary: r.text("summary")?,
        rationale: r.text("rationale")?,
        evidence: serde_json::from_str(&r.text("evidence")?).ok()?,
        priority: Priority::from_rank(r.int("priority")?)?,
        sla_deadline: rfc3339(deadline),
        overdue: status.is_open() && now > deadline,
        status,
        version: r.int("version")?,
        assignee: r.text("assignee"),
        submitted_by: r.text("submitted_by")?,
        ingested_by: serde_json::from_str(&r.text("ingested_by")?).ok()?,
        first_approver: r.text("first_approver"),
        outcome_detail: r.text("outcome_detail"),
        created_at: rfc3339(r.int("created_at")?),
        updated_at: rfc3339(r.int("updated_at")?),
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

/// What a new decision proposes.
#[derive(Debug)]
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
    entry: audit::AuditEntry,
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
    let payload = serde_json::to_value(&created).expect("serializes");
    let audited = Audited::new(entry)
        .after(&created)
        .publish("decision.created", payload);
    audited::record(db, &audited).await?;
    Ok(created)
}
