//! Alerts: high and critical events raise them, and a flood becomes one
//! alert with a count: the same (source, type, sensor) within the grouping
//! window updates the open alert instead of opening another. What people
//! do to an alert afterwards (acknowledge, resolve) is [`lifecycle`].

mod lifecycle;

pub use lifecycle::{AlertCommand, AlertStatus, AlertTransition, transition};

use std::collections::HashMap;

use schemars::JsonSchema;
use serde::Serialize;
use vigil_core::ApiError;
use vigil_core::sql::{Columns, Sql, Value};
use vigil_core::time::rfc3339;

use crate::event::{Event, Severity};

/// An alert as stored and as the API shows it.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct Alert {
    #[schemars(extend("format" = "uuid"))]
    pub id: String,
    /// `open`, `acknowledged` or `resolved`.
    pub status: String,
    pub source_ip: String,
    pub event_type: String,
    pub sensor_id: String,
    pub severity: String,
    pub max_score: i64,
    /// How many events the alert groups.
    pub event_count: i64,
    #[schemars(extend("format" = "date-time"))]
    pub first_seen: String,
    #[schemars(extend("format" = "date-time"))]
    pub last_seen: String,
    pub version: i64,
    #[schemars(extend("format" = "date-time"))]
    pub created_at: String,
    /// When its status or its events last changed.
    #[schemars(extend("format" = "date-time"))]
    pub updated_at: String,
}

pub static COLUMNS: Columns = Columns::new(
    "id, status, source_ip, event_type, sensor_id, severity, max_score, event_count, first_seen, last_seen, version, \
    created_at, updated_at",
);

/// A row of [`COLUMNS`].
pub fn from_row(row: &[Value]) -> Option<Alert> {
    let r = COLUMNS.row(row);
    Some(Alert {
        id: r.text("id")?,
        status: r.text("status")?,
        source_ip: r.text("source_ip")?,
        event_type: r.text("event_type")?,
        sensor_id: r.text("sensor_id")?,
        severity: r.text("severity")?,
        max_score: r.int("max_score")?,
        event_count: r.int("event_count")?,
        first_seen: rfc3339(r.int("first_seen")?),
        last_seen: rfc3339(r.int("last_seen")?),
        version: r.int("version")?,
        created_at: rfc3339(r.int("created_at")?),
        updated_at: rfc3339(r.int("updated_at")?),
    })
}

/// Alert `id` (404 when there is none).
pub async fn load(db: &impl Sql, id: &str) -> Result<Alert, ApiError> {
    let rows = db
        .query(
            &format!("SELECT {COLUMNS} FROM alerts WHERE id = ?1"),
            &[Value::Text(id.into())],
        )
        .await?;
    rows.first()
        .and_then(|r| from_row(r))
        .ok_or_else(ApiError::not_found)
}

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

/// An unresolved alert of a group as stored when a batch begins.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unresolved {
    pub id: String,
    pub last_seen_ms: i64,
}

/// An alert-raising event of a batch: the event and its score.
pub struct Raising<'a> {
    pub event: &'a Event,
    pub score: u8,
    pub severity: Severity,
}

/// What a batch does to one alert: opens it, or adds events to one that
/// was unresolved. The figures are over this batch's events only.
#[derive(Clone, Debug, PartialEq)]
pub struct Touched {
    pub id: String,
    /// Opened by this batch; otherwise a stored, unresolved alert it joined.
    pub opened: bool,
    pub group_key: String,
    /// The batch's first event in the alert (its source, type and sensor).
    pub first_event: usize,
    pub event_count: i64,
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
    pub max_score: u8,
    /// The severity of `max_score`.
    pub severity: Severity,
}

/// A batch's alerts: for each raising event (in order), the index of its
/// alert in `touched`.
#[derive(Debug, Default, PartialEq)]
pub struct Grouping {
    pub alert_of: Vec<usize>,
    pub touched: Vec<Touched>,
}

/// Group a batch's raising events (in batch order) into alerts, as if each
/// were stored one after the other: an event joins its group's unresolved
/// alert with the latest last event when it falls within `window_ms` of it
/// (`unresolved` holds the stored one of each group, if any), else it
/// opens a new alert with an id from `new_id`. So a whole batch needs one
/// read and a few writes, whatever its size.
pub fn group(
    raising: &[Raising],
    unresolved: &HashMap<String, Unresolved>,
    window_ms: i64,
    mut new_id: impl FnMut() -> String,
) -> Grouping {
    let mut grouping = Grouping::default();
    // Per group: the alerts it may join (index into `touched`, or `None`
    // for the stored one not touched yet) with their last event.
    let mut candidates: HashMap<String, Vec<(Option<usize>, i64)>> = HashMap::new();
    for (i, r) in raising.iter().enumerate() {
        let key = group_key(r.event);
        let at = r.event.observed_at_ms;
        let list = candidates.entry(key.clone()).or_insert_with(|| {
            unresolved
                .get(&key)
                .map(|u| vec![(None, u.last_seen_ms)])
                .unwrap_or_default()
        });
        let latest = list
            .iter_mut()
            .max_by_key(|candidate| candidate.1)
            .filter(|candidate| {
                joins(
                    Some(OpenAlert {
                        last_seen_ms: candidate.1,
                    }),
                    at,
                    window_ms,
                )
            });
        let index = match latest {
            Some((Some(index), last)) => {
                *last = (*last).max(at);
                *index
            }
            Some((slot @ None, last)) => {
                *slot = Some(grouping.touched.len());
                *last = (*last).max(at);
                grouping.touched.push(Touched {
                    id: unresolved[&key].id.clone(),
                    opened: false,
                    ..first_touch(key, i, r)
                });
                grouping.touched.len() - 1
            }
            None => {
                list.push((Some(grouping.touched.len()), at));
                grouping.touched.push(Touched {
                    id: new_id(),
                    opened: true,
                    ..first_touch(key, i, r)
                });
                grouping.touched.len() - 1
            }
        };
        let alert = &mut grouping.touched[index];
        alert.event_count += 1;
        alert.first_seen_ms = alert.first_seen_ms.min(at);
        alert.last_seen_ms = alert.last_seen_ms.max(at);
        if r.score > alert.max_score {
            alert.max_score = r.score;
            alert.severity = r.severity;
        }
        grouping.alert_of.push(index);
    }
    grouping
}

/// An alert as its first event of the batch finds it, before counting that
/// event (which `group` then does like any other).
fn first_touch(group_key: String, index: usize, r: &Raising) -> Touched {
    Touched {
        id: String::new(),
        opened: true,
        group_key,
        first_event: index,
        event_count: 0,
        first_seen_ms: r.event.observed_at_ms,
        last_seen_ms: r.event.observed_at_ms,
        max_score: r.score,
        severity: r.severity,
    }
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

    fn event(source: &str, at: i64) -> Event {
        Event {
            event_id: format!("e{at}"),
            sensor_id: "s1".into(),
            observed_at_ms: at,
            event_type: crate::event::EventType::BruteForce,
            source_ip: source.parse().unwrap(),
            source_port: None,
            dest_ip: None,
            dest_port: None,
            protocol: None,
            severity_hint: None,
            confidence: 1.0,
            payload: Default::default(),
            tags: vec![],
            ingested_by: None,
        }
    }

    fn raising<'a>(events: &'a [Event], scores: &[u8]) -> Vec<Raising<'a>> {
        events
            .iter()
            .zip(scores)
            .map(|(event, &score)| Raising {
                event,
                score,
                severity: crate::score::severity_of(score),
            })
            .collect()
    }

    fn ids() -> impl FnMut() -> String {
        let mut n = 0;
        move || {
            n += 1;
            format!("new-{n}")
        }
    }

    const MIN: i64 = 60_000;

    #[test]
    fn a_flood_in_one_batch_is_one_alert_with_its_count_and_highest_score() {
        let events: Vec<Event> = (0..5).map(|i| event("203.0.113.9", i * MIN)).collect();
        let g = group(
            &raising(&events, &[65, 70, 92, 61, 80]),
            &HashMap::new(),
            DEFAULT_WINDOW_MS,
            ids(),
        );
        assert_eq!(g.alert_of, vec![0; 5]);
        assert_eq!(g.touched.len(), 1);
        let a = &g.touched[0];
        assert!(a.opened);
        assert_eq!((a.id.as_str(), a.event_count), ("new-1", 5));
        assert_eq!((a.first_seen_ms, a.last_seen_ms), (0, 4 * MIN));
        assert_eq!((a.max_score, a.severity), (92, Severity::Critical));
        assert_eq!(a.first_event, 0);
    }

    #[test]
    fn groups_and_windows_split_alerts() {
        let events = vec![
            event("203.0.113.9", 0),
            event("198.51.100.7", MIN),
            // Beyond the window of the first alert's last event: a new alert.
            event("203.0.113.9", DEFAULT_WINDOW_MS + 2 * MIN),
            // Within the window of the newer alert of the group: joins it.
            event("203.0.113.9", DEFAULT_WINDOW_MS + 3 * MIN),
        ];
        let g = group(
            &raising(&events, &[70, 70, 70, 70]),
            &HashMap::new(),
            DEFAULT_WINDOW_MS,
            ids(),
        );
        assert_eq!(g.alert_of, vec![0, 1, 2, 2]);
        let opened: Vec<_> = g
            .touched
            .iter()
            .map(|a| (a.id.as_str(), a.event_count))
            .collect();
        assert_eq!(opened, vec![("new-1", 1), ("new-2", 1), ("new-3", 2)]);
        assert_eq!(g.touched[2].first_event, 2);
    }

    #[test]
    fn a_stored_unresolved_alert_is_joined_within_its_window_only() {
        let near = event("203.0.113.9", 10 * MIN);
        let key = group_key(&near);
        let stored = HashMap::from([(
            key,
            Unresolved {
                id: "stored".into(),
                last_seen_ms: 0,
            },
        )]);
        let events = vec![
            near,
            // Within the window of the stored alert's last event as this batch moved it.
            event("203.0.113.9", 24 * MIN),
            // Another group: opens its own.
            event("198.51.100.7", 24 * MIN),
        ];
        let g = group(
            &raising(&events, &[75, 60, 90]),
            &stored,
            DEFAULT_WINDOW_MS,
            ids(),
        );
        assert_eq!(g.alert_of, vec![0, 0, 1]);
        let joined = &g.touched[0];
        assert!(!joined.opened);
        assert_eq!((joined.id.as_str(), joined.event_count), ("stored", 2));
        assert_eq!(
            (joined.first_seen_ms, joined.last_seen_ms),
            (10 * MIN, 24 * MIN)
        );
        assert_eq!((joined.max_score, joined.severity), (75, Severity::High));
        assert!(g.touched[1].opened);

        // Too late for the stored alert: a new one, and the stored one is untouched.
        let late = vec![event("203.0.113.9", DEFAULT_WINDOW_MS + MIN)];
        let g = group(&raising(&late, &[70]), &stored, DEFAULT_WINDOW_MS, ids());
        assert_eq!(g.touched.len(), 1);
        assert!(g.touched[0].opened);
    }
}
