//! The `export` component: evidence packs and audit-log export (`/api/export/...`).
//!
//! At this stage it serves its health check; every other path under its
//! routes answers a problem+json 404 (see `vigil_api::router`).

use vigil_api::router::DEFAULT_BODY_LIMIT;
use vigil_api::{Component, health};

pub static COMPONENT: Component = Component {
    name: "export",
    version: env!("CARGO_PKG_VERSION"),
    routes: &[health::route("/api/export/health")],
    body_limit: DEFAULT_BODY_LIMIT,
};

#[cfg(target_arch = "wasm32")]
#[spin_sdk::http_component]
async fn handle(req: spin_sdk::http::IncomingRequest) -> spin_sdk::http::Response {
    vigil_api::serve(&COMPONENT, req).await
}
