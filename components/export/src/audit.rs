//! The audit log: exported as JSONL, its chain re-walked, its head signed.

use spin_sdk::http::Response;
use vigil_api::db::{self, SpinSql, ready};
use vigil_api::{ApiError, Ctx, response};
use vigil_core::time::now_millis;
use vigil_evidence::audit_log::{self, AuditFilter};

use crate::settings;

/// `GET /api/export/audit?from&to&actor&action`: matching entries as JSONL,
/// oldest first, each with `prev_hash` and `hash`, streamed a page at a
/// time: the log as it stood when asked (the export's own entry, written
/// before any of it leaves, is not in it).
pub fn export(ctx: &mut Ctx) -> Result<Response, ApiError> {
    let mut filter = AuditFilter::parse(|name| ctx.query_param(name))?;
    let limit = settings::max_events()?;
    let conn = db::open()?;
    let now = now_millis();
    db::transaction(conn, |conn| {
        filter.up_to = Some(ready(audit_log::head(&SpinSql(conn)))?.map_or(0, |head| head.id));
        let count = ready(filter.count(&SpinSql(conn)))?;
        if count > limit {
            return Err(settings::too_large("audit entries", count, limit));
        }
        let mut entry = ctx.audit_entry("export.audit_exported", "audit_log", "", now);
        entry.after = Some(
            serde_json::json!({"entries": count, "from": ctx.query_param("from"), "to": ctx.query_param("to"),
                               "actor": filter.actor, "action": filter.action})
            .to_string(),
        );
        vigil_api::audit::append(conn, &entry)
    })?;
    let response = Response::builder()
        .status(200)
        .header("content-type", "application/x-ndjson")
        .header(
            "content-disposition",
            "attachment; filename=\"vigil-audit.jsonl\"",
        )
        .header("cache-control", "no-store")
        .build();
    Ok(ctx.stream(response, move |chunks| {
        let mut page = Vec::new();
        ready(audit_log::export_jsonl(
            &SpinSql(conn),
            &filter,
            &mut page,
            |page| chunks.drain(page),
        ))
        .map(drop)
    }))
}

/// `GET /api/export/audit/verify`: walk the whole chain; ok, or the first
/// broken link with the expected and the stored hash.
pub fn verify(_ctx: &mut Ctx) -> Result<Response, ApiError> {
    let conn = db::open()?;
    let verdict = ready(audit_log::verify(&SpinSql(conn)))?;
    Ok(response::json(200, &verdict))
}

/// `GET /api/export/audit/head`: the latest entry `{id, hash, at}` as a
/// compact JWS signed by the export key. Save it; `vigil audit verify
/// --anchor` later proves the log still holds it.
pub fn head(_ctx: &mut Ctx) -> Result<Response, ApiError> {
    let signer = settings::signer()?;
    let conn = db::open()?;
    let head = ready(audit_log::head(&SpinSql(conn)))?
        .ok_or_else(|| ApiError::not_found().with_detail("the audit log is empty"))?;
    Ok(Response::builder()
        .status(200)
        .header("content-type", "application/jose")
        .header("cache-control", "no-store")
        .body(signer.sign_jws(&head))
        .build())
}
