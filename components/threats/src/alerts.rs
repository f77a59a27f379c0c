//! Acknowledging and resolving alerts, with `If-Match` (missing 428, stale
//! 412) and the lifecycle in `vigil_ingest::alert` (illegal → 409).

use schemars::JsonSchema;
use serde::Deserialize;
use spin_sdk::http::Response;
use vigil_api::db::{SpinSql, Value, ready};
use vigil_api::{ApiError, Ctx, db, response};
use vigil_core::rollup;
use vigil_core::time::now_millis;
use vigil_ingest::alert::AlertStatus;

use crate::read::{Alert, load_alert};

#[derive(Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct Note {
    /// Required to resolve.
    #[schemars(length(max = 2000))]
    note: Option<String>,
}

pub fn acknowledge(ctx: &mut Ctx) -> Result<Response, ApiError> {
    change(ctx, "acknowledge", AlertStatus::acknowledge)
}

pub fn resolve(ctx: &mut Ctx) -> Result<Response, ApiError> {
    change(ctx, "resolve", AlertStatus::resolve)
}

fn change(
    ctx: &mut Ctx,
    command: &str,
    next: fn(AlertStatus) -> Option<AlertStatus>,
) -> Result<Response, ApiError> {
    let body: Note = if ctx.body.is_empty() {
        Note::default()
    } else {
        ctx.json()?
    };
    let note = body
        .note
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty());
    if note.as_ref().is_some_and(|n| n.chars().count() > 2000) {
        return Err(ApiError::invalid_field(
            "note",
            "must be at most 2000 characters",
        ));
    }
    if command == "resolve" && note.is_none() {
        return Err(ApiError::invalid_field("note", "is required to resolve"));
    }
    let if_match = ctx.if_match("alert")?;
    let id = ctx.param("id").to_string();
    let now = now_millis();
    let conn = db::open()?;
    let after = db::transaction(conn, |conn| {
        let before: Alert = load_alert(conn, &id)?;
        Ctx::check_version(&if_match, before.version, "alert")?;
        let status = AlertStatus::parse(&before.status).ok_or_else(ApiError::internal)?;
        let to = next(status).ok_or_else(|| {
            ApiError::new(409, "illegal-transition", "Illegal transition").with_detail(format!(
                "cannot {command} an alert that is {}",
                before.status
            ))
        })?;
        let changed = db::query(
            conn,
            "UPDATE alerts SET status = ?2, version = version + 1, updated_at = ?3,
                    acknowledged_at = CASE WHEN ?2 = 'acknowledged' THEN ?3 ELSE acknowledged_at END,
                    resolved_at = CASE WHEN ?2 = 'resolved' THEN ?3 ELSE resolved_at END
              WHERE id = ?1 RETURNING created_at, coalesce(opened_severity, severity)",
            &[
                Value::Text(id.clone()),
                Value::Text(to.as_str().into()),
                Value::Integer(now),
            ],
        )?;
        // The metrics rollups count it in the same transaction.
        let (opened_at, severity) = changed
            .first()
            .and_then(|r| Some((db::int(r, 0)?, db::text(r, 1)?)))
            .ok_or_else(ApiError::internal)?;
        let change = match to {
            AlertStatus::Acknowledged => rollup::AlertChange::Acknowledged {
                at: now,
                opened_at,
                severity: &severity,
            },
            _ => rollup::AlertChange::Resolved {
                at: now,
                severity: &severity,
            },
        };
        ready(rollup::add_alert_changes(&SpinSql(conn), &[change]))?;
        let after = load_alert(conn, &id)?;
        let mut entry = ctx.audit_entry(&format!("alert.{command}d"), "alert", &id, now);
        entry.before = Some(serde_json::to_string(&before).expect("serializes"));
        entry.after = Some(serde_json::json!({"alert": after, "note": note}).to_string());
        vigil_api::audit::append(conn, &entry)?;
        vigil_api::audit::publish(
            conn,
            "alert.updated",
            &serde_json::json!({"alert": after, "command": command}),
            now,
        )?;
        Ok(after)
    })?;
    let mut response = response::json(200, &after);
    response.set_header("etag", crate::read::etag(&after));
    Ok(response)
}
