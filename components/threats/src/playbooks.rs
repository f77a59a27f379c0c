//! Playbooks (`/api/playbooks/...`): stored triggers and actions, run by
//! hand against an alert here, and automatically by the relay's `playbooks`
//! job when an alert they match opens. Running one is `vigil-ingest`'s
//! [`execution`](vigil_ingest::execution) (shared with the relay): an action
//! that needs approval opens a decision (with the same safety check as
//! `POST /api/decisions`); a webhook is sent before the execution commits,
//! and its failure is recorded, not hidden.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use spin_sdk::http::Response;
use spin_sdk::sqlite::Connection;
use vigil_api::audit::{self, Audited};
use vigil_api::db::{SpinSql, Value, ready};
use vigil_api::decisions;
use vigil_api::listing::{self, Filters};
use vigil_api::{ApiError, Ctx, FieldError, db, response};
use vigil_core::id::new_id;
use vigil_core::time::now_millis;
use vigil_ingest::execution::{
    DecisionRules, EXECUTION_COLUMNS, Mode, PLAYBOOK_COLUMNS as COLUMNS, execution_from_row,
    facts_of, finish, load_playbook, playbook_from_row as playbook, prepare,
};
pub use vigil_ingest::execution::{Execution, Playbook};
use vigil_ingest::playbook::{self, PlaybookAction, Trigger};

use crate::read::load_alert;
use crate::{settings, webhook};

/// A playbook as an HTTP answer, with its ETag.
fn respond(playbook: &Playbook, status: u16) -> Response {
    let mut response = response::json(status, playbook);
    response.set_header("etag", vigil_api::response::etag(playbook.version));
    response
}

fn load(conn: &Connection, id: &str) -> Result<Playbook, ApiError> {
    ready(load_playbook(&SpinSql(conn), id))
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
        let allowed = settings::get()?.webhook_origin.clone();
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

impl PlaybookSpec {
    /// The parameters `?1`-`?6` of a playbook's row (id, name, description,
    /// enabled, trigger, actions), then `rest`.
    fn row<const N: usize>(&self, id: &str, rest: [Value; N]) -> Vec<Value> {
        let mut row = vec![
            Value::Text(id.into()),
            Value::Text(self.name.trim().into()),
            Value::Text(self.description.clone()),
            Value::Integer(self.enabled.into()),
            Value::Text(serde_json::to_string(&self.trigger).expect("serializes")),
            Value::Text(serde_json::to_string(&self.actions).expect("serializes")),
        ];
        row.extend(rest);
        row
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
    Ok(respond(&load(conn, ctx.param("id"))?, 200))
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
            &spec.row(
                &id,
                [
                    Value::Text(ctx.principal().subject.clone()),
                    Value::Integer(now),
                ],
            ),
        )?;
        if inserted.is_empty() {
            return Err(name_taken(spec.name.trim()));
        }
        let created = load(conn, &id)?;
        let audited = changed(ctx, "playbook.created", None, Some(&created), &id, now);
        audit::record(conn, &audited)?;
        Ok(created)
    })?;
    let mut response = respond(&created, 201);
    response.set_header("location", format!("/api/playbooks/{id}"));
    Ok(response)
}

/// A change of playbook `id` as audited (with before and after) and
/// published (the playbook after, `null` once deleted).
fn changed(
    ctx: &Ctx,
    action: &str,
    before: Option<&Playbook>,
    after: Option<&Playbook>,
    id: &str,
    now: i64,
) -> Audited {
    let mut audited = Audited::new(ctx.audit_entry(action, "playbook", id, now))
        .publish(action, serde_json::json!({"id": id, "playbook": after}));
    if let Some(before) = before {
        audited = audited.before(before);
    }
    if let Some(after) = after {
        audited = audited.after(after);
    }
    audited
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
        audit::update(
            conn,
            |conn| load(conn, &id),
            |conn, before| {
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
                    &spec.row(&id, [Value::Integer(now)]),
                )
                .map(drop)
            },
            |before, after| changed(ctx, "playbook.updated", Some(before), Some(after), &id, now),
        )
    })?;
    Ok(respond(&after, 200))
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
        audit::record(
            conn,
            &changed(ctx, "playbook.deleted", Some(&before), None, &id, now),
        )
    })?;
    Ok(Response::builder().status(204).build())
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
        .filter_map(|r| execution_from_row(r))
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

/// `POST /api/playbooks/{id}/execute`: run a playbook (enabled or not)
/// against an alert. Its webhooks are sent before the execution's write
/// transaction, so no lock is held while waiting on the network.
pub fn execute(ctx: &mut Ctx) -> Result<Response, ApiError> {
    let request: ExecuteRequest = ctx.json()?;
    let secret = settings::get()?.webhook_secret.as_deref();
    let decided = decisions::settings::get()?;
    let conn = db::open()?;
    let playbook = load(conn, ctx.param("id"))?;
    let alert = load_alert(conn, &request.alert_id).map_err(|e| match e.status {
        404 => ApiError::invalid_field("alert_id", "is not an alert"),
        _ => e,
    })?;
    let sql = SpinSql(conn);
    let facts = ready(facts_of(&sql, &alert))?;
    let by = ctx.principal().subject.clone();
    let run = ready(prepare(
        &sql,
        playbook,
        alert,
        facts,
        Mode::Manual,
        by,
        now_millis(),
    ))?;
    let sent: Vec<(usize, Result<u16, String>)> = run
        .webhooks()
        .into_iter()
        .map(|w| (w.index, webhook::post_json(&w.url, &w.body, secret)))
        .collect();
    let rules = DecisionRules {
        safety: decided.safety.clone(),
        sla: decided.sla,
    };
    let who = ctx.actor();
    let done = db::transaction(conn, |conn| {
        ready(finish(
            &SpinSql(conn),
            &run,
            &sent,
            &rules,
            &who,
            now_millis(),
        ))
    })?;
    Ok(response::json(201, &done))
}
