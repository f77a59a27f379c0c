//! The threats component's variables.

fn variable(name: &str) -> Option<String> {
    spin_sdk::variables::get(name).ok()
}

/// `threat_zones`: CIDR=zone[:criticality], comma-separated (default none).
pub fn zones() -> String {
    variable("threat_zones").unwrap_or_default()
}

/// `event_retention_days` (default 90): older events are refused.
pub fn retention_ms() -> i64 {
    variable("event_retention_days")
        .and_then(|v| v.trim().parse::<i64>().ok())
        .filter(|d| *d > 0)
        .unwrap_or(90)
        * 24
        * 3600
        * 1000
}

/// `alert_window_minutes` (default 15): events of one group within it share an alert.
pub fn alert_window_ms() -> i64 {
    variable("alert_window_minutes")
        .and_then(|v| v.trim().parse::<i64>().ok())
        .filter(|m| *m > 0)
        .unwrap_or(15)
        * 60
        * 1000
}
