//! The `metrics` component: KPIs under `/api/metrics/` and Prometheus text at
//! `/metrics`, answered from the hourly rollups every writer keeps in its
//! own transaction (`vigil_core::rollup`). The rules are
//! `vigil-metrics-rules`'s; this component parses, reads and answers.
//!
//! - [`kpis`]: summary, trends, risk, sensors, map, weekly.
//! - [`scrape`]: the Prometheus text at `/metrics`.
//! - [`settings`]: the component's variables.

mod kpis;
mod scrape;
mod settings;

use vigil_api::router::{DEFAULT_BODY_LIMIT, Reply, schema_of};
use vigil_api::{Access, Component, Permission, Route, health};
use vigil_metrics_rules::{fleet, prometheus, summary, trends, weekly};

/// Every Spin variable this component reads (`xtask/tests/variables.rs`
/// checks each is mapped into it in `spin.toml`).
pub const VARIABLES: &[&[&str]] = &[vigil_api::settings::VARIABLES, settings::VARIABLES];

fn text(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"type": "string"})
}

const SCRAPE_REPLY: &[Reply] = &[Reply {
    status: 200,
    description: "Prometheus text exposition (0.0.4), each family with HELP and TYPE",
    content_type: prometheus::CONTENT_TYPE,
    schema: Some(text),
}];
const SCRAPE_SUMMARY: &str = "Prometheus metrics: events and alerts by severity, open alerts, pending decisions by priority, SLA breaches, sensors by status, audit entries (an API key with `metrics:scrape`, or open when `metrics_public` is true)";

const fn get(
    path: &'static str,
    handler: vigil_api::router::Handler,
    summary: &'static str,
    reply: &'static [Reply],
) -> Route {
    Route::new("GET", path, Access::Needs(Permission::MetricsRead), handler)
        .summary(summary)
        .replies(reply)
        .errors(&[422, 503])
}

pub static COMPONENT: Component = Component {
    name: "metrics",
    version: env!("CARGO_PKG_VERSION"),
    routes: &[
        health::route("/api/metrics/health"),
        get(
            "/api/metrics/summary",
            kpis::summary,
            "KPIs over `range` (24h, 7d, 30d, all) or `from`/`to`: totals, rates, time to decision, the alert-fatigue score, top lists, dismiss reasons",
            &[Reply::json(
                200,
                "The figures",
                schema_of::<summary::Summary>,
            )],
        ),
        get(
            "/api/metrics/trends",
            kpis::trends,
            "A zero-filled time series: `metric` (events, alerts, decisions, risk), `bucket` (hour, day), `group_by`, and the window",
            &[Reply::json(200, "The series", schema_of::<trends::Trend>)],
        ),
        get(
            "/api/metrics/risk",
            kpis::risk,
            "The current risk index (0–100) and its hourly history over the window",
            &[Reply::json(
                200,
                "The risk index",
                schema_of::<trends::Risk>,
            )],
        ),
        get(
            "/api/metrics/sensors",
            kpis::sensors,
            "Fleet health: sensors online, stale and offline, events per sensor in the window, silent sensors",
            &[Reply::json(200, "The fleet", schema_of::<fleet::Fleet>)],
        ),
        get(
            "/api/metrics/map",
            kpis::map,
            "Events and their highest score by source country in the window",
            &[Reply::json(200, "The map", schema_of::<fleet::Map>)],
        ),
        get(
            "/api/metrics/weekly",
            kpis::weekly,
            "The weekly report of the week ending on `week_ending` (a Sunday, UTC; default the last ended week): stored by the relay's job, else computed",
            &[Reply::json(
                200,
                "The report",
                schema_of::<weekly::WeeklyReport>,
            )],
        ),
        Route::new(
            "GET",
            "/metrics",
            Access::Needs(Permission::MetricsScrape),
            scrape::scrape,
        )
        .summary(SCRAPE_SUMMARY)
        .replies(SCRAPE_REPLY)
        .errors(&[503]),
    ],
    body_limit: DEFAULT_BODY_LIMIT,
};

/// `/metrics` alone, open to anyone: served instead of the protected route
/// when `metrics_public` is `true` (the documented table keeps the default).
pub static OPEN_SCRAPE: Component = Component {
    name: "metrics",
    version: env!("CARGO_PKG_VERSION"),
    routes: &[
        Route::new("GET", "/metrics", Access::Public, scrape::scrape)
            .summary(SCRAPE_SUMMARY)
            .replies(SCRAPE_REPLY)
            .errors(&[503]),
    ],
    body_limit: DEFAULT_BODY_LIMIT,
};

#[cfg(target_arch = "wasm32")]
#[spin_sdk::http_component]
async fn handle(req: spin_sdk::http::IncomingRequest, out: spin_sdk::http::ResponseOutparam) {
    let path = req.path_with_query().unwrap_or_default();
    let bare = path.split('?').next().unwrap_or_default();
    let component = if bare == "/metrics" && settings::metrics_public() {
        &OPEN_SCRAPE
    } else {
        &COMPONENT
    };
    vigil_api::send(vigil_api::serve(component, req).await, out).await
}
