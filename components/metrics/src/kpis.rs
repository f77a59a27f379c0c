//! The dashboard's endpoints under `/api/metrics/`: each parses its query,
//! reads the rollups through `vigil-metrics-rules`, and answers JSON.

use spin_sdk::http::Response;
use vigil_api::db::{self, SpinSql, ready};
use vigil_api::{ApiError, Ctx, response};
use vigil_core::time::now_millis;
use vigil_metrics_rules::summary::{self, SummarySettings};
use vigil_metrics_rules::trends::{self, Metric};
use vigil_metrics_rules::window::{Bucket, Window};
use vigil_metrics_rules::{fleet, weekly};

use crate::settings;

fn window(ctx: &Ctx, now: i64) -> Result<Window, ApiError> {
    Window::parse(
        ctx.query_param("range").as_deref(),
        ctx.query_param("from").as_deref(),
        ctx.query_param("to").as_deref(),
        now,
    )
}

/// `GET /api/metrics/summary`.
pub fn summary(ctx: &mut Ctx) -> Result<Response, ApiError> {
    let w = window(ctx, now_millis())?;
    let settings = SummarySettings {
        ack_sla_seconds: settings::ack_sla_seconds()?,
    };
    let s = ready(summary::summary(&SpinSql(db::open()?), &w, &settings))?;
    Ok(response::json(200, &s))
}

/// `GET /api/metrics/trends`.
pub fn trends(ctx: &mut Ctx) -> Result<Response, ApiError> {
    let metric = Metric::parse(ctx.query_param("metric").as_deref())?;
    let bucket = Bucket::parse(ctx.query_param("bucket").as_deref())?;
    let group_by = metric.group_by(ctx.query_param("group_by").as_deref())?;
    let w = window(ctx, now_millis())?;
    let t = ready(trends::trend(
        &SpinSql(db::open()?),
        &w,
        metric,
        bucket,
        group_by,
    ))?;
    Ok(response::json(200, &t))
}

/// `GET /api/metrics/risk`.
pub fn risk(ctx: &mut Ctx) -> Result<Response, ApiError> {
    let now = now_millis();
    let w = window(ctx, now)?;
    let r = ready(trends::risk(&SpinSql(db::open()?), &w, now))?;
    Ok(response::json(200, &r))
}

/// `GET /api/metrics/sensors`.
pub fn sensors(ctx: &mut Ctx) -> Result<Response, ApiError> {
    let now = now_millis();
    let w = window(ctx, now)?;
    let f = ready(fleet::fleet(
        &SpinSql(db::open()?),
        &w,
        &settings::liveness()?,
        now,
    ))?;
    Ok(response::json(200, &f))
}

/// `GET /api/metrics/map`.
pub fn map(ctx: &mut Ctx) -> Result<Response, ApiError> {
    let w = window(ctx, now_millis())?;
    let m = ready(fleet::map(&SpinSql(db::open()?), &w))?;
    Ok(response::json(200, &m))
}

/// `GET /api/metrics/weekly[?week_ending=YYYY-MM-DD]`.
pub fn weekly(ctx: &mut Ctx) -> Result<Response, ApiError> {
    let now = now_millis();
    let sunday = weekly::week_ending(ctx.query_param("week_ending").as_deref(), now)?;
    let r = ready(weekly::report(&SpinSql(db::open()?), sunday, now))?;
    Ok(response::json(200, &r))
}
