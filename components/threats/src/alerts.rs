//! Acknowledging and resolving alerts, with `If-Match` (missing 428, stale
//! 412): the rules (lifecycle, note, audit entry, event) are
//! `vigil_ingest::alert::transition` (illegal → 409); here the rows.

use schemars::JsonSchema;
use serde::Deserialize;
use spin_sdk::http::Response;
use vigil_api::db::{Columns, SpinSql, Value, ready};
use vigil_api::{ApiError, Ctx, audit, db, response};
use vigil_core::rollup;
use vigil_core::time::now_millis;
use vigil_ingest::alert::{self, AlertCommand, AlertStatus};

use crate::read::{Alert, load_alert};

#[derive(Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct Note {
    /// Required to resolve.
    #[schemars(length(max = 2000))]
    note: Option<String>,
}

pub fn acknowledge(ctx: &mut Ctx) -> Result<Response, ApiError> {
    change(ctx, AlertCommand::Acknowledge)
}

pub fn resolve(ctx: &mut Ctx) -> Result<Response, ApiError> {
    change(ctx, AlertCommand::Resolve)
}

fn change(ctx: &mut Ctx, command: AlertCommand) -> Result<Response, ApiError> {
    let body: Note = if ctx.body.is_empty() {
        Note::default()
    } else {
        ctx.json()?
    };
    let note = command.note(body.note)?;
    let if_match = ctx.if_match("alert")?;
    let id = ctx.param("id").to_string();
    let now = now_millis();
    let who = ctx.actor();
    let conn = db::open()?;
    let after = db::transaction(conn, |conn| {
        let before: Alert = load_alert(conn, &id)?;
        Ctx::check_version(&if_match, before.version, "alert")?;
        let t = alert::transition(&before, command, note.as_deref(), &who, now)?;
        // What the rollups need: when it opened, and at what severity.
        static OPENED: Columns =
            Columns::new("created_at, coalesce(opened_severity, severity) AS opened_severity");
        let changed = db::query(
            conn,
            &format!("UPDATE alerts SET status = ?2, version = version + 1, updated_at = ?3,
                    acknowledged_at = CASE WHEN ?2 = 'acknowledged' THEN ?3 ELSE acknowledged_at END,
                    resolved_at = CASE WHEN ?2 = 'resolved' THEN ?3 ELSE resolved_at END
              WHERE id = ?1 RETURNING {OPENED}"),
            &[
                Value::Text(id.clone()),
                Value::Text(t.to.as_str().into()),
                Value::Integer(now),
            ],
        )?;
        // The metrics rollups count it in the same transaction.
        let (opened_at, severity) = changed
            .first()
            .map(|r| OPENED.row(r))
            .and_then(|r| Some((r.int("created_at")?, r.text("opened_severity")?)))
            .ok_or_else(ApiError::internal)?;
        let change = match t.to {
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
        audit::record(conn, &t.audited)?;
        Ok(t.after)
    })?;
    let mut response = response::json(200, &after);
    response.set_header("etag", crate::read::etag(&after));
    Ok(response)
}
