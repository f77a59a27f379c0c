//! The metrics component's variables.

use vigil_ingest::sensor::Liveness;

fn variable(name: &str) -> Option<String> {
    spin_sdk::variables::get(name).ok()
}

fn number(name: &str) -> Option<i64> {
    variable(name).and_then(|v| v.trim().parse::<i64>().ok())
}

/// `sensor_online_seconds` and `sensor_offline_seconds`, as the threats component reads them.
pub fn liveness() -> Liveness {
    Liveness::from_seconds(
        number("sensor_online_seconds"),
        number("sensor_offline_seconds"),
    )
}

/// `metrics_ack_sla_minutes` (default 15): the time to acknowledge an alert
/// that the fatigue score measures the median against.
pub fn ack_sla_seconds() -> f64 {
    (number("metrics_ack_sla_minutes")
        .filter(|m| *m > 0)
        .unwrap_or(15)
        * 60) as f64
}

/// `metrics_public` (default `false`): `true` serves `/metrics` without a
/// key, for a scraper on a private network.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
pub fn metrics_public() -> bool {
    variable("metrics_public").is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}
