//! The metrics component's variables, typed and parsed once per request
//! (`vigil_api::settings`): a bad one is a 503 naming it, never a default.

use std::sync::OnceLock;

use vigil_api::ApiError;
use vigil_api::settings::{Reader, boolean, number};
use vigil_ingest::sensor::Liveness;

pub const SENSOR_ONLINE_SECONDS: &str = "sensor_online_seconds";
pub const SENSOR_OFFLINE_SECONDS: &str = "sensor_offline_seconds";
pub const METRICS_PUBLIC: &str = "metrics_public";
pub const METRICS_ACK_SLA_MINUTES: &str = "metrics_ack_sla_minutes";

/// The component's own variables (besides the shared ones, see the crate's `VARIABLES`).
pub const VARIABLES: &[&str] = &[
    SENSOR_ONLINE_SECONDS,
    SENSOR_OFFLINE_SECONDS,
    METRICS_PUBLIC,
    METRICS_ACK_SLA_MINUTES,
];

struct Settings {
    liveness: Liveness,
    ack_sla_seconds: f64,
    metrics_public: bool,
}

fn get() -> Result<&'static Settings, ApiError> {
    static SETTINGS: OnceLock<Result<Settings, ApiError>> = OnceLock::new();
    SETTINGS.get_or_init(load).as_ref().map_err(Clone::clone)
}

fn load() -> Result<Settings, ApiError> {
    let mut r = Reader::new(VARIABLES);
    let year = 365 * 86_400;
    match (
        r.read(SENSOR_ONLINE_SECONDS, number(1, year)),
        r.read(SENSOR_OFFLINE_SECONDS, number(1, year)),
        r.read(METRICS_PUBLIC, boolean),
        r.read(METRICS_ACK_SLA_MINUTES, number(1, 7 * 24 * 60)),
    ) {
        (Some(online), Some(offline), Some(metrics_public), Some(ack)) if online < offline => {
            Ok(Settings {
                liveness: Liveness::from_seconds(Some(online), Some(offline)),
                ack_sla_seconds: (ack * 60) as f64,
                metrics_public,
            })
        }
        (Some(online), Some(offline), ..) if online >= offline => {
            r.read(SENSOR_OFFLINE_SECONDS, |_| -> Result<(), String> {
                Err(format!(
                    "{offline} is not more than sensor_online_seconds ({online})"
                ))
            });
            Err(r.refusal())
        }
        _ => Err(r.refusal()),
    }
}

/// `sensor_online_seconds` and `sensor_offline_seconds`, as the threats component reads them.
pub fn liveness() -> Result<Liveness, ApiError> {
    Ok(get()?.liveness)
}

/// `metrics_ack_sla_minutes` (default 15): the time to acknowledge an alert
/// that the fatigue score measures the median against.
pub fn ack_sla_seconds() -> Result<f64, ApiError> {
    Ok(get()?.ack_sla_seconds)
}

/// `metrics_public` (default `false`): `true` serves `/metrics` without a
/// key, for a scraper on a private network. While any setting is bad the
/// route stays closed, and its handler answers the 503 naming it.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
pub fn metrics_public() -> bool {
    get().is_ok_and(|s| s.metrics_public)
}
