//! Running a playbook against an alert, written once for its two callers:
//! `POST /api/playbooks/{id}/execute` in the threats component (by hand)
//! and the relay's `playbooks` job (automatically, on `alert.opened`).
//!
//! A run has two halves with the network in between, so no write lock is
//! held while a webhook is waited for: [`prepare`] reads what the alert
//! offers and says which webhooks to send ([`Run::webhooks`]); the caller
//! sends them (the component through `wasi:http`, the relay natively); then
//! [`finish`], inside the caller's write transaction, carries out the run's
//! [`plan`] (what each action comes to, decided without the database: a
//! notification, a decision to open after the safety check, or nothing), and
//! stores the execution with every action's outcome, audited and published.

mod plan;

pub use plan::{Step, notified, plan, status};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use vigil_core::ApiError;
use vigil_core::audit::Actor;
use vigil_core::audited::{self, Audited};
use vigil_core::decision::record::open_pending;
use vigil_core::decision::{SafetyPolicy, SlaPolicy};
use vigil_core::id::new_id;
use vigil_core::sql::{Columns, Named, Sql, Value, text};
use vigil_core::time::rfc3339;
use vigil_core::wire::parse_wire;

use crate::alert::Alert;
use crate::event::EventType;
use crate::playbook::{ActionKind, AlertFacts, PlaybookAction, Trigger};

/// A playbook as stored and as the API shows it.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct Playbook {
    #[schemars(extend("format" = "uuid"))]
    pub id: String,
    pub name: String,
    pub description: String,
    /// Runs automatically when a matching alert opens.
    pub enabled: bool,
    pub trigger: Trigger,
    pub actions: Vec<PlaybookAction>,
    /// Changes with every edit; the ETag is `"<version>"`.
    pub version: i64,
    #[schemars(extend("format" = "date-time"))]
    pub created_at: String,
    #[schemars(extend("format" = "date-time"))]
    pub updated_at: String,
}

pub static PLAYBOOK_COLUMNS: Columns = Columns::new(
    "id, name, description, enabled, trigger, actions, version, created_at, updated_at",
);

/// A row of [`PLAYBOOK_COLUMNS`].
pub fn playbook_from_row(row: &[Value]) -> Option<Playbook> {
    let r = PLAYBOOK_COLUMNS.row(row);
    Some(Playbook {
        id: r.text("id")?,
        name: r.text("name")?,
        description: r.text("description")?,
        enabled: r.int("enabled")? == 1,
        trigger: serde_json::from_str(&r.text("trigger")?).ok()?,
        actions: serde_json::from_str(&r.text("actions")?).ok()?,
        version: r.int("version")?,
        created_at: rfc3339(r.int("created_at")?),
        updated_at: rfc3339(r.int("updated_at")?),
    })
}

/// Playbook `id` (404 when there is none).
pub async fn load_playbook(db: &impl Sql, id: &str) -> Result<Playbook, ApiError> {
    let rows = db
        .query(
            &format!("SELECT {PLAYBOOK_COLUMNS} FROM playbooks WHERE id = ?1"),
            &[Value::Text(id.into())],
        )
        .await?;
    rows.first()
        .and_then(|r| playbook_from_row(r))
        .ok_or_else(ApiError::not_found)
}

/// The playbooks that run by themselves, by name.
pub async fn enabled_playbooks(db: &impl Sql) -> Result<Vec<Playbook>, ApiError> {
    Ok(db
        .query(
            &format!("SELECT {PLAYBOOK_COLUMNS} FROM playbooks WHERE enabled = 1 ORDER BY name"),
            &[],
        )
        .await?
        .iter()
        .filter_map(|r| playbook_from_row(r))
        .collect())
}

/// What became of one action.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct ActionOutcome {
    pub index: usize,
    pub kind: ActionKind,
    /// `decision_opened`, `sent`, `failed` (a webhook that did not get a 2xx),
    /// `refused` (the decision safety check said no) or `skipped` (the alert
    /// has nothing for this action to aim at).
    pub outcome: String,
    pub target: Option<String>,
    #[schemars(extend("format" = "uuid"))]
    pub decision_id: Option<String>,
    pub detail: Option<String>,
}

impl ActionOutcome {
    fn new(index: usize, action: &PlaybookAction, outcome: &str, target: Option<String>) -> Self {
        ActionOutcome {
            index,
            kind: action.kind,
            outcome: outcome.into(),
            target,
            decision_id: None,
            detail: None,
        }
    }

    fn detail(mut self, detail: String) -> Self {
        self.detail = Some(detail);
        self
    }
}

/// One run of a playbook, as stored.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct Execution {
    #[schemars(extend("format" = "uuid"))]
    pub id: String,
    #[schemars(extend("format" = "uuid"))]
    pub playbook_id: String,
    pub playbook_name: String,
    #[schemars(extend("format" = "uuid"))]
    pub alert_id: String,
    /// `manual` or `automatic`.
    pub mode: String,
    pub started_by: String,
    /// `completed`, or `completed_with_errors` when an action failed or was refused.
    pub status: String,
    pub outcomes: Vec<ActionOutcome>,
    #[schemars(extend("format" = "date-time"))]
    pub started_at: String,
    #[schemars(extend("format" = "date-time"))]
    pub finished_at: String,
    #[serde(skip)]
    pub started_ms: i64,
}

pub static EXECUTION_COLUMNS: Columns = Columns::new(
    "id, playbook_id, playbook_name, alert_id, mode, started_by, status, outcomes, started_at, finished_at",
);

/// A row of [`EXECUTION_COLUMNS`].
pub fn execution_from_row(row: &[Value]) -> Option<Execution> {
    let r = EXECUTION_COLUMNS.row(row);
    Some(Execution {
        id: r.text("id")?,
        playbook_id: r.text("playbook_id")?,
        playbook_name: r.text("playbook_name")?,
        alert_id: r.text("alert_id")?,
        mode: r.text("mode")?,
        started_by: r.text("started_by")?,
        status: r.text("status")?,
        outcomes: serde_json::from_str(&r.text("outcomes")?).ok()?,
        started_at: rfc3339(r.int("started_at")?),
        finished_at: rfc3339(r.int("finished_at")?),
        started_ms: r.int("started_at")?,
    })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Manual,
    Automatic,
}

/// What an alert offers a playbook, from the alert and its latest event.
pub async fn facts_of(db: &impl Sql, alert: &Alert) -> Result<AlertFacts, ApiError> {
    let event_type = parse_wire::<EventType>(&alert.event_type);
    let mut facts = AlertFacts {
        event_type,
        severity: parse_wire(&alert.severity),
        technique: event_type
            .and_then(|t| t.technique())
            .map(|t| t.id.to_string()),
        source_ip: alert.source_ip.clone(),
        sensor_id: alert.sensor_id.clone(),
        ..AlertFacts::default()
    };
    static LATEST: Columns = Columns::new("dest_ip, dest_zone, payload");
    let rows = db
        .query(
            &format!("SELECT {LATEST} FROM threat_events WHERE alert_id = ?1 ORDER BY observed_at DESC LIMIT 1"),
            &[Value::Text(alert.id.clone())],
        )
        .await?;
    if let Some(row) = rows.first() {
        let r = LATEST.row(row);
        facts.dest_ip = r.text("dest_ip");
        facts.zone = r.text("dest_zone");
        if let Some(payload) = r
            .text("payload")
            .and_then(|p| serde_json::from_str(&p).ok())
        {
            facts.read_payload(&payload);
        }
    }
    Ok(facts)
}

/// One execution about to happen: what it runs, against what, for whom,
/// and what every decision it opens rests on.
pub struct Run {
    pub id: String,
    pub playbook: Playbook,
    pub alert: Alert,
    pub facts: AlertFacts,
    pub mode: Mode,
    /// Who runs it: a user, or `playbook:<id>` when it runs by itself.
    pub by: String,
    /// The alert's most confident event.
    confidence: f64,
    /// The alert and its latest events.
    refs: Vec<String>,
    started: i64,
}

/// A webhook a run sends: its action, where, and the JSON body.
pub struct Webhook {
    pub index: usize,
    pub url: String,
    pub body: Vec<u8>,
}

/// Read what `alert` offers `playbook` and what its decisions would rest on.
pub async fn prepare(
    db: &impl Sql,
    playbook: Playbook,
    alert: Alert,
    facts: AlertFacts,
    mode: Mode,
    by: String,
    now: i64,
) -> Result<Run, ApiError> {
    static EVENTS: Columns = Columns::new("id, confidence");
    let rows = db
        .query(
            &format!("SELECT {EVENTS} FROM threat_events WHERE alert_id = ?1 ORDER BY observed_at DESC LIMIT 50"),
            &[Value::Text(alert.id.clone())],
        )
        .await?;
    let events: Vec<Named> = rows.iter().map(|r| EVENTS.row(r)).collect();
    let confidence = events
        .iter()
        .filter_map(|r| r.real("confidence"))
        .fold(None, |m: Option<f64>, c| Some(m.map_or(c, |m| m.max(c))))
        .unwrap_or(1.0);
    let mut refs = vec![format!("alert:{}", alert.id)];
    refs.extend(
        events
            .iter()
            .take(10)
            .filter_map(|r| r.text("id"))
            .map(|id| format!("threat:{id}")),
    );
    Ok(Run {
        id: new_id(),
        playbook,
        alert,
        facts,
        mode,
        by,
        confidence,
        refs,
        started: now,
    })
}

impl Run {
    fn mode_name(&self) -> &'static str {
        match self.mode {
            Mode::Manual => "manual",
            Mode::Automatic => "automatic",
        }
    }

    /// The webhooks to send before [`finish`], in action order.
    pub fn webhooks(&self) -> Vec<Webhook> {
        let body = serde_json::json!({
            "type": "vigil.playbook.notification", "execution_id": self.id, "mode": self.mode_name(),
            "playbook": {"id": self.playbook.id, "name": self.playbook.name}, "alert": self.alert,
        })
        .to_string()
        .into_bytes();
        self.playbook
            .actions
            .iter()
            .enumerate()
            .filter(|(_, a)| !a.opens_decision())
            .map(|(index, a)| Webhook {
                index,
                url: a.url.clone().unwrap_or_default(),
                body: body.clone(),
            })
            .collect()
    }
}

/// What the rules a decision is opened under say (the decisions settings).
#[derive(Clone, Debug)]
pub struct DecisionRules {
    pub safety: SafetyPolicy,
    pub sla: SlaPolicy,
}

/// Inside the caller's write transaction: carry out the run's [`plan`]:
/// open the decisions the actions wait for, and store the execution with
/// every action's outcome (`sent`: each webhook's HTTP status or why it
/// failed, by action index), audited as `who` under the run's `by`, and
/// published (`playbook.executed`).
pub async fn finish(
    db: &impl Sql,
    run: &Run,
    sent: &[(usize, Result<u16, String>)],
    rules: &DecisionRules,
    who: &Actor,
    now: i64,
) -> Result<Execution, ApiError> {
    let steps = plan(run, &rules.safety);
    let ingesters = if steps.iter().any(|s| matches!(s, Step::Decide { .. })) {
        ingesters(db, &run.alert.id).await?
    } else {
        vec![]
    };
    let mut outcomes = Vec::new();
    for (index, (action, step)) in run.playbook.actions.iter().zip(steps).enumerate() {
        let outcome = match step {
            Step::Notify { url } => notified(index, action, &url, sent),
            Step::Settled(outcome) => outcome,
            Step::Decide {
                target,
                mut decision,
            } => {
                decision.ingested_by = ingesters.clone();
                let decision_id = new_id();
                let mut entry = who.entry("decision.submitted", "decision", &decision_id, now);
                entry.actor = run.by.clone();
                open_pending(db, &decision_id, &decision, &run.by, entry, &rules.sla, now).await?;
                let mut outcome =
                    ActionOutcome::new(index, action, "decision_opened", Some(target));
                outcome.decision_id = Some(decision_id);
                outcome
            }
        };
        outcomes.push(outcome);
    }
    record(db, run, &outcomes, who, now).await
}

/// How many ingesters of an alert's events a decision records at most.
const MAX_INGESTERS: i64 = 100;

/// Who ingested the events of alert `alert_id` (the principals recorded
/// with them): the submitters of the decisions a playbook opens on it,
/// besides the playbook (`vigil_core::decision::is_submitter`).
pub async fn ingesters(db: &impl Sql, alert_id: &str) -> Result<Vec<String>, ApiError> {
    Ok(db
        .query(
            "SELECT DISTINCT ingested_by FROM threat_events
             WHERE alert_id = ?1 AND ingested_by IS NOT NULL ORDER BY ingested_by LIMIT ?2",
            &[Value::Text(alert_id.into()), Value::Integer(MAX_INGESTERS)],
        )
        .await?
        .iter()
        .filter_map(|r| text(r, 0))
        .collect())
}

/// Store the execution with its outcomes, audited and published.
async fn record(
    db: &impl Sql,
    run: &Run,
    outcomes: &[ActionOutcome],
    who: &Actor,
    now: i64,
) -> Result<Execution, ApiError> {
    let rows = db
        .query(
            &format!(
                "INSERT INTO playbook_executions (id, playbook_id, playbook_name, alert_id, mode, started_by, status, outcomes, started_at, finished_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) RETURNING {EXECUTION_COLUMNS}"
            ),
            &[
                Value::Text(run.id.clone()),
                Value::Text(run.playbook.id.clone()),
                Value::Text(run.playbook.name.clone()),
                Value::Text(run.alert.id.clone()),
                Value::Text(run.mode_name().into()),
                Value::Text(run.by.clone()),
                Value::Text(status(outcomes).into()),
                Value::Text(serde_json::to_string(outcomes).expect("serializes")),
                Value::Integer(run.started),
                Value::Integer(now),
            ],
        )
        .await?;
    let done = rows
        .first()
        .and_then(|r| execution_from_row(r))
        .ok_or_else(ApiError::internal)?;
    let mut entry = who.entry("playbook.executed", "playbook", &run.playbook.id, now);
    entry.actor = run.by.clone();
    let payload = serde_json::to_value(&done).expect("serializes");
    audited::record(
        db,
        &Audited::new(entry)
            .after(&done)
            .publish("playbook.executed", payload),
    )
    .await?;
    Ok(done)
}

/// Whether the outbox event `event_type` with `payload` asks for automatic
/// playbooks: an alert opened; its id.
pub fn opened_alert(event_type: &str, payload: &serde_json::Value) -> Option<String> {
    (event_type == "alert.opened")
        .then(|| payload.get("id")?.as_str().map(str::to_string))
        .flatten()
}
