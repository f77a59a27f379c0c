//! The threats component's variables.

use vigil_ingest::sensor::Liveness;

fn variable(name: &str) -> Option<String> {
    spin_sdk::variables::get(name).ok()
}

fn number(name: &str) -> Option<i64> {
    variable(name).and_then(|v| v.trim().parse::<i64>().ok())
}

/// `threat_zones`: CIDR=zone[:criticality], comma-separated (default none).
pub fn zones() -> String {
    variable("threat_zones").unwrap_or_default()
}

/// `event_retention_days` (default 90): older events are refused.
pub fn retention_ms() -> i64 {
    number("event_retention_days")
        .filter(|d| *d > 0)
        .unwrap_or(90)
        * 24
        * 3600
        * 1000
}

/// `alert_window_minutes` (default 15): events of one group within it share an alert.
pub fn alert_window_ms() -> i64 {
    number("alert_window_minutes")
        .filter(|m| *m > 0)
        .unwrap_or(15)
        * 60
        * 1000
}

/// `sensor_online_seconds` (default 120) and `sensor_offline_seconds`
/// (default 600): heartbeat ages that make a sensor stale, then offline.
pub fn liveness() -> Liveness {
    Liveness::from_seconds(
        number("sensor_online_seconds"),
        number("sensor_offline_seconds"),
    )
}

/// `webhook_origin`: the one origin playbook webhooks may be sent to (it is
/// also the component's `allowed_outbound_hosts`).
pub fn webhook_origin() -> Option<String> {
    variable("webhook_origin")
        .map(|v| v.trim().trim_end_matches('/').to_ascii_lowercase())
        .filter(|v| !v.is_empty())
}

/// `webhook_secret` (secret; empty by default): when set, webhooks carry an
/// HMAC signature (`vigil_ingest::playbook::webhook_signature`).
pub fn webhook_secret() -> Option<String> {
    variable("webhook_secret").filter(|v| !v.is_empty())
}

/// `geoip_databases`: comma-separated MaxMind-format files (paths inside the
/// component, under the `geoip/` mount); none by default.
pub fn geoip_databases() -> Vec<String> {
    variable("geoip_databases")
        .unwrap_or_default()
        .split(',')
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}
