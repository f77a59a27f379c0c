//! Which rows a pack holds. A pack is about a subject (an alert, a decision,
//! a threat event or a sensor); its records follow from the subject's
//! *root*: an alert holds its events, playbook runs and the decisions about
//! it; a threat event its alert's; a sensor its events and alerts; a
//! decision is packed with the records of what it decides about (and only
//! itself among decisions). Each part is one SQL condition over `?1` (the
//! root's id), `?2` (the decision of a decision pack) and `?3` (the root's
//! kind), so every query of a build reads the same set.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use vigil_core::ApiError;
use vigil_core::sql::{Sql, Value};

use crate::params_for;
use crate::records;

/// What a pack is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SubjectKind {
    Alert,
    Decision,
    Threat,
    Sensor,
}

impl SubjectKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SubjectKind::Alert => "alert",
            SubjectKind::Decision => "decision",
            SubjectKind::Threat => "threat",
            SubjectKind::Sensor => "sensor",
        }
    }

    pub fn parse(s: &str) -> Option<SubjectKind> {
        [
            SubjectKind::Alert,
            SubjectKind::Decision,
            SubjectKind::Threat,
            SubjectKind::Sensor,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// What the records hang off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Root {
    Alert,
    Threat,
    Sensor,
    /// A decision about something with no records (an incident).
    Nothing,
}

/// A subject found in the database, with its record and its scope.
pub struct Resolved {
    pub kind: SubjectKind,
    pub id: String,
    /// `record.json`'s value.
    pub record: serde_json::Value,
    root: Root,
    root_id: String,
    root_kind: String,
    decision: Option<String>,
}

impl Resolved {
    /// `?1`, `?2`, `?3` of every scope condition.
    pub fn params(&self) -> Vec<Value> {
        vec![
            Value::Text(self.root_id.clone()),
            self.decision.clone().map_or(Value::Null, Value::Text),
            Value::Text(self.root_kind.clone()),
        ]
    }

    /// Events of the pack (a condition on `threat_events`).
    pub fn events_where(&self) -> &'static str {
        match self.root {
            Root::Alert => "alert_id = ?1",
            Root::Threat => "id = ?1",
            Root::Sensor => "sensor_id = ?1",
            Root::Nothing => "0",
        }
    }

    /// Alerts of the pack (a condition on `alerts`).
    pub fn alerts_where(&self) -> &'static str {
        match self.root {
            Root::Alert => "id = ?1",
            Root::Threat => "id IN (SELECT alert_id FROM threat_events WHERE id = ?1)",
            Root::Sensor => "sensor_id = ?1",
            Root::Nothing => "0",
        }
    }

    /// Decisions of the pack (a condition on `decisions`).
    pub fn decisions_where(&self) -> String {
        match self.decision {
            Some(_) => "id = ?2".into(),
            None => format!(
                "(subject_kind = 'alert' AND subject_id IN (SELECT id FROM alerts WHERE {})) \
                 OR (subject_kind = ?3 AND subject_id = ?1)",
                self.alerts_where()
            ),
        }
    }

    /// Playbook executions of the pack (a condition on `playbook_executions`).
    pub fn executions_where(&self) -> String {
        format!(
            "alert_id IN (SELECT id FROM alerts WHERE {})",
            self.alerts_where()
        )
    }

    /// Audit entries touching the pack's records: its alerts, decisions and
    /// playbook runs, and the root itself. Exports are audited under their
    /// own subject (`export_pack`), so building a pack does not change the
    /// next build of the same subject.
    pub fn audit_where(&self) -> String {
        format!(
            "(subject_kind = 'alert' AND subject_id IN (SELECT id FROM alerts WHERE {a})) \
             OR (subject_kind = 'decision' AND subject_id IN (SELECT id FROM decisions WHERE {d})) \
             OR (subject_kind = 'playbook' AND action = 'playbook.executed' \
                 AND json_extract(after, '$.id') IN (SELECT id FROM playbook_executions WHERE {e})) \
             OR (subject_kind = ?3 AND subject_id = ?1)",
            a = self.alerts_where(),
            d = self.decisions_where(),
            e = self.executions_where()
        )
    }

    /// How many events the pack would hold (checked against the limit first).
    pub async fn count_events(&self, db: &impl Sql) -> Result<i64, ApiError> {
        let sql = format!(
            "SELECT count(*) FROM threat_events WHERE {}",
            self.events_where()
        );
        let rows = db.query(&sql, &params_for(&sql, &self.params())).await?;
        Ok(rows
            .first()
            .and_then(|r| vigil_core::sql::int(r, 0))
            .unwrap_or(0))
    }
}

/// Find the subject; `None` when there is no such record (a 404).
pub async fn resolve(
    db: &impl Sql,
    kind: SubjectKind,
    id: &str,
) -> Result<Option<Resolved>, ApiError> {
    let one = |sql: String| async move {
        db.query(&sql, &[Value::Text(id.to_string())])
            .await
            .map(|rows| rows.into_iter().next())
    };
    let resolved = |record: serde_json::Value, root, root_kind: &str, decision| Resolved {
        kind,
        id: id.to_string(),
        record,
        root,
        root_id: id.to_string(),
        root_kind: root_kind.to_string(),
        decision,
    };
    Ok(match kind {
        SubjectKind::Alert => one(format!(
            "SELECT {} FROM alerts WHERE id = ?1",
            records::ALERT_COLUMNS
        ))
        .await?
        .and_then(|r| records::alert(&r))
        .map(|a| resolved(to_value(&a), Root::Alert, "alert", None)),
        SubjectKind::Threat => one(format!(
            "SELECT {} FROM threat_events WHERE id = ?1",
            records::EVENT_COLUMNS
        ))
        .await?
        .and_then(|r| records::event(&r))
        .map(|e| resolved(to_value(&e), Root::Threat, "threat", None)),
        SubjectKind::Sensor => one(format!(
            "SELECT {} FROM sensors WHERE id = ?1",
            records::SENSOR_COLUMNS
        ))
        .await?
        .and_then(|r| records::sensor(&r))
        .map(|s| resolved(to_value(&s), Root::Sensor, "sensor", None)),
        SubjectKind::Decision => {
            let Some(mut decision) = one(format!(
                "SELECT {} FROM decisions WHERE id = ?1",
                records::DECISION_COLUMNS
            ))
            .await?
            .and_then(|r| records::decision(&r)) else {
                return Ok(None);
            };
            decision.transitions =
                transitions(db, "decision_id = ?1", &[Value::Text(id.into())]).await?;
            let root = match decision.subject.kind.as_str() {
                "alert" => Root::Alert,
                "threat" => Root::Threat,
                "sensor" => Root::Sensor,
                _ => Root::Nothing,
            };
            Some(Resolved {
                kind,
                id: id.to_string(),
                record: to_value(&decision),
                root,
                root_id: decision.subject.id.clone(),
                root_kind: decision.subject.kind.clone(),
                decision: Some(id.to_string()),
            })
        }
    })
}

/// Transitions of the decisions matching `condition` (on
/// `decision_transitions`), in the order they happened.
pub(crate) async fn transitions(
    db: &impl Sql,
    condition: &str,
    params: &[Value],
) -> Result<Vec<records::Transition>, ApiError> {
    let sql = format!(
        "SELECT {} FROM decision_transitions WHERE {condition} ORDER BY decision_id, id",
        records::TRANSITION_COLUMNS
    );
    db.query(&sql, &params_for(&sql, params))
        .await?
        .iter()
        .map(|r| records::transition(r).ok_or_else(records::unreadable))
        .collect()
}

fn to_value<T: Serialize>(record: &T) -> serde_json::Value {
    serde_json::to_value(record).expect("records serialize")
}
