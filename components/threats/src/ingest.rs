//! `POST /api/threats/events`: one event, or `{"events": [...]}` (up to
//! 1,000), through the shared ingestion pipeline (`vigil_ingest::pipeline`,
//! which the relay runs for MQTT too). Each item is validated on its own;
//! the valid ones are scored and committed together, with their alerts and
//! outbox rows, in one transaction.

use spin_sdk::http::Response;
use vigil_api::db::{SpinSql, ready};
use vigil_api::{ApiError, Ctx, db, response};
use vigil_core::time::now_millis;
use vigil_ingest::geo::GeoLookup;
use vigil_ingest::pipeline::{self, Sender, Storing, Submission};

use crate::settings;

pub fn post(ctx: &mut Ctx) -> Result<Response, ApiError> {
    let items = ctx.json::<Submission>()?.items()?;
    let now = now_millis();
    let settings = settings::get()?;
    let mut validated = pipeline::validate(items, now, settings.retention_ms);
    let actor = ctx.actor();
    validated.ingested_by(&actor);
    let conn = db::open()?;
    let speaks_for = ready(pipeline::speaks_for(&SpinSql(conn), ctx.principal()))?;
    validated.check_sender(speaks_for.as_deref())?;
    let storing = Storing {
        zones: settings.zones.clone(),
        alert_window_ms: settings.alert_window_ms,
        geo: GeoLookup::new(settings.geoip_databases.clone(), log_geoip_failure),
    };
    let sender = Sender {
        sensor: speaks_for.as_deref(),
        actor: &actor,
    };
    if validated.valid.is_empty() {
        return Ok(response::json(200, &validated.finish()?));
    }
    // What depends on the events alone is worked out before the write lock.
    let prepared = validated.prepare(&storing);
    let outcome = db::transaction(conn, |conn| {
        ready(pipeline::commit(
            &SpinSql(conn),
            &storing,
            &sender,
            &validated,
            &prepared,
            now,
        ))
    })?;
    // Automatic playbooks answer the `alert.opened` events in the relay
    // (its `playbooks` job), so a slow webhook never slows ingestion.
    Ok(response::json(200, &outcome.finish()?))
}

fn log_geoip_failure(why: &str) {
    vigil_api::log::line(
        serde_json::json!({"level": "error", "msg": "geoip_databases: a database cannot be used", "why": why}),
    );
}
