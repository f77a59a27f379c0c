//! The `export` component: evidence packs and audit-log export (`/api/export/...`).
//!
//! At this stage it serves its health check; every other path under its
//! routes answers a problem+json 404 (see `vigil_api::router`).

use spin_sdk::http::{IncomingRequest, Response};
use spin_sdk::http_component;
use vigil_api::router::DEFAULT_BODY_LIMIT;
use vigil_api::{Access, Component, Route, health};

static COMPONENT: Component = Component {
    name: "export",
    version: env!("CARGO_PKG_VERSION"),
    routes: &[Route {
        method: "GET",
        path: "/api/export/health",
        access: Access::Public,
        handler: health::handle,
    }],
    body_limit: DEFAULT_BODY_LIMIT,
};

#[http_component]
async fn handle(req: IncomingRequest) -> Response {
    vigil_api::serve(&COMPONENT, req).await
}
