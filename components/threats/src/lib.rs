//! The `threats` component: sensor events in (validated, de-duplicated,
//! classified, mapped to MITRE ATT&CK and scored by `vigil-ingest`), alerts
//! raised and grouped, reading both back, the sensor registry, and playbooks
//! (`/api/threats/...`, `/api/alerts/...`, `/api/sensors/...`,
//! `/api/playbooks/...`).
//!
//! - [`ingest`]: `POST /api/threats/events`.
//! - [`read`]: threats and alerts.
//! - [`alerts`]: acknowledging and resolving alerts.
//! - [`sensors`]: the registry, heartbeats, per-sensor stats.
//! - [`onboarding`]: onboarding tokens and sensor registration.
//! - [`playbooks`]: playbooks, running them, their execution history.
//! - [`webhook`]: the one outbound request (a playbook's webhook).
//! - [`geo`]: country and ASN of source addresses (MaxMind-format files).
//! - [`settings`]: the component's variables (a bad one is a 503 naming it).

mod alerts;
mod ingest;
mod onboarding;
mod playbooks;
mod read;
mod sensors;
mod settings;
mod webhook;

use vigil_api::router::{DEFAULT_BODY_LIMIT, Reply, schema_of};
use vigil_api::{Access, Component, Permission, Route, health};

/// Every Spin variable this component reads: the shared ones, its own, and
/// the decision rules' (playbooks open decisions). `xtask/tests/variables.rs`
/// checks each is mapped into it in `spin.toml`.
pub const VARIABLES: &[&[&str]] = &[
    vigil_api::settings::VARIABLES,
    settings::VARIABLES,
    vigil_api::decisions::settings::VARIABLES,
];

pub static COMPONENT: Component = Component {
    name: "threats",
    version: env!("CARGO_PKG_VERSION"),
    routes: &[
        health::route("/api/threats/health"),
        Route::new("POST", "/api/threats/events", Access::Needs(Permission::SensorsIngest), ingest::post)
            .summary("Ingest one event or a batch of up to 1,000; each item is accepted, a duplicate, or rejected with reasons")
            .request(schema_of::<vigil_ingest::pipeline::Submission>)
            .replies(&[Reply::json(200, "What became of each item", schema_of::<vigil_ingest::pipeline::Outcome>)])
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
            .summary("Alerts by last event, newest first; filters and cursor pagination")
            .replies(&[Reply::json(200, "A page of alerts", schema_of::<read::AlertPage>)])
            .errors(&[400, 422, 503]),
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
        Route::new("GET", "/api/sensors", Access::Needs(Permission::SensorsRead), sensors::list)
            .summary("The sensor registry by name, with status from heartbeat age (`status`, `kind` filter; cursor)")
            .replies(&[Reply::json(200, "A page of sensors", schema_of::<sensors::SensorPage>)])
            .errors(&[400, 422, 503]),
        Route::new("POST", "/api/sensors", Access::Needs(Permission::SensorsManage), sensors::create)
            .summary("Add a sensor to the registry (its id is the `sensor_id` of its events)")
            .request(schema_of::<sensors::NewSensor>)
            .replies(&[Reply::json(201, "The sensor; `ETag` is its version", schema_of::<sensors::Sensor>)])
            .errors(&[409, 503]),
        Route::new("POST", "/api/sensors/onboarding-tokens", Access::Needs(Permission::ApiKeysManage), onboarding::create_token)
            .summary("A single-use, expiring onboarding token (admin), also as a QR code")
            .request(schema_of::<onboarding::TokenRequest>)
            .replies(&[Reply::json(201, "The token, shown once", schema_of::<onboarding::OnboardingToken>)])
            .errors(&[503]),
        Route::new("GET", "/api/sensors/onboarding-tokens", Access::Needs(Permission::ApiKeysManage), onboarding::list_tokens)
            .summary("Onboarding tokens, newest first, with what became of each (never the token itself)")
            .replies(&[Reply::json(200, "The tokens", schema_of::<onboarding::TokenList>)])
            .errors(&[503]),
        Route::new("DELETE", "/api/sensors/onboarding-tokens/{id}", Access::Needs(Permission::ApiKeysManage), onboarding::revoke_token)
            .summary("Revoke an unused onboarding token")
            .replies(&[Reply { status: 204, description: "Revoked", content_type: "", schema: None }])
            .errors(&[404, 409, 503]),
        Route::new("POST", "/api/sensors/register", Access::Public, onboarding::register)
            .summary("Register a sensor with an onboarding token: its id and API key, once")
            .request(schema_of::<onboarding::Registration>)
            .replies(&[Reply::json(201, "The sensor and its API key (shown once)", schema_of::<onboarding::Registered>)])
            .errors(&[401, 410, 503]),
        Route::new("GET", "/api/sensors/{id}", Access::Needs(Permission::SensorsRead), sensors::get)
            .summary("One sensor with its status and last heartbeat")
            .replies(&[Reply::json(200, "The sensor; `ETag` is its version", schema_of::<sensors::Sensor>)])
            .errors(&[404, 503]),
        Route::new("PATCH", "/api/sensors/{id}", Access::Needs(Permission::SensorsManage), sensors::update)
            .summary("Change a sensor's name, kind, location, description or configuration (If-Match); the relay publishes the configuration retained to `vigil/sensors/{id}/control`")
            .request(schema_of::<sensors::SensorChange>)
            .replies(&[Reply::json(200, "The sensor; `ETag` is its version", schema_of::<sensors::Sensor>)])
            .errors(&[404, 412, 428, 503]),
        Route::new("DELETE", "/api/sensors/{id}", Access::Needs(Permission::SensorsManage), sensors::delete)
            .summary("Remove a sensor and revoke its API keys (its events stay)")
            .replies(&[Reply { status: 204, description: "Deleted", content_type: "", schema: None }])
            .errors(&[404, 503]),
        Route::new("GET", "/api/sensors/{id}/stats", Access::Needs(Permission::SensorsRead), sensors::stats)
            .summary("A sensor's events by severity and type over a range, its open alerts and last event")
            .replies(&[Reply::json(200, "The stats", schema_of::<sensors::SensorStats>)])
            .errors(&[404, 422, 503]),
        Route::new("POST", "/api/sensors/{id}/heartbeat", Access::Needs(Permission::SensorsIngest), sensors::heartbeat)
            .summary("A heartbeat, from the sensor's own API key")
            .request(schema_of::<vigil_ingest::sensor::Heartbeat>)
            .replies(&[Reply::json(200, "The sensor, now online", schema_of::<sensors::Sensor>)])
            .errors(&[404, 503]),
        Route::new("GET", "/api/playbooks", Access::Needs(Permission::PlaybooksRead), playbooks::list)
            .summary("Every playbook, by name")
            .replies(&[Reply::json(200, "The playbooks", schema_of::<playbooks::PlaybookList>)])
            .errors(&[503]),
        Route::new("POST", "/api/playbooks", Access::Needs(Permission::PlaybooksManage), playbooks::create)
            .summary("A playbook: a trigger and ordered actions (actions that change systems open decisions)")
            .request(schema_of::<playbooks::PlaybookSpec>)
            .replies(&[Reply::json(201, "The playbook; `ETag` is its version", schema_of::<playbooks::Playbook>)])
            .errors(&[409, 503]),
        Route::new("GET", "/api/playbooks/executions", Access::Needs(Permission::PlaybooksRead), playbooks::executions)
            .summary("Playbook executions, newest first, with each action's outcome (`playbook_id`, `alert_id`; cursor)")
            .replies(&[Reply::json(200, "A page of executions", schema_of::<playbooks::ExecutionPage>)])
            .errors(&[400, 422, 503]),
        Route::new("GET", "/api/playbooks/{id}", Access::Needs(Permission::PlaybooksRead), playbooks::get)
            .summary("One playbook")
            .replies(&[Reply::json(200, "The playbook; `ETag` is its version", schema_of::<playbooks::Playbook>)])
            .errors(&[404, 503]),
        Route::new("PUT", "/api/playbooks/{id}", Access::Needs(Permission::PlaybooksManage), playbooks::replace)
            .summary("Replace a playbook (If-Match)")
            .request(schema_of::<playbooks::PlaybookSpec>)
            .replies(&[Reply::json(200, "The playbook; `ETag` is its version", schema_of::<playbooks::Playbook>)])
            .errors(&[404, 409, 412, 428, 503]),
        Route::new("DELETE", "/api/playbooks/{id}", Access::Needs(Permission::PlaybooksManage), playbooks::delete)
            .summary("Delete a playbook (its executions stay in the history)")
            .replies(&[Reply { status: 204, description: "Deleted", content_type: "", schema: None }])
            .errors(&[404, 503]),
        Route::new("POST", "/api/playbooks/{id}/execute", Access::Needs(Permission::AlertsManage), playbooks::execute)
            .summary("Run a playbook against an alert now; approval actions open decisions")
            .request(schema_of::<playbooks::ExecuteRequest>)
            .replies(&[Reply::json(201, "The execution with each action's outcome", schema_of::<playbooks::Execution>)])
            .errors(&[404, 503]),
    ],
    body_limit: DEFAULT_BODY_LIMIT,
};

#[cfg(target_arch = "wasm32")]
#[spin_sdk::http_component]
async fn handle(req: spin_sdk::http::IncomingRequest, out: spin_sdk::http::ResponseOutparam) {
    vigil_api::send(vigil_api::serve(&COMPONENT, req).await, out).await
}
