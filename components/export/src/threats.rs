//! `GET /api/export/threats?format=csv|jsonl|stix&<filters>`: threats for
//! other tools, with the threat explorer's filters. The export is audited.

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
    let sql = SpinSql(conn);
    let count = ready(filter.count(&sql))?;
    if count > limit {
        return Err(settings::too_large("events", count, limit));
    }
    let bundle_id = format!("bundle--{}", vigil_core::id::new_id());
    let mut body = Vec::new();
    let events = ready(threat_export::export(
        &sql, &filter, format, &bundle_id, &mut body,
    ))?;
    let now = now_millis();
    db::transaction(conn, |conn| {
        let mut entry = ctx.audit_entry(
            "export.threats_exported",
            "threat_export",
            threat_export_name(format),
            now,
        );
        entry.after = Some(serde_json::json!({"events": events, "query": ctx.query}).to_string());
        vigil_api::audit::append(conn, &entry)
    })?;
    Ok(Response::builder()
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
        .body(body)
        .build())
}

fn threat_export_name(format: Format) -> &'static str {
    match format {
        Format::Csv => "csv",
        Format::Jsonl => "jsonl",
        Format::Stix => "stix",
    }
}
