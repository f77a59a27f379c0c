//! The `threats` component: sensor events in (validated, de-duplicated,
//! classified, mapped to MITRE ATT&CK and scored by `vigil-ingest`), alerts
//! raised and grouped, and reading both back (`/api/threats/...`,
//! `/api/alerts/...`; `/api/sensors/...` and `/api/playbooks/...` are routed
//! here too and come next).
//!
//! - [`ingest`]: `POST /api/threats/events`.
//! - [`read`]: threats and alerts.
//! - [`alerts`]: acknowledging and resolving alerts.
//! - [`settings`]: zones, retention, the alert grouping window.

mod alerts;
mod ingest;
mod read;
mod settings;

use vigil_api::router::{DEFAULT_BODY_LIMIT, Reply, schema_of};
use vigil_api::{Access, Component, Permission, Route, health};

pub static COMPONENT: Component = Component {
    name: "threats",
    version: env!("CARGO_PKG_VERSION"),
    routes: &[
        health::route("/api/threats/health"),
        Route::new("POST", "/api/threats/events", Access::Needs(Permission::SensorsIngest), ingest::post)
            .summary("Ingest one event or a batch of up to 1,000; each item is accepted, a duplicate, or rejected with reasons")
            .request(schema_of::<ingest::Submission>)
            .replies(&[Reply::json(200, "What became of each item", schema_of::<ingest::Outcome>)])
            .errors(&[503]),
        Route::new("GET", "/api/threats", Access::Needs(Permission::ThreatsRead), read::list)
            .summary("Threat events, newest first; filters and cursor pagination")
            .replies(&[Reply::json(200, "A page of events", schema_of::<read::ThreatPage>)])
            .errors(&[400, 422, 503]),
        Route::new("GET", "/api/threats/stats", Access::Needs(Permission::ThreatsRead), read::stats)
            .summary("Counts of events by severity, type and sensor over a range (24h, 7d, 30d, all)")
            .replies(&[Reply::json(200, "The counts", schema_of::<read::ThreatStats>)])
            .errors(&[422, 503]),
        Route::new("DELETE", "/api/threats/{id}", Access::Needs(Permission::ThreatsDelete), read::delete)
            .summary("Delete one event (admin); audited with what it was")
            .replies(&[Reply { status: 204, description: "Deleted", content_type: "", schema: None }])
            .errors(&[404, 503]),
        Route::new("GET", "/api/threats/{id}", Access::Needs(Permission::ThreatsRead), read::get)
            .summary("One event with its score breakdown")
            .replies(&[Reply::json(200, "The event", schema_of::<read::Threat>)])
            .errors(&[404, 503]),
        Route::new("GET", "/api/alerts", Access::Needs(Permission::AlertsRead), read::alerts)
            .summary("The latest alerts, newest first (`status` filters)")
            .replies(&[Reply::json(200, "Alerts", schema_of::<read::AlertList>)])
            .errors(&[422, 503]),
        Route::new("GET", "/api/alerts/{id}", Access::Needs(Permission::AlertsRead), read::get_alert)
            .summary("One alert with its latest events")
            .replies(&[Reply::json(200, "The alert", schema_of::<read::AlertWithEvents>)])
            .errors(&[404, 503]),
        Route::new("POST", "/api/alerts/{id}/acknowledge", Access::Needs(Permission::AlertsManage), alerts::acknowledge)
            .summary("Acknowledge an open alert (If-Match with its ETag)")
            .request(schema_of::<alerts::Note>)
            .replies(&[Reply::json(200, "The alert; `ETag` is its version", schema_of::<read::Alert>)])
            .errors(&[404, 409, 412, 428, 503]),
        Route::new("POST", "/api/alerts/{id}/resolve", Access::Needs(Permission::AlertsManage), alerts::resolve)
            .summary("Resolve an alert, with a note (If-Match with its ETag)")
            .request(schema_of::<alerts::Note>)
            .replies(&[Reply::json(200, "The alert; `ETag` is its version", schema_of::<read::Alert>)])
            .errors(&[404, 409, 412, 428, 503]),
    ],
    body_limit: DEFAULT_BODY_LIMIT,
};

#[cfg(target_arch = "wasm32")]
#[spin_sdk::http_component]
async fn handle(req: spin_sdk::http::IncomingRequest) -> spin_sdk::http::Response {
    vigil_api::serve(&COMPONENT, req).await
}
