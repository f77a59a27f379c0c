//! Running a playbook against an alert, written once for its two callers:
//! `POST /api/playbooks/{id}/execute` in the threats component (by hand)
//! and the relay's `playbooks` job (automatically, on `alert.opened`).
//!
//! A run has two halves with the network in between, so no write lock is
//! held while a webhook is waited for: [`prepare`] reads what the alert
//! offers and says which webhooks to send ([`Run::webhooks`]); the caller
//! sends them (the component through `wasi:http`, the relay natively); then
//! [`finish`], inside the caller's write transaction, opens the decisions
//! the actions wait for (with the safety check) and stores the execution
//! with every action's outcome, audited and published.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use vigil_core::ApiError;
use vigil_core::audit::{self, Actor};
use vigil_core::decision::record::{Evidence, NewDecision, Subject, SubjectKind, open_pending};
use vigil_core::decision::{
    Proposal, SafetyPolicy, SlaPolicy, ThreatLevel, check_submission, proposal_target,
};
use vigil_core::id::new_id;
use vigil_core::outbox;
use vigil_core::sql::{Sql, Value, int, real, text};
use vigil_core::time::rfc3339;
use vigil_core::wire::{parse_wire, wire};

use crate::alert::Alert;
use crate::event::EventType;
use crate::playbook::{self, ActionKind, AlertFacts, PlaybookAction, Trigger};

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

pub const PLAYBOOK_COLUMNS: &str =
    "id, name, description, enabled, trigger, actions, version, created_at, updated_at";

/// A row of [`PLAYBOOK_COLUMNS`].
pub fn playbook_from_row(r: &[Value]) -> Option<Playbook> {
    Some(Playbook {
        id: text(r, 0)?,
        name: text(r, 1)?,
        description: text(r, 2)?,
        enabled: int(r, 3)? == 1,
        trigger: serde_json::from_str(&text(r, 4)?).ok()?,
        actions: serde_json::from_str(&text(r, 5)?).ok()?,
        version: int(r, 6)?,
        created_at: rfc3339(int(r, 7)?),
        updated_at: rfc3339(int(r, 8)?),
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

pub const EXECUTION_COLUMNS: &str = "id, playbook_id, playbook_name, alert_id, mode, started_by, status, outcomes, started_at, finished_at";

/// A row of [`EXECUTION_COLUMNS`].
pub fn execution_from_row(r: &[Value]) -> Option<Execution> {
    Some(Execution {
        id: text(r, 0)?,
        playbook_id: text(r, 1)?,
        playbook_name: text(r, 2)?,
        alert_id: text(r, 3)?,
        mode: text(r, 4)?,
        started_by: text(r, 5)?,
        status: text(r, 6)?,
        outcomes: serde_json::from_str(&text(r, 7)?).ok()?,
        started_at: rfc3339(int(r, 8)?),
        finished_at: rfc3339(int(r, 9)?),
        started_ms: int(r, 8)?,
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
    let rows = db
        .query(
            "SELECT dest_ip, dest_zone, payload FROM threat_events WHERE alert_id = ?1 ORDER BY observed_at DESC LIMIT 1",
            &[Value::Text(alert.id.clone())],
        )
        .await?;
    if let Some(r) = rows.first() {
        facts.dest_ip = text(r, 0);
        facts.zone = text(r, 1);
        if let Some(payload) = text(r, 2).and_then(|p| serde_json::from_str(&p).ok()) {
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
    let rows = db
        .query(
            "SELECT id, confidence FROM threat_events WHERE alert_id = ?1 ORDER BY observed_at DESC LIMIT 50",
            &[Value::Text(alert.id.clone())],
        )
        .await?;
    let confidence = rows
        .iter()
        .filter_map(|r| real(r, 1))
        .fold(None, |m: Option<f64>, c| Some(m.map_or(c, |m| m.max(c))))
        .unwrap_or(1.0);
    let mut refs = vec![format!("alert:{}", alert.id)];
    refs.extend(
        rows.iter()
            .take(10)
            .filter_map(|r| text(r, 0))
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

/// Inside the caller's write transaction: open the decisions the actions
/// wait for, and store the execution with every action's outcome (`sent`:
/// each webhook's HTTP status or why it failed, by action index), audited
/// as `who` under the run's `by`, and published (`playbook.executed`).
pub async fn finish(
    db: &impl Sql,
    run: &Run,
    sent: &[(usize, Result<u16, String>)],
    rules: &DecisionRules,
    who: &Actor,
    now: i64,
) -> Result<Execution, ApiError> {
    let mut outcomes = Vec::new();
    let ingesters = if run.playbook.actions.iter().any(|a| a.opens_decision()) {
        ingesters(db, &run.alert.id).await?
    } else {
        vec![]
    };
    for (index, action) in run.playbook.actions.iter().enumerate() {
        let outcome = if action.opens_decision() {
            propose(db, run, rules, who, &ingesters, index, action, now).await?
        } else {
            let url = action.url.clone().unwrap_or_default();
            let (outcome, detail) = match sent.iter().find(|(i, _)| *i == index) {
                Some((_, Ok(status))) if (200..300).contains(status) => {
                    ("sent", format!("HTTP {status}"))
                }
                Some((_, Ok(status))) => ("failed", format!("HTTP {status}")),
                Some((_, Err(why))) => ("failed", why.clone()),
                None => ("failed", "not sent".to_string()),
            };
            ActionOutcome::new(index, action, outcome, Some(url)).detail(detail)
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

/// Open the decision an action waits for, unless the alert gives it no
/// target (or none that is an address or a host name) or the safety check
/// refuses it.
#[allow(clippy::too_many_arguments)]
async fn propose(
    db: &impl Sql,
    run: &Run,
    rules: &DecisionRules,
    who: &Actor,
    ingesters: &[String],
    index: usize,
    action: &PlaybookAction,
    now: i64,
) -> Result<ActionOutcome, ApiError> {
    let Some(target) = run.facts.target(action.kind) else {
        return Ok(ActionOutcome::new(index, action, "skipped", None)
            .detail(format!("the alert gives {} no target", wire(&action.kind))));
    };
    let proposed = action.decision_action();
    // The safety check and the decision see a machine in its one spelling.
    let checked = match proposal_target(proposed, Some(&serde_json::Value::String(target.clone())))
    {
        Ok(checked) => checked,
        Err(why) => {
            return Ok(ActionOutcome::new(index, action, "refused", Some(target))
                .detail(format!("the target {why}")));
        }
    };
    let target = match &checked {
        Some(canonical) if proposed.targets_network() => canonical.to_string(),
        _ => target,
    };
    let summary: String = format!("{}: {} {target}", run.playbook.name, wire(&proposed))
        .replace('\n', " ")
        .chars()
        .take(200)
        .collect();
    let proposal = Proposal {
        action: proposed,
        confidence: run.confidence,
        summary: &summary,
        watchlist_match: false,
        target: checked,
    };
    let violations = check_submission(&proposal, &rules.safety);
    if !violations.is_empty() {
        let why: Vec<String> = violations.into_iter().map(|v| v.message).collect();
        return Ok(
            ActionOutcome::new(index, action, "refused", Some(target)).detail(why.join("; "))
        );
    }
    let alert = &run.alert;
    let parameters = serde_json::json!({
        "target": target, "playbook_id": run.playbook.id, "execution_id": run.id, "action_index": index,
    });
    let new = NewDecision {
        source: "playbook".into(),
        subject: Subject {
            kind: SubjectKind::Alert,
            id: alert.id.clone(),
        },
        action: proposed,
        parameters: parameters.as_object().cloned().unwrap_or_default(),
        threat_level: run
            .facts
            .severity
            .map_or(ThreatLevel::Low, playbook::threat_level),
        confidence: run.confidence,
        summary,
        rationale: format!(
            "Playbook {:?} ({}) on alert {}: {} {} event(s) from {}, max score {}.",
            run.playbook.name,
            run.mode_name(),
            alert.id,
            alert.event_count,
            alert.event_type,
            alert.source_ip,
            alert.max_score
        ),
        evidence: Evidence {
            refs: run.refs.clone(),
            watchlist_match: false,
        },
        ingested_by: ingesters.to_vec(),
    };
    let decision_id = new_id();
    let mut entry = who.entry("decision.submitted", "decision", &decision_id, now);
    entry.actor = run.by.clone();
    open_pending(db, &decision_id, &new, &run.by, entry, &rules.sla, now).await?;
    let mut outcome = ActionOutcome::new(index, action, "decision_opened", Some(target));
    outcome.decision_id = Some(decision_id);
    Ok(outcome)
}

/// Store the execution with its outcomes, audited and published.
async fn record(
    db: &impl Sql,
    run: &Run,
    outcomes: &[ActionOutcome],
    who: &Actor,
    now: i64,
) -> Result<Execution, ApiError> {
    let status = if outcomes
        .iter()
        .any(|o| o.outcome == "failed" || o.outcome == "refused")
    {
        "completed_with_errors"
    } else {
        "completed"
    };
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
                Value::Text(status.into()),
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
    entry.after = Some(serde_json::to_string(&done).expect("serializes"));
    audit::append(db, &entry).await?;
    outbox::publish(
        db,
        "playbook.executed",
        &serde_json::to_value(&done).expect("serializes"),
        now,
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
