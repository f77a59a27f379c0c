//! `GET /api/export/threats?format=csv|jsonl|stix&<filters>`: threats for
//! other tools, with the threat explorer's filters, streamed a page at a
//! time. The export is audited before any of it leaves.

use spin_sdk::http::Response;
use vigil_api::db::{self, SpinSql, ready};
use vigil_api::{ApiError, Ctx};
use vigil_core::time::now_millis;
use vigil_evidence::threat_export::{self, Format, ThreatFilter};

use crate::settings;

pub fn export(ctx: &mut Ctx) -> Result<Response, ApiError> {
    let format = Format::parse(ctx.query_param("format").as_deref())?;
    let filter = ThreatFilter::parse(|name| ctx.query_param(name))?;
    let limit = settings::max_events()?;
    let conn = db::open()?;
    let count = ready(filter.count(&SpinSql(conn)))?;
    if count > limit {
        return Err(settings::too_large("events", count, limit));
    }
    let now = now_millis();
    db::transaction(conn, |conn| {
        let mut entry = ctx.audit_entry(
            "export.threats_exported",
            "threat_export",
            threat_export_name(format),
            now,
        );
        // How many matched when the export was allowed.
        entry.after = Some(serde_json::json!({"events": count, "query": ctx.query}).to_string());
        vigil_api::audit::append(conn, &entry)
    })?;
    let bundle_id = format!("bundle--{}", vigil_core::id::new_id());
    let response = Response::builder()
        .status(200)
        .header("content-type", format.content_type())
        .header(
            "content-disposition",
            format!(
                "attachment; filename=\"vigil-threats.{}\"",
                format.extension()
            ),
        )
        .header("cache-control", "no-store")
        .build();
    Ok(ctx.stream(response, move |chunks| {
        let mut page = Vec::new();
        ready(threat_export::export(
            &SpinSql(conn),
            &filter,
            format,
            &bundle_id,
            &mut page,
            |page| chunks.drain(page),
        ))
        .map(drop)
    }))
}

fn threat_export_name(format: Format) -> &'static str {
    match format {
        Format::Csv => "csv",
        Format::Jsonl => "jsonl",
        Format::Stix => "stix",
    }
}
