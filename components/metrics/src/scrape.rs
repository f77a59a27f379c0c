//! `GET /metrics`: Prometheus text. Protected by an API key with the
//! `metrics:scrape` scope, unless `metrics_public` is `true`.

use spin_sdk::http::Response;
use vigil_api::db::{self, SpinSql, ready};
use vigil_api::{ApiError, Ctx};
use vigil_core::time::now_millis;
use vigil_metrics_rules::prometheus;

use crate::settings;

pub fn scrape(_: &mut Ctx) -> Result<Response, ApiError> {
    let now = now_millis();
    let families = ready(prometheus::scrape(
        &SpinSql(db::open()?),
        &settings::liveness()?,
        now,
    ))?;
    Ok(Response::builder()
        .status(200)
        .header("content-type", prometheus::CONTENT_TYPE)
        .header("cache-control", "no-store")
        .body(prometheus::render(&families))
        .build())
}
