//! Alerts: high and critical events raise them, and a flood becomes one
//! alert with a count: the same (source, type, sensor) within the grouping
//! window updates the open alert instead of opening another.

use crate::event::{Event, Severity};

/// Default grouping window: 15 minutes.
pub const DEFAULT_WINDOW_MS: i64 = 15 * 60 * 1000;

pub fn raises_alert(severity: Severity) -> bool {
    severity >= Severity::High
}

/// What groups events into one alert.
pub fn group_key(event: &Event) -> String {
    format!(
        "{}|{:?}|{}",
        event.source_ip, event.event_type, event.sensor_id
    )
}

/// The open alert of a group, as the caller read it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenAlert {
    pub last_seen_ms: i64,
}

/// Whether an event seen at `observed_at_ms` joins `open` (within the
/// window of its last event) or opens a new alert.
pub fn joins(open: Option<OpenAlert>, observed_at_ms: i64, window_ms: i64) -> bool {
    open.is_some_and(|a| (observed_at_ms - a.last_seen_ms).abs() <= window_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_high_and_critical_raise_alerts() {
        assert!(!raises_alert(Severity::Medium));
        assert!(raises_alert(Severity::High) && raises_alert(Severity::Critical));
    }

    #[test]
    fn a_flood_within_the_window_is_one_alert() {
        let open = Some(OpenAlert {
            last_seen_ms: 1_000_000,
        });
        assert!(joins(
            open,
            1_000_000 + DEFAULT_WINDOW_MS,
            DEFAULT_WINDOW_MS
        ));
        assert!(!joins(
            open,
            1_000_001 + DEFAULT_WINDOW_MS,
            DEFAULT_WINDOW_MS
        ));
        assert!(!joins(None, 1_000_000, DEFAULT_WINDOW_MS));
        // Late events (sensor clocks, retries) within the window still join.
        assert!(joins(open, 1_000_000 - 60_000, DEFAULT_WINDOW_MS));
    }
}

/// An alert's life: open → acknowledged → resolved, or open → resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlertStatus {
    Open,
    Acknowledged,
    Resolved,
}

impl AlertStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertStatus::Open => "open",
            AlertStatus::Acknowledged => "acknowledged",
            AlertStatus::Resolved => "resolved",
        }
    }

    pub fn parse(s: &str) -> Option<AlertStatus> {
        [
            AlertStatus::Open,
            AlertStatus::Acknowledged,
            AlertStatus::Resolved,
        ]
        .into_iter()
        .find(|a| a.as_str() == s)
    }

    /// Acknowledging: only an open alert.
    pub fn acknowledge(self) -> Option<AlertStatus> {
        (self == AlertStatus::Open).then_some(AlertStatus::Acknowledged)
    }

    /// Resolving: an open or acknowledged alert.
    pub fn resolve(self) -> Option<AlertStatus> {
        (self != AlertStatus::Resolved).then_some(AlertStatus::Resolved)
    }
}

#[cfg(test)]
mod lifecycle_tests {
    use super::AlertStatus::*;

    #[test]
    fn the_alert_lifecycle() {
        assert_eq!(Open.acknowledge(), Some(Acknowledged));
        assert_eq!(Acknowledged.acknowledge(), None);
        assert_eq!(Resolved.acknowledge(), None);
        assert_eq!(Open.resolve(), Some(Resolved));
        assert_eq!(Acknowledged.resolve(), Some(Resolved));
        assert_eq!(Resolved.resolve(), None);
    }
}
