//! Playbooks (`/api/playbooks/...`): stored triggers and actions, run by
//! hand against an alert or automatically when an alert they match opens.
//! An action that needs approval opens a decision (through the same code
//! as `POST /api/decisions`, with the same safety check); a webhook is sent
//! before the execution commits, and its failure is recorded, not hidden.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use spin_sdk::http::Response;
use spin_sdk::sqlite::Connection;
use vigil_api::db::Value;
use vigil_api::decisions::record::{Evidence, Subject, SubjectKind};
use vigil_api::decisions::{self, NewDecision};
use vigil_api::listing::{self, Filters};
use vigil_api::{ApiError, Ctx, FieldError, db, response};
use vigil_core::decision::{Proposal, SafetyPolicy, ThreatLevel, check_submission};
use vigil_core::id::new_id;
use vigil_core::time::{now_millis, rfc3339};
use vigil_core::wire::{parse_wire, wire};
use vigil_ingest::event::EventType;
use vigil_ingest::playbook::{self, ActionKind, AlertFacts, PlaybookAction, Trigger};

use crate::read::{Alert, load_alert};
use crate::{settings, webhook};

#[derive(Clone, Serialize, JsonSchema)]
pub struct Playbook {
    #[schemars(extend("format" = "uuid"))]
    id: String,
    name: String,
    description: String,
    /// Runs automatically when a matching alert opens.
    enabled: bool,
    trigger: Trigger,
    actions: Vec<PlaybookAction>,
    /// Changes with every edit; the ETag is `"<version>"`.
    version: i64,
    #[schemars(extend("format" = "date-time"))]
    created_at: String,
    #[schemars(extend("format" = "date-time"))]
    updated_at: String,
}

const COLUMNS: &str =
    "id, name, description, enabled, trigger, actions, version, created_at, updated_at";

fn playbook(r: &[Value]) -> Option<Playbook> {
    Some(Playbook {
        id: db::text(r, 0)?,
        name: db::text(r, 1)?,
        description: db::text(r, 2)?,
        enabled: db::int(r, 3)? == 1,
        trigger: serde_json::from_str(&db::text(r, 4)?).ok()?,
        actions: serde_json::from_str(&db::text(r, 5)?).ok()?,
        version: db::int(r, 6)?,
        created_at: rfc3339(db::int(r, 7)?),
        updated_at: rfc3339(db::int(r, 8)?),
    })
}

impl Playbook {
    fn response(&self, status: u16) -> Response {
        let mut response = response::json(status, self);
        response.set_header("etag", vigil_api::response::etag(self.version));
        response
    }
}

fn load(conn: &Connection, id: &str) -> Result<Playbook, ApiError> {
    let rows = db::query(
        conn,
        &format!("SELECT {COLUMNS} FROM playbooks WHERE id = ?1"),
        &[Value::Text(id.into())],
    )?;
    rows.first()
        .and_then(|r| playbook(r))
        .ok_or_else(ApiError::not_found)
}

/// A playbook as created (`POST`) or replaced (`PUT`).
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaybookSpec {
    /// Unique.
    #[schemars(length(min = 1, max = 100))]
    name: String,
    #[serde(default)]
    #[schemars(length(max = 2000))]
    description: String,
    /// Run automatically when a matching alert opens (default true).
    #[serde(default = "yes")]
    enabled: bool,
    trigger: Trigger,
    /// In order; 1-20.
    #[schemars(length(min = 1, max = 20))]
    actions: Vec<PlaybookAction>,
}

fn yes() -> bool {
    true
}

impl PlaybookSpec {
    fn validate(&self) -> Result<(), ApiError> {
        let mut errors = playbook::validate(&self.trigger, &self.actions);
        let n = self.name.trim().chars().count();
        if n == 0 || n > 100 || self.name.contains('\n') {
            errors.insert(0, field("name", "must be one line of 1-100 characters"));
        }
        if self.description.chars().count() > 2000 {
            errors.push(field("description", "must be at most 2000 characters"));
        }
        let allowed = settings::webhook_origin();
        for (i, a) in self.actions.iter().enumerate() {
            let Some(url) = a.url.as_deref() else {
                continue;
            };
            let origin = playbook::origin(url);
            if origin.is_some() && origin != allowed.as_deref().and_then(playbook::origin) {
                errors.push(field(
                    &format!("actions[{i}].url"),
                    "is not at the allowed webhook origin (the webhook_origin variable)",
                ));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::validation(errors))
        }
    }
}

fn field(name: &str, message: &str) -> FieldError {
    FieldError {
        field: name.into(),
        message: message.into(),
    }
}

#[derive(Serialize, JsonSchema)]
pub struct PlaybookList {
    playbooks: Vec<Playbook>,
}

/// `GET /api/playbooks`: every playbook, by name.
pub fn list(_ctx: &mut Ctx) -> Result<Response, ApiError> {
    let conn = db::open()?;
    let playbooks = db::query(
        conn,
        &format!("SELECT {COLUMNS} FROM playbooks ORDER BY name"),
        &[],
    )?
    .iter()
    .filter_map(|r| playbook(r))
    .collect();
    Ok(response::json(200, &PlaybookList { playbooks }))
}

/// `GET /api/playbooks/{id}`.
pub fn get(ctx: &mut Ctx) -> Result<Response, ApiError> {
    let conn = db::open()?;
    Ok(load(conn, ctx.param("id"))?.response(200))
}

fn name_taken(name: &str) -> ApiError {
    ApiError::conflict(format!("a playbook named {name:?} exists"))
}

/// `POST /api/playbooks`.
pub fn create(ctx: &mut Ctx) -> Result<Response, ApiError> {
    let spec: PlaybookSpec = ctx.json()?;
    spec.validate()?;
    let id = new_id();
    let now = now_millis();
    let conn = db::open()?;
    let created = db::transaction(conn, |conn| {
        let inserted = db::query(
            conn,
            "INSERT INTO playbooks (id, name, description, enabled, trigger, actions, version, created_by, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1, ?7, ?8, ?8) ON CONFLICT (name) DO NOTHING RETURNING id",
            &[
                Value::Text(id.clone()),
                Value::Text(spec.name.trim().into()),
                Value::Text(spec.description.clone()),
                Value::Integer(spec.enabled.into()),
                Value::Text(serde_json::to_string(&spec.trigger).expect("serializes")),
                Value::Text(serde_json::to_string(&spec.actions).expect("serializes")),
                Value::Text(ctx.principal().subject.clone()),
                Value::Integer(now),
            ],
        )?;
        if inserted.is_empty() {
            return Err(name_taken(spec.name.trim()));
        }
        let created = load(conn, &id)?;
        changed(
            conn,
            ctx,
            "playbook.created",
            None,
            Some(&created),
            &id,
            now,
        )?;
        Ok(created)
    })?;
    let mut response = created.response(201);
    response.set_header("location", format!("/api/playbooks/{id}"));
    Ok(response)
}

/// Audit a change with before and after, and publish it.
fn changed(
    conn: &Connection,
    ctx: &Ctx,
    action: &str,
    before: Option<&Playbook>,
    after: Option<&Playbook>,
    id: &str,
    now: i64,
) -> Result<(), ApiError> {
    let mut entry = ctx.audit_entry(action, "playbook", id, now);
    entry.before = before.map(|b| serde_json::to_string(b).expect("serializes"));
    entry.after = after.map(|a| serde_json::to_string(a).expect("serializes"));
    vigil_api::audit::append(conn, &entry)?;
    vigil_api::audit::publish(
        conn,
        action,
        &serde_json::json!({"id": id, "playbook": after}),
        now,
    )
}

/// `PUT /api/playbooks/{id}` (If-Match): replace the whole playbook.
pub fn replace(ctx: &mut Ctx) -> Result<Response, ApiError> {
    let spec: PlaybookSpec = ctx.json()?;
    spec.validate()?;
    let if_match = ctx.if_match("playbook")?;
    let id = ctx.param("id").to_string();
    let now = now_millis();
    let conn = db::open()?;
    let after = db::transaction(conn, |conn| {
        let before = load(conn, &id)?;
        Ctx::check_version(&if_match, before.version, "playbook")?;
        let taken = db::query(
            conn,
            "SELECT 1 FROM playbooks WHERE name = ?1 AND id != ?2",
            &[
                Value::Text(spec.name.trim().into()),
                Value::Text(id.clone()),
            ],
        )?;
        if !taken.is_empty() {
            return Err(name_taken(spec.name.trim()));
        }
        db::query(
            conn,
            "UPDATE playbooks SET name = ?2, description = ?3, enabled = ?4, trigger = ?5, actions = ?6,
                    version = version + 1, updated_at = ?7 WHERE id = ?1",
            &[
                Value::Text(id.clone()),
                Value::Text(spec.name.trim().into()),
                Value::Text(spec.description.clone()),
                Value::Integer(spec.enabled.into()),
                Value::Text(serde_json::to_string(&spec.trigger).expect("serializes")),
                Value::Text(serde_json::to_string(&spec.actions).expect("serializes")),
                Value::Integer(now),
            ],
        )?;
        let after = load(conn, &id)?;
        changed(
            conn,
            ctx,
            "playbook.updated",
            Some(&before),
            Some(&after),
            &id,
            now,
        )?;
        Ok(after)
    })?;
    Ok(after.response(200))
}

/// `DELETE /api/playbooks/{id}`: its executions stay in the history.
pub fn delete(ctx: &mut Ctx) -> Result<Response, ApiError> {
    let id = ctx.param("id").to_string();
    let now = now_millis();
    let conn = db::open()?;
    db::transaction(conn, |conn| {
        let before = load(conn, &id)?;
        db::query(
            conn,
            "DELETE FROM playbooks WHERE id = ?1",
            &[Value::Text(id.clone())],
        )?;
        changed(conn, ctx, "playbook.deleted", Some(&before), None, &id, now)
    })?;
    Ok(Response::builder().status(204).build())
}

/// What became of one action.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct ActionOutcome {
    index: usize,
    kind: ActionKind,
    /// `decision_opened`, `sent`, `failed` (a webhook that did not get a 2xx),
    /// `refused` (the decision safety check said no) or `skipped` (the alert
    /// has nothing for this action to aim at).
    outcome: String,
    target: Option<String>,
    #[schemars(extend("format" = "uuid"))]
    decision_id: Option<String>,
    detail: Option<String>,
}

#[derive(Serialize, JsonSchema)]
pub struct Execution {
    #[schemars(extend("format" = "uuid"))]
    id: String,
    #[schemars(extend("format" = "uuid"))]
    playbook_id: String,
    playbook_name: String,
    #[schemars(extend("format" = "uuid"))]
    alert_id: String,
    /// `manual` or `automatic`.
    mode: String,
    started_by: String,
    /// `completed`, or `completed_with_errors` when an action failed or was refused.
    status: String,
    outcomes: Vec<ActionOutcome>,
    #[schemars(extend("format" = "date-time"))]
    started_at: String,
    #[schemars(extend("format" = "date-time"))]
    finished_at: String,
    #[serde(skip)]
    started_ms: i64,
}

const EXECUTION_COLUMNS: &str = "id, playbook_id, playbook_name, alert_id, mode, started_by, status, outcomes, started_at, finished_at";

fn execution(r: &[Value]) -> Option<Execution> {
    Some(Execution {
        id: db::text(r, 0)?,
        playbook_id: db::text(r, 1)?,
        playbook_name: db::text(r, 2)?,
        alert_id: db::text(r, 3)?,
        mode: db::text(r, 4)?,
        started_by: db::text(r, 5)?,
        status: db::text(r, 6)?,
        outcomes: serde_json::from_str(&db::text(r, 7)?).ok()?,
        started_at: rfc3339(db::int(r, 8)?),
        finished_at: rfc3339(db::int(r, 9)?),
        started_ms: db::int(r, 8)?,
    })
}

#[derive(Serialize, JsonSchema)]
pub struct ExecutionPage {
    executions: Vec<Execution>,
    /// Pass as `cursor` for the next page; absent on the last page.
    next_cursor: Option<String>,
}

/// `GET /api/playbooks/executions`: newest first; filters `playbook_id`,
/// `alert_id`; `limit`, `cursor`.
pub fn executions(ctx: &mut Ctx) -> Result<Response, ApiError> {
    let mut f = Filters::default();
    for name in ["playbook_id", "alert_id"] {
        if let Some(v) = ctx.query_param(name) {
            f.add(&format!("{name} = ?"), vec![Value::Text(v)]);
        }
    }
    let limit = listing::limit(ctx)?;
    listing::newest_first_after(ctx, &mut f, "started_at")?;
    let sql = format!(
        "SELECT {EXECUTION_COLUMNS} FROM playbook_executions {} ORDER BY started_at DESC, id DESC LIMIT {}",
        f.where_clause(),
        f.limit_placeholder(limit + 1)
    );
    let conn = db::open()?;
    let mut executions: Vec<Execution> = db::query(conn, &sql, &f.params)?
        .iter()
        .filter_map(|r| execution(r))
        .collect();
    let next_cursor = listing::page(&mut executions, limit, |e| {
        vec![e.started_ms.to_string(), e.id.clone()]
    });
    Ok(response::json(
        200,
        &ExecutionPage {
            executions,
            next_cursor,
        },
    ))
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecuteRequest {
    /// The alert to answer.
    #[schemars(extend("format" = "uuid"))]
    alert_id: String,
}

/// `POST /api/playbooks/{id}/execute`: run a playbook (enabled or not) against an alert.
pub fn execute(ctx: &mut Ctx) -> Result<Response, ApiError> {
    let request: ExecuteRequest = ctx.json()?;
    let conn = db::open()?;
    let playbook = load(conn, ctx.param("id"))?;
    let alert = load_alert(conn, &request.alert_id).map_err(|e| match e.status {
        404 => ApiError::invalid_field("alert_id", "is not an alert"),
        _ => e,
    })?;
    let facts = facts_of(conn, &alert)?;
    let by = ctx.principal().subject.clone();
    let done = run(conn, ctx, &playbook, &alert, &facts, Mode::Manual, &by)?;
    Ok(response::json(201, &done))
}

/// Run every enabled playbook whose trigger matches each newly opened alert
/// (called after the events that opened them committed). A failure is
/// logged; it cannot undo the ingestion.
pub fn run_automatic(conn: &Connection, ctx: &Ctx, opened: &[String]) {
    let result = (|| -> Result<(), ApiError> {
        let enabled: Vec<Playbook> = db::query(
            conn,
            &format!("SELECT {COLUMNS} FROM playbooks WHERE enabled = 1 ORDER BY name"),
            &[],
        )?
        .iter()
        .filter_map(|r| playbook(r))
        .collect();
        if enabled.is_empty() {
            return Ok(());
        }
        for alert_id in opened {
            let alert = load_alert(conn, alert_id)?;
            let facts = facts_of(conn, &alert)?;
            for p in enabled.iter().filter(|p| p.trigger.matches(&facts)) {
                run(
                    conn,
                    ctx,
                    p,
                    &alert,
                    &facts,
                    Mode::Automatic,
                    &format!("playbook:{}", p.id),
                )?;
            }
        }
        Ok(())
    })();
    if let Err(e) = result {
        vigil_api::log::line(
            serde_json::json!({"level": "error", "msg": "automatic playbooks failed", "status": e.status, "detail": e.detail}),
        );
    }
}

#[derive(Clone, Copy)]
enum Mode {
    Manual,
    Automatic,
}

/// What an alert offers a playbook, from the alert and its latest event.
fn facts_of(conn: &Connection, alert: &Alert) -> Result<AlertFacts, ApiError> {
    let mut facts = AlertFacts {
        event_type: parse_wire::<EventType>(&alert.event_type),
        severity: parse_wire(&alert.severity),
        technique: parse_wire::<EventType>(&alert.event_type)
            .and_then(|t| t.technique())
            .map(|t| t.id.to_string()),
        source_ip: alert.source_ip.clone(),
        sensor_id: alert.sensor_id.clone(),
        ..AlertFacts::default()
    };
    let rows = db::query(
        conn,
        "SELECT dest_ip, dest_zone, payload FROM threat_events WHERE alert_id = ?1 ORDER BY observed_at DESC LIMIT 1",
        &[Value::Text(alert.id.clone())],
    )?;
    if let Some(r) = rows.first() {
        facts.dest_ip = db::text(r, 0);
        facts.zone = db::text(r, 1);
        if let Some(payload) = db::text(r, 2).and_then(|p| serde_json::from_str(&p).ok()) {
            facts.read_payload(&payload);
        }
    }
    Ok(facts)
}

/// One execution in progress: what it runs, against what, for whom.
struct Run<'a> {
    id: String,
    playbook: &'a Playbook,
    alert: &'a Alert,
    facts: &'a AlertFacts,
    mode: &'static str,
    by: &'a str,
}

/// What every decision an execution opens rests on.
struct Basis {
    /// The alert's most confident event.
    confidence: f64,
    /// The alert and its latest events.
    refs: Vec<String>,
    safety: SafetyPolicy,
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

fn run(
    conn: &Connection,
    ctx: &Ctx,
    playbook: &Playbook,
    alert: &Alert,
    facts: &AlertFacts,
    mode: Mode,
    by: &str,
) -> Result<Execution, ApiError> {
    let run = Run {
        id: new_id(),
        playbook,
        alert,
        facts,
        mode: match mode {
            Mode::Manual => "manual",
            Mode::Automatic => "automatic",
        },
        by,
    };
    let started = now_millis();
    // Webhooks first, outside the transaction: no write lock is held while
    // waiting on the network.
    let mut outcomes: Vec<ActionOutcome> = playbook
        .actions
        .iter()
        .enumerate()
        .filter(|(_, a)| !a.opens_decision())
        .map(|(index, action)| notify(&run, index, action))
        .collect();
    let (confidence, refs) = evidence_of(conn, alert)?;
    let basis = Basis {
        confidence,
        refs,
        safety: decisions::settings::safety(),
    };
    db::transaction(conn, |conn| {
        let now = now_millis();
        for (index, action) in playbook.actions.iter().enumerate() {
            if action.opens_decision() {
                outcomes.push(propose(conn, ctx, &run, &basis, index, action, now)?);
            }
        }
        outcomes.sort_by_key(|o| o.index);
        record(conn, ctx, &run, &outcomes, started, now)
    })
}

/// Send a `notify_webhook` action's webhook.
fn notify(run: &Run, index: usize, action: &PlaybookAction) -> ActionOutcome {
    let url = action.url.clone().unwrap_or_default();
    let body = serde_json::json!({
        "type": "vigil.playbook.notification", "execution_id": run.id, "mode": run.mode,
        "playbook": {"id": run.playbook.id, "name": run.playbook.name}, "alert": run.alert,
    });
    let (outcome, detail) = match webhook::post_json(&url, body.to_string().as_bytes()) {
        Ok(status) if (200..300).contains(&status) => ("sent", format!("HTTP {status}")),
        Ok(status) => ("failed", format!("HTTP {status}")),
        Err(why) => ("failed", why),
    };
    ActionOutcome::new(index, action, outcome, Some(url)).detail(detail)
}

/// Open the decision an action waits for, unless the alert gives it no
/// target or the safety check refuses it.
fn propose(
    conn: &Connection,
    ctx: &Ctx,
    run: &Run,
    basis: &Basis,
    index: usize,
    action: &PlaybookAction,
    now: i64,
) -> Result<ActionOutcome, ApiError> {
    let Some(target) = run.facts.target(action.kind) else {
        return Ok(ActionOutcome::new(index, action, "skipped", None)
            .detail(format!("the alert gives {} no target", wire(&action.kind))));
    };
    let proposed = action.decision_action();
    let summary: String = format!("{}: {} {target}", run.playbook.name, wire(&proposed))
        .replace('\n', " ")
        .chars()
        .take(200)
        .collect();
    let proposal = Proposal {
        action: proposed,
        confidence: basis.confidence,
        summary: &summary,
        watchlist_match: false,
        target: Some(&target),
    };
    let violations = check_submission(&proposal, &basis.safety);
    if !violations.is_empty() {
        let why: Vec<String> = violations.into_iter().map(|v| v.message).collect();
        return Ok(
            ActionOutcome::new(index, action, "refused", Some(target)).detail(why.join("; "))
        );
    }
    let alert = run.alert;
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
        confidence: basis.confidence,
        summary,
        rationale: format!(
            "Playbook {:?} ({}) on alert {}: {} {} event(s) from {}, max score {}.",
            run.playbook.name,
            run.mode,
            alert.id,
            alert.event_count,
            alert.event_type,
            alert.source_ip,
            alert.max_score
        ),
        evidence: Evidence {
            refs: basis.refs.clone(),
            watchlist_match: false,
        },
    };
    let decision_id = new_id();
    let mut entry = ctx.audit_entry("decision.submitted", "decision", &decision_id, now);
    entry.actor = run.by.into();
    decisions::open_pending(conn, &decision_id, &new, run.by, entry, now)?;
    let mut outcome = ActionOutcome::new(index, action, "decision_opened", Some(target));
    outcome.decision_id = Some(decision_id);
    Ok(outcome)
}

/// Store the execution with its outcomes, audited and published.
fn record(
    conn: &Connection,
    ctx: &Ctx,
    run: &Run,
    outcomes: &[ActionOutcome],
    started: i64,
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
    db::query(
        conn,
        "INSERT INTO playbook_executions (id, playbook_id, playbook_name, alert_id, mode, started_by, status, outcomes, started_at, finished_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        &[
            Value::Text(run.id.clone()),
            Value::Text(run.playbook.id.clone()),
            Value::Text(run.playbook.name.clone()),
            Value::Text(run.alert.id.clone()),
            Value::Text(run.mode.into()),
            Value::Text(run.by.into()),
            Value::Text(status.into()),
            Value::Text(serde_json::to_string(outcomes).expect("serializes")),
            Value::Integer(started),
            Value::Integer(now),
        ],
    )?;
    let rows = db::query(
        conn,
        &format!("SELECT {EXECUTION_COLUMNS} FROM playbook_executions WHERE id = ?1"),
        &[Value::Text(run.id.clone())],
    )?;
    let done = rows
        .first()
        .and_then(|r| execution(r))
        .ok_or_else(ApiError::internal)?;
    let mut entry = ctx.audit_entry("playbook.executed", "playbook", &run.playbook.id, now);
    entry.actor = run.by.into();
    entry.after = Some(serde_json::to_string(&done).expect("serializes"));
    vigil_api::audit::append(conn, &entry)?;
    vigil_api::audit::publish(
        conn,
        "playbook.executed",
        &serde_json::to_value(&done).expect("serializes"),
        now,
    )?;
    Ok(done)
}

/// The confidence a decision carries (the alert's most confident event) and
/// its evidence (the alert and its latest events).
fn evidence_of(conn: &Connection, alert: &Alert) -> Result<(f64, Vec<String>), ApiError> {
    let rows = db::query(
        conn,
        "SELECT id, confidence FROM threat_events WHERE alert_id = ?1 ORDER BY observed_at DESC LIMIT 50",
        &[Value::Text(alert.id.clone())],
    )?;
    let confidence = rows
        .iter()
        .filter_map(|r| db::real(r, 1))
        .fold(None, |m: Option<f64>, c| Some(m.map_or(c, |m| m.max(c))))
        .unwrap_or(1.0);
    let mut refs = vec![format!("alert:{}", alert.id)];
    refs.extend(
        rows.iter()
            .take(10)
            .filter_map(|r| db::text(r, 0))
            .map(|id| format!("threat:{id}")),
    );
    Ok((confidence, refs))
}
