//! The metrics rollups (migrations 0012 and 0015) as they are kept at write
//! time: each writer (ingestion, alert acknowledgement, decision
//! transitions) adds what it changed in the same transaction, with one
//! `INSERT … ON CONFLICT DO UPDATE` per rollup table per batch, never a
//! scan. Every rollup row has a span: each change is added to its hour's
//! row and, in the same statement, to its UTC day's, so a day row is always
//! the sum of its hours and a long window reads days (see
//! `vigil_metrics_rules::read`). Events are counted per dimension
//! ([`EVENT_DIMS`], and per sensor by [`SENSOR_DIMS`]), not per
//! combination of them. The same key and bucket rules are used by `vigil
//! metrics rebuild` (in `vigil-metrics-rules`), which recomputes the tables
//! from the raw rows: [`bucket_sql`] is [`bucket_of`] in SQL.

use std::collections::BTreeMap;

use crate::ApiError;
use crate::sql::{Sql, Value, insert_rows_then};

pub const HOUR_MS: i64 = 3_600_000;
pub const DAY_MS: i64 = 24 * HOUR_MS;

/// The start of the UTC hour `ms` falls in.
pub fn hour_of(ms: i64) -> i64 {
    ms.div_euclid(HOUR_MS) * HOUR_MS
}

/// The start of the UTC day `ms` falls in.
pub fn day_of(ms: i64) -> i64 {
    ms.div_euclid(DAY_MS) * DAY_MS
}

/// A span's name (the `span` column) and how it finds the start of the span a time falls in.
pub type Span = (&'static str, fn(i64) -> i64);

/// The spans every rollup row is kept at.
pub const SPANS: [Span; 2] = [("hour", hour_of), ("day", day_of)];

/// The dimensions events are counted by over every sensor (`sensor_id`
/// `''`): the `dim` column's values.
pub const EVENT_DIMS: [&str; 5] = ["severity", "type", "sensor", "zone", "country"];
/// The dimensions each sensor's own events are counted by (`sensor_id` the sensor).
pub const SENSOR_DIMS: [&str; 2] = ["severity", "type"];

/// Upper bounds (exclusive, in seconds) of the duration histogram's buckets;
/// bucket `i` holds durations in `[BOUNDS[i-1], BOUNDS[i])`, and the last
/// bucket, `BUCKET_BOUNDS_S.len()`, everything from a week on.
pub const BUCKET_BOUNDS_S: [i64; 16] = [
    10, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14_400, 28_800, 43_200, 86_400, 172_800,
    604_800,
];

/// The histogram bucket of a duration in milliseconds (negative counts as 0).
pub fn bucket_of(ms: i64) -> i64 {
    let s = ms.max(0) / 1000;
    BUCKET_BOUNDS_S
        .iter()
        .position(|&b| s < b)
        .unwrap_or(BUCKET_BOUNDS_S.len()) as i64
}

/// [`bucket_of`] as an SQL expression over `ms` (an SQL expression).
pub fn bucket_sql(ms: &str) -> String {
    let mut sql = String::from("CASE");
    for (i, b) in BUCKET_BOUNDS_S.iter().enumerate() {
        sql.push_str(&format!(" WHEN max({ms}, 0) / 1000 < {b} THEN {i}"));
    }
    sql.push_str(&format!(" ELSE {} END", BUCKET_BOUNDS_S.len()));
    sql
}

/// The statuses a decision is decided into (its first decision, or a second approval).
pub const DECIDING: [&str; 4] = [
    "approved",
    "awaiting_second_approval",
    "rejected",
    "dismissed",
];
/// The statuses from which a deciding transition is the decision's first decision.
pub const UNDECIDED: [&str; 3] = ["pending", "claimed", "escalated"];

/// One stored event, as the events rollup counts it.
pub struct EventSample<'a> {
    pub observed_at: i64,
    pub sensor_id: &'a str,
    pub event_type: &'a str,
    pub severity: &'a str,
    pub zone: Option<&'a str>,
    pub country: Option<&'a str>,
    pub score: i64,
}

impl EventSample<'_> {
    /// The `(sensor_id, dim, key)` rows this event counts in ('' for none).
    fn keys(&self) -> [(&str, &str, &str); 7] {
        [
            ("", "severity", self.severity),
            ("", "type", self.event_type),
            ("", "sensor", self.sensor_id),
            ("", "zone", self.zone.unwrap_or("")),
            ("", "country", self.country.unwrap_or("")),
            (self.sensor_id, "severity", self.severity),
            (self.sensor_id, "type", self.event_type),
        ]
    }
}

/// `rollup_events_by` rows by (span, start, sensor_id, dim, key): (events, score sum, highest score).
type EventSums<'a> = BTreeMap<(&'a str, i64, &'a str, &'a str, &'a str), (i64, i64, i64)>;

/// Add a batch's stored events to `rollup_events_by`: aggregated per row
/// in memory (each event counts in 7 rows of its hour and 7 of its day),
/// then one upsert whatever the batch's size (the rows go as one JSON
/// parameter, so no statement grows past SQLite's parameter limits).
pub async fn add_events(db: &impl Sql, events: &[EventSample<'_>]) -> Result<(), ApiError> {
    let mut sums: EventSums = BTreeMap::new();
    for e in events {
        for (span, start_of) in SPANS {
            let start = start_of(e.observed_at);
            for (sensor, dim, key) in e.keys() {
                let s = sums
                    .entry((span, start, sensor, dim, key))
                    .or_insert((0, 0, 0));
                s.0 += 1;
                s.1 += e.score;
                s.2 = s.2.max(e.score);
            }
        }
    }
    upsert_events(db, sums).await
}

async fn upsert_events(db: &impl Sql, sums: EventSums<'_>) -> Result<(), ApiError> {
    if sums.is_empty() {
        return Ok(());
    }
    let rows: Vec<serde_json::Value> = sums
        .into_iter()
        .map(|((span, start, sensor, dim, key), (n, sum, max))| {
            serde_json::json!([span, sensor, dim, start, key, n, sum, max])
        })
        .collect();
    db.query(
        "INSERT INTO rollup_events_by (span, sensor_id, dim, start, key, events, score_sum, max_score)
         SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, value ->> 6, value ->> 7
           FROM json_each(?1) WHERE true
         ON CONFLICT (span, sensor_id, dim, start, key) DO UPDATE SET
             events = events + excluded.events, score_sum = score_sum + excluded.score_sum,
             max_score = max(max_score, excluded.max_score)",
        &[Value::Text(
            serde_json::to_string(&rows).expect("serializes"),
        )],
    )
    .await
    .map(drop)
}

/// Take one event out of `rollup_events_by` (an admin deleted it): its
/// rows lose one event and its score. Their maximum stays: a maximum cannot
/// be taken back without a scan.
pub async fn remove_event(db: &impl Sql, e: &EventSample<'_>) -> Result<(), ApiError> {
    let mut sums = BTreeMap::new();
    for (span, start_of) in SPANS {
        for (sensor, dim, key) in e.keys() {
            sums.insert(
                (span, start_of(e.observed_at), sensor, dim, key),
                (-1, -e.score, 0),
            );
        }
    }
    upsert_events(db, sums).await
}

/// What happened to alerts, for `rollup_alerts` (and the `tta` histogram).
pub enum AlertChange<'a> {
    /// Opened at `at` with `severity`.
    Opened { at: i64, severity: &'a str },
    /// Acknowledged at `at`; it had opened at `opened_at` with `severity`.
    Acknowledged {
        at: i64,
        opened_at: i64,
        severity: &'a str,
    },
    /// Resolved at `at`; it had opened with `severity`.
    Resolved { at: i64, severity: &'a str },
}

/// Add alert changes to `rollup_alerts` (one upsert), and acknowledgements'
/// durations to the `tta` histogram (one more), at both spans.
pub async fn add_alert_changes(db: &impl Sql, changes: &[AlertChange<'_>]) -> Result<(), ApiError> {
    let mut sums: BTreeMap<(&str, i64, &str), [i64; 4]> = BTreeMap::new();
    let mut tta: BTreeMap<(&str, i64, i64), i64> = BTreeMap::new();
    for c in changes {
        for (span, start_of) in SPANS {
            match *c {
                AlertChange::Opened { at, severity } => {
                    sums.entry((span, start_of(at), severity)).or_default()[0] += 1;
                }
                AlertChange::Acknowledged {
                    at,
                    opened_at,
                    severity,
                } => {
                    let s = sums.entry((span, start_of(at), severity)).or_default();
                    s[1] += 1;
                    s[3] += at - opened_at;
                    *tta.entry((span, start_of(at), bucket_of(at - opened_at)))
                        .or_default() += 1;
                }
                AlertChange::Resolved { at, severity } => {
                    sums.entry((span, start_of(at), severity)).or_default()[2] += 1;
                }
            }
        }
    }
    let rows = sums
        .into_iter()
        .map(|((span, start, severity), [o, a, r, ms])| {
            vec![
                Value::Text(span.into()),
                Value::Integer(start),
                Value::Text(severity.into()),
                Value::Integer(o),
                Value::Integer(a),
                Value::Integer(r),
                Value::Integer(ms),
            ]
        })
        .collect();
    insert_rows_then(
        db,
        "INSERT INTO rollup_alerts (span, start, severity, opened, acknowledged, resolved, ack_ms_sum) VALUES ",
        rows,
        " ON CONFLICT (span, start, severity) DO UPDATE SET opened = opened + excluded.opened,
             acknowledged = acknowledged + excluded.acknowledged, resolved = resolved + excluded.resolved,
             ack_ms_sum = ack_ms_sum + excluded.ack_ms_sum",
    )
    .await?;
    let rows = tta
        .into_iter()
        .map(|((span, start, bucket), n)| {
            vec![
                Value::Text(span.into()),
                Value::Integer(start),
                Value::Text("tta".into()),
                Value::Integer(bucket),
                Value::Integer(n),
            ]
        })
        .collect();
    insert_rows_then(
        db,
        "INSERT INTO rollup_durations (span, start, series, bucket, count) VALUES ",
        rows,
        " ON CONFLICT (span, start, series, bucket) DO UPDATE SET count = count + excluded.count",
    )
    .await
}

/// The two spans as a table `s(span, start)` for an `INSERT … SELECT`,
/// with the hour's start in parameter `?{hour}` and the day's in `?{day}`.
fn spans_sql(hour: usize, day: usize) -> String {
    format!("(SELECT 'hour' AS span, ?{hour} AS start UNION ALL SELECT 'day', ?{day}) AS s")
}

/// A decision was submitted at `at` with `priority` (its rank, 1–4).
pub async fn decision_submitted(db: &impl Sql, priority: i64, at: i64) -> Result<(), ApiError> {
    db.query(
        "INSERT INTO rollup_decisions (span, start, priority, outcome, reason, analyst, count, decided, ttd_ms_sum, sla_breaches)
         VALUES ('hour', ?1, ?3, 'submitted', '', '', 1, 0, 0, 0), ('day', ?2, ?3, 'submitted', '', '', 1, 0, 0, 0)
         ON CONFLICT (span, start, priority, outcome, reason, analyst) DO UPDATE SET count = count + 1",
        &[
            Value::Integer(hour_of(at)),
            Value::Integer(day_of(at)),
            Value::Integer(priority),
        ],
    )
    .await
    .map(drop)
}

/// Decision `id` went from `from` to `to` at `at` by `analyst` (with a
/// dismiss `reason`): a deciding transition or an escalation is counted;
/// a first decision also adds its time to decision (from the decision's
/// `created_at`), whether it missed its deadline, and its histogram bucket.
/// Read from the decision's row by the statements themselves, so nothing
/// more is loaded.
pub async fn decision_transition(
    db: &impl Sql,
    id: &str,
    from: &str,
    to: &str,
    analyst: &str,
    reason: Option<&str>,
    at: i64,
) -> Result<(), ApiError> {
    let (outcome, first) = if DECIDING.contains(&to) {
        (to, UNDECIDED.contains(&from))
    } else if to == "escalated" {
        ("escalated", false)
    } else {
        return Ok(());
    };
    let first = i64::from(first);
    db.query(
        &format!(
            "INSERT INTO rollup_decisions (span, start, priority, outcome, reason, analyst, count, decided, ttd_ms_sum, sla_breaches)
             SELECT s.span, s.start, d.priority, ?3, ?4, ?5, 1, ?6, ?6 * (?7 - d.created_at), ?6 * (?7 > d.sla_deadline)
               FROM decisions AS d, {} WHERE d.id = ?1
             ON CONFLICT (span, start, priority, outcome, reason, analyst) DO UPDATE SET count = count + 1,
                 decided = decided + excluded.decided, ttd_ms_sum = ttd_ms_sum + excluded.ttd_ms_sum,
                 sla_breaches = sla_breaches + excluded.sla_breaches",
            spans_sql(2, 8)
        ),
        &[
            Value::Text(id.into()),
            Value::Integer(hour_of(at)),
            Value::Text(outcome.into()),
            Value::Text(reason.unwrap_or("").into()),
            Value::Text(analyst.into()),
            Value::Integer(first),
            Value::Integer(at),
            Value::Integer(day_of(at)),
        ],
    )
    .await?;
    if first == 1 {
        db.query(
            &format!(
                "INSERT INTO rollup_durations (span, start, series, bucket, count)
                 SELECT s.span, s.start, 'ttd:P' || d.priority, {}, 1 FROM decisions AS d, {} WHERE d.id = ?1
                 ON CONFLICT (span, start, series, bucket) DO UPDATE SET count = count + 1",
                bucket_sql("?3 - d.created_at"),
                spans_sql(2, 4)
            ),
            &[
                Value::Text(id.into()),
                Value::Integer(hour_of(at)),
                Value::Integer(at),
                Value::Integer(day_of(at)),
            ],
        )
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hours_and_buckets() {
        assert_eq!(hour_of(HOUR_MS * 5 + 1), HOUR_MS * 5);
        assert_eq!(hour_of(-1), -HOUR_MS);
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(9_999), 0);
        assert_eq!(bucket_of(10_000), 1);
        assert_eq!(bucket_of(-5), 0);
        assert_eq!(bucket_of(3_600_000), 9);
        assert_eq!(bucket_of(i64::MAX / 2), BUCKET_BOUNDS_S.len() as i64);
        assert_eq!(day_of(DAY_MS * 3 + HOUR_MS * 23), DAY_MS * 3);
        assert_eq!(day_of(-1), -DAY_MS);
        assert!(bucket_sql("x").starts_with("CASE WHEN max(x, 0) / 1000 < 10 THEN 0"));
    }
}
