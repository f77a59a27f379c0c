//! Moving a decision: every command is decided by
//! `vigil_core::decision::change::apply` (the state machine, the safety
//! check of an approval, the decision after it, its audit entry and event),
//! with `If-Match` (a stale ETag is a 412), and written with its history row
//! in one transaction.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use spin_sdk::http::Response;
use vigil_api::db::{SpinSql, ready};
use vigil_api::{ApiError, Ctx, db, response};
use vigil_core::decision::change::{self, Change, Rules};
use vigil_core::decision::{Actor, Command, DismissReason, wire};
use vigil_core::time::now_millis;

use vigil_api::decisions::record::{self, Served};
use vigil_api::decisions::settings;
use vigil_core::decision::transitions::{self as written, record_transition};

/// The body of claim, release and approve: an optional note.
#[derive(Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct OptionalNote {
    #[schemars(length(max = 2000))]
    note: Option<String>,
}

/// The body of reject and escalate: a note is required.
#[derive(Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct RequiredNote {
    #[schemars(length(min = 1, max = 2000))]
    note: String,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Dismissal {
    reason: DismissReason,
    /// Required when the reason is `unknown`.
    #[schemars(length(max = 2000))]
    note: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SecondApproval {
    approve: bool,
    #[schemars(length(max = 2000))]
    note: Option<String>,
}

#[derive(Clone, Copy, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ExecutionResult {
    Executed,
    Failed,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Outcome {
    result: ExecutionResult,
    /// What the executor did or why it failed.
    #[schemars(length(min = 1, max = 4000))]
    detail: String,
}

/// A body, or `{}` when the request has none.
fn body<T: DeserializeOwned + Default>(ctx: &Ctx) -> Result<T, ApiError> {
    if ctx.body.is_empty() {
        Ok(T::default())
    } else {
        ctx.json()
    }
}

fn too_long(note: Option<&str>) -> Result<(), ApiError> {
    if note.is_some_and(|n| n.chars().count() > 2000) {
        return Err(ApiError::invalid_field(
            "note",
            "must be at most 2000 characters",
        ));
    }
    Ok(())
}

pub fn claim(ctx: &mut Ctx) -> Result<Response, ApiError> {
    let b: OptionalNote = body(ctx)?;
    apply(
        ctx,
        Command::Claim,
        Said {
            note: b.note,
            ..Said::default()
        },
    )
}

pub fn release(ctx: &mut Ctx) -> Result<Response, ApiError> {
    let b: OptionalNote = body(ctx)?;
    apply(
        ctx,
        Command::Release,
        Said {
            note: b.note,
            ..Said::default()
        },
    )
}

pub fn approve(ctx: &mut Ctx) -> Result<Response, ApiError> {
    let b: OptionalNote = body(ctx)?;
    apply(
        ctx,
        Command::Approve,
        Said {
            note: b.note,
            ..Said::default()
        },
    )
}

pub fn reject(ctx: &mut Ctx) -> Result<Response, ApiError> {
    let b: RequiredNote = body(ctx)?;
    apply(
        ctx,
        Command::Reject {
            note: b.note.clone(),
        },
        Said {
            note: Some(b.note),
            ..Said::default()
        },
    )
}

pub fn escalate(ctx: &mut Ctx) -> Result<Response, ApiError> {
    let b: RequiredNote = body(ctx)?;
    apply(
        ctx,
        Command::Escalate {
            note: b.note.clone(),
        },
        Said {
            note: Some(b.note),
            ..Said::default()
        },
    )
}

pub fn dismiss(ctx: &mut Ctx) -> Result<Response, ApiError> {
    let b: Dismissal = ctx.json()?;
    let reason = wire(&b.reason);
    let command = Command::Dismiss {
        reason: b.reason,
        note: b.note.clone(),
    };
    apply(
        ctx,
        command,
        Said {
            note: b.note,
            reason: Some(reason),
            detail: None,
        },
    )
}

pub fn second_approval(ctx: &mut Ctx) -> Result<Response, ApiError> {
    let b: SecondApproval = ctx.json()?;
    apply(
        ctx,
        Command::SecondApproval { approve: b.approve },
        Said {
            note: b.note,
            ..Said::default()
        },
    )
}

pub fn outcome(ctx: &mut Ctx) -> Result<Response, ApiError> {
    let b: Outcome = ctx.json()?;
    if b.detail.trim().is_empty() || b.detail.chars().count() > 4000 {
        return Err(ApiError::invalid_field(
            "detail",
            "must be 1-4000 characters",
        ));
    }
    let command = Command::Outcome {
        executed: b.result == ExecutionResult::Executed,
    };
    apply(
        ctx,
        command,
        Said {
            note: None,
            reason: Some(wire(&b.result)),
            detail: Some(b.detail),
        },
    )
}

/// Annotations a command carries: a note, a reason (dismissal or outcome), an outcome detail.
#[derive(Default)]
struct Said {
    note: Option<String>,
    reason: Option<String>,
    detail: Option<String>,
}

fn apply(ctx: &mut Ctx, command: Command, said: Said) -> Result<Response, ApiError> {
    too_long(said.note.as_deref())?;
    let if_match = ctx.if_match("decision")?;
    let settings = settings::get()?;
    let rules = Rules {
        dispatch_type: &settings.dispatch_type,
        safety: &settings.safety,
    };
    let who = ctx.principal().clone();
    let actor = Actor {
        id: who.subject.clone(),
        role: who.role,
    };
    let change = Change {
        command: &command,
        actor: &actor,
        note: said.note.as_deref(),
        reason: said.reason.as_deref(),
        outcome_detail: said.detail.as_deref(),
    };
    let id = ctx.param("id").to_string();
    let now = now_millis();
    let audit_actor = ctx.actor();
    let conn = db::open()?;
    let after = db::transaction(conn, |conn| {
        let before = record::load(conn, &id, now)?;
        Ctx::check_version(&if_match, before.version, "decision")?;
        let applied = change::apply(&before, &change, &rules, &audit_actor, now)?;
        ready(record_transition(
            &SpinSql(conn),
            &before,
            &change,
            &applied,
            now,
        ))?;
        Ok(applied.after)
    })?;
    Ok(after.response(200))
}

#[derive(Serialize, JsonSchema)]
pub struct Escalated {
    /// The decisions escalated by this call.
    escalated: Vec<String>,
}

/// `POST /api/decisions/escalate-overdue`: every open decision past its
/// deadline that nobody has escalated yet goes to the supervisors. Called by
/// the relay's scheduler; safe to call at any time.
pub fn escalate_overdue(ctx: &mut Ctx) -> Result<Response, ApiError> {
    let now = now_millis();
    let who = ctx.actor();
    let conn = db::open()?;
    let escalated = db::transaction(conn, |conn| {
        ready(written::escalate_overdue(&SpinSql(conn), &who, now))
    })?;
    Ok(response::json(200, &Escalated { escalated }))
}
