//! Reading threats and alerts.

use schemars::JsonSchema;
use serde::Serialize;
use spin_sdk::http::Response;
use vigil_api::audit::Audited;
use vigil_api::db::{Columns, SpinSql, Value, ready};
use vigil_api::listing::{self, Filters};
use vigil_api::{ApiError, Ctx, db, response};
use vigil_core::time::parse_rfc3339;
pub use vigil_ingest::alert::Alert;
use vigil_ingest::alert::{COLUMNS as ALERT_COLUMNS, from_row as alert};
use vigil_ingest::event::{EventType, Severity};
pub use vigil_ingest::threat::Threat;
use vigil_ingest::threat::{COLUMNS as THREAT_COLUMNS, from_row as threat};

#[derive(Serialize, JsonSchema)]
pub struct ThreatPage {
    threats: Vec<Threat>,
    /// Pass as `cursor` for the next page; absent on the last page.
    next_cursor: Option<String>,
}

/// The filters of threats and alerts alike: `since` and `until` (RFC 3339,
/// on `time_column`), `severity`, `event_type`, `sensor_id`, `source_ip`.
fn shared_filters(ctx: &Ctx, time_column: &str) -> Result<Filters, ApiError> {
    let mut f = Filters::default();
    for (name, op) in [("since", ">="), ("until", "<")] {
        if let Some(t) = ctx.query_param(name) {
            let ms = parse_rfc3339(&t)
                .ok_or_else(|| ApiError::invalid_field(name, "is not an RFC 3339 time"))?;
            f.add(&format!("{time_column} {op} ?"), vec![Value::Integer(ms)]);
        }
    }
    if let Some(s) = ctx.query_param("severity") {
        vigil_core::wire::parse_wire::<Severity>(&s)
            .ok_or_else(|| ApiError::invalid_field("severity", "is not a severity"))?;
        f.add("severity = ?", vec![Value::Text(s)]);
    }
    if let Some(t) = ctx.query_param("event_type") {
        vigil_core::wire::parse_wire::<EventType>(&t)
            .ok_or_else(|| ApiError::invalid_field("event_type", "is not an event type"))?;
        f.add("event_type = ?", vec![Value::Text(t)]);
    }
    for name in ["sensor_id", "source_ip"] {
        if let Some(v) = ctx.query_param(name) {
            f.add(&format!("{name} = ?"), vec![Value::Text(v)]);
        }
    }
    Ok(f)
}

/// `GET /api/threats`: newest first. Filters: `since`, `until` (RFC 3339),
/// `severity`, `event_type`, `sensor_id`, `source_ip`, `technique`, `zone`,
/// `country`;
/// `limit` (1-200, default 50), `cursor`.
pub fn list(ctx: &mut Ctx) -> Result<Response, ApiError> {
    let mut f = shared_filters(ctx, "observed_at")?;
    for (name, column) in [
        ("technique", "technique"),
        ("zone", "dest_zone"),
        ("country", "source_country"),
    ] {
        if let Some(v) = ctx.query_param(name) {
            f.add(&format!("{column} = ?"), vec![Value::Text(v)]);
        }
    }
    let limit = listing::limit(ctx)?;
    listing::newest_first_after(ctx, &mut f, "observed_at")?;
    let sql = format!(
        "SELECT {THREAT_COLUMNS} FROM threat_events {} ORDER BY observed_at DESC, id DESC LIMIT {}",
        f.where_clause(),
        f.limit_placeholder(limit + 1)
    );
    let conn = db::open()?;
    let mut threats: Vec<Threat> = db::query(conn, &sql, &f.params)?
        .iter()
        .filter_map(|r| threat(r))
        .collect();
    let next_cursor = listing::page(&mut threats, limit, |t| {
        vec![t.observed_ms.to_string(), t.id.clone()]
    });
    Ok(response::json(
        200,
        &ThreatPage {
            threats,
            next_cursor,
        },
    ))
}

/// `GET /api/threats/{id}`: one event with its score breakdown.
pub fn get(ctx: &mut Ctx) -> Result<Response, ApiError> {
    let conn = db::open()?;
    let rows = db::query(
        conn,
        &format!("SELECT {THREAT_COLUMNS} FROM threat_events WHERE id = ?1"),
        &[Value::Text(ctx.param("id").into())],
    )?;
    let threat = rows
        .first()
        .and_then(|r| threat(r))
        .ok_or_else(ApiError::not_found)?;
    Ok(response::json(200, &threat))
}

#[derive(Serialize, JsonSchema)]
pub struct AlertPage {
    alerts: Vec<Alert>,
    /// Pass as `cursor` for the next page; absent on the last page.
    next_cursor: Option<String>,
}

/// `GET /api/alerts`: by last event, newest first. Filters: `status`,
/// `severity`, `event_type`, `sensor_id`, `source_ip`, `since`/`until` (of
/// the last event, RFC 3339); `limit` (1-200, default 50), `cursor`.
pub fn alerts(ctx: &mut Ctx) -> Result<Response, ApiError> {
    let mut f = shared_filters(ctx, "last_seen")?;
    if let Some(s) = ctx.query_param("status") {
        vigil_ingest::alert::AlertStatus::parse(&s).ok_or_else(|| {
            ApiError::invalid_field("status", "is open, acknowledged or resolved")
        })?;
        f.add("status = ?", vec![Value::Text(s)]);
    }
    let limit = listing::limit(ctx)?;
    listing::newest_first_after(ctx, &mut f, "last_seen")?;
    let sql = format!(
        "SELECT {ALERT_COLUMNS} FROM alerts {} ORDER BY last_seen DESC, id DESC LIMIT {}",
        f.where_clause(),
        f.limit_placeholder(limit + 1)
    );
    let conn = db::open()?;
    let mut rows = db::query(conn, &sql, &f.params)?;
    let next_cursor = listing::page(&mut rows, limit, |last| {
        vec![
            db::int(last, 9).unwrap_or_default().to_string(),
            db::text(last, 0).unwrap_or_default(),
        ]
    });
    Ok(response::json(
        200,
        &AlertPage {
            alerts: rows.iter().filter_map(|r| alert(r)).collect(),
            next_cursor,
        },
    ))
}

#[derive(Serialize, JsonSchema)]
pub struct AlertWithEvents {
    #[serde(flatten)]
    alert: Alert,
    /// The alert's latest 100 events.
    events: Vec<Threat>,
}

/// The ETag of an alert.
pub fn etag(alert: &Alert) -> String {
    vigil_api::response::etag(alert.version)
}

/// Alert `id` on the request's connection (404 when there is none).
pub fn load_alert(conn: &spin_sdk::sqlite::Connection, id: &str) -> Result<Alert, ApiError> {
    ready(vigil_ingest::alert::load(&SpinSql(conn), id))
}

/// `GET /api/alerts/{id}`: the alert and its latest events.
pub fn get_alert(ctx: &mut Ctx) -> Result<Response, ApiError> {
    let conn = db::open()?;
    let id = ctx.param("id").to_string();
    let alert = load_alert(conn, &id)?;
    let events = db::query(
        conn,
        &format!("SELECT {THREAT_COLUMNS} FROM threat_events WHERE alert_id = ?1 ORDER BY observed_at DESC LIMIT 100"),
        &[Value::Text(id)],
    )?
    .iter()
    .filter_map(|r| threat(r))
    .collect();
    let etag = etag(&alert);
    let mut response = response::json(200, &AlertWithEvents { alert, events });
    response.set_header("etag", etag);
    Ok(response)
}

#[derive(Serialize, JsonSchema)]
pub struct ThreatStats {
    /// `24h`, `7d`, `30d` or `all`.
    range: String,
    total: i64,
    by_severity: std::collections::BTreeMap<String, i64>,
    by_type: std::collections::BTreeMap<String, i64>,
    by_sensor: std::collections::BTreeMap<String, i64>,
}

/// `GET /api/threats/stats?range=24h|7d|30d|all`: counts of events observed
/// in the range's hours, from the metrics rollups (one statement).
pub fn stats(ctx: &mut Ctx) -> Result<Response, ApiError> {
    use vigil_metrics_rules::read::{Dim, events_by};
    use vigil_metrics_rules::window::Window;
    let range = ctx.query_param("range");
    let window = Window::parse(range.as_deref(), None, None, vigil_core::time::now_millis())?;
    let sql = vigil_api::db::SpinSql(db::open()?);
    let counts = vigil_api::db::ready(events_by(
        &sql,
        &window,
        &[Dim::Severity, Dim::Type, Dim::Sensor],
    ))?;
    let mut counts = counts
        .into_iter()
        .map(|m| m.into_iter().map(|(k, a)| (k, a.events)).collect());
    let mut next = || counts.next().unwrap_or_default();
    let (by_severity, by_type, by_sensor): (std::collections::BTreeMap<String, i64>, _, _) =
        (next(), next(), next());
    let total = by_severity.values().sum();
    Ok(response::json(
        200,
        &ThreatStats {
            range: window.label,
            total,
            by_severity,
            by_type,
            by_sensor,
        },
    ))
}

/// `DELETE /api/threats/{id}` (admin): remove one event, audited with what it was.
pub fn delete(ctx: &mut Ctx) -> Result<Response, ApiError> {
    let id = ctx.param("id").to_string();
    let now = vigil_core::time::now_millis();
    let conn = db::open()?;
    db::transaction(conn, |conn| {
        let rows = db::query(
            conn,
            &format!("SELECT {THREAT_COLUMNS} FROM threat_events WHERE id = ?1"),
            &[Value::Text(id.clone())],
        )?;
        let before = rows
            .first()
            .and_then(|r| threat(r))
            .ok_or_else(ApiError::not_found)?;
        static GONE: Columns = Columns::new(
            "observed_at, sensor_id, event_type, severity, dest_zone, source_country, score",
        );
        let gone = db::query(
            conn,
            &format!("DELETE FROM threat_events WHERE id = ?1 RETURNING {GONE}"),
            &[Value::Text(id.clone())],
        )?;
        // Out of the metrics rollups too, in the same transaction.
        if let Some(row) = gone.first() {
            let r = GONE.row(row);
            let [sensor, kind, severity, zone, country] = [
                "sensor_id",
                "event_type",
                "severity",
                "dest_zone",
                "source_country",
            ]
            .map(|name| r.text(name));
            let sample = vigil_core::rollup::EventSample {
                observed_at: r.int("observed_at").unwrap_or(0),
                sensor_id: sensor.as_deref().unwrap_or_default(),
                event_type: kind.as_deref().unwrap_or_default(),
                severity: severity.as_deref().unwrap_or_default(),
                zone: zone.as_deref(),
                country: country.as_deref(),
                score: r.int("score").unwrap_or(0),
            };
            vigil_api::db::ready(vigil_core::rollup::remove_event(
                &vigil_api::db::SpinSql(conn),
                &sample,
            ))?;
        }
        let audited = Audited::new(ctx.audit_entry("threat.deleted", "threat", &id, now))
            .before(&before)
            .publish("threat.deleted", serde_json::json!({"id": id}));
        vigil_api::audit::record(conn, &audited)
    })?;
    Ok(Response::builder().status(204).build())
}
