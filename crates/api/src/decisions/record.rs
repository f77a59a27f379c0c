//! A decision as stored and as served, and reading it back.

use crate::db::Value;
use crate::{ApiError, db};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use spin_sdk::sqlite::Connection;
use vigil_core::decision::{Action, DecisionState, Priority, Status, ThreatLevel, parse_wire};
use vigil_core::time::rfc3339;

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
    outcome_detail, created_at, updated_at";

pub fn from_row(r: &[Value], now: i64) -> Option<Decision> {
    let status: Status = parse_wire(&db::text(r, 13)?)?;
    let deadline = db::int(r, 12)?;
    Some(Decision {
        id: db::text(r, 0)?,
        source: db::text(r, 1)?,
        subject: Subject {
            kind: parse_wire(&db::text(r, 2)?)?,
            id: db::text(r, 3)?,
        },
        proposed_action: parse_wire(&db::text(r, 4)?)?,
        parameters: serde_json::from_str(&db::text(r, 5)?).ok()?,
        threat_level: parse_wire(&db::text(r, 6)?)?,
        confidence: db::real(r, 7)?,
        summary: db::text(r, 8)?,
        rationale: db::text(r, 9)?,
        evidence: serde_json::from_str(&db::text(r, 10)?).ok()?,
        priority: Priority::from_rank(db::int(r, 11)?)?,
        sla_deadline: rfc3339(deadline),
        overdue: status.is_open() && now > deadline,
        status,
        version: db::int(r, 14)?,
        assignee: db::text(r, 15),
        submitted_by: db::text(r, 16)?,
        first_approver: db::text(r, 17),
        outcome_detail: db::text(r, 18),
        created_at: rfc3339(db::int(r, 19)?),
        updated_at: rfc3339(db::int(r, 20)?),
        deadline_ms: deadline,
    })
}

pub fn load(conn: &Connection, id: &str, now: i64) -> Result<Decision, ApiError> {
    let rows = db::query(
        conn,
        &format!("SELECT {COLUMNS} FROM decisions WHERE id = ?1"),
        &[Value::Text(id.into())],
    )?;
    rows.first()
        .and_then(|r| from_row(r, now))
        .ok_or_else(ApiError::not_found)
}

impl Decision {
    pub fn etag(&self) -> String {
        crate::response::etag(self.version)
    }

    pub fn state(&self) -> DecisionState {
        DecisionState {
            status: self.status,
            action: self.proposed_action,
            submitted_by: self.submitted_by.clone(),
            assignee: self.assignee.clone(),
            first_approver: self.first_approver.clone(),
            deadline: self.deadline_ms,
        }
    }

    /// The response for this decision, with its ETag.
    pub fn response(&self, status: u16) -> spin_sdk::http::Response {
        let mut response = crate::response::json(status, self);
        response.set_header("etag", self.etag());
        response
    }
}
