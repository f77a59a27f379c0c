//! The hourly rollups (migration 0012) as they are kept at write time: each
//! writer (ingestion, alert acknowledgement, decision transitions) adds what
//! it changed in the same transaction, with one `INSERT … ON CONFLICT DO
//! UPDATE` per rollup table per batch, never a scan. The same key and bucket
//! rules are used by `vigil metrics rebuild` (in `vigil-metrics-rules`),
//! which recomputes the tables from the raw rows: [`bucket_sql`] is
//! [`bucket_of`] in SQL.

use std::collections::BTreeMap;

use crate::ApiError;
use crate::sql::{Row, Sql, Value, insert_rows_then};

pub const HOUR_MS: i64 = 3_600_000;

/// The start of the UTC hour `ms` falls in.
pub fn hour_of(ms: i64) -> i64 {
    ms.div_euclid(HOUR_MS) * HOUR_MS
}

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

/// Add a batch's stored events to `rollup_events`: aggregated per key in
/// memory, then one upsert (a multi-row statement per ~300 keys).
pub async fn add_events(db: &impl Sql, events: &[EventSample<'_>]) -> Result<(), ApiError> {
    type Key<'a> = (i64, &'a str, &'a str, &'a str, &'a str, &'a str);
    let mut sums: BTreeMap<Key, (i64, i64, i64)> = BTreeMap::new();
    for e in events {
        let key = (
            hour_of(e.observed_at),
            e.sensor_id,
            e.event_type,
            e.severity,
            e.zone.unwrap_or(""),
            e.country.unwrap_or(""),
        );
        let s = sums.entry(key).or_insert((0, 0, 0));
        s.0 += 1;
        s.1 += e.score;
        s.2 = s.2.max(e.score);
    }
    let rows: Vec<Row> = sums
        .into_iter()
        .map(
            |((hour, sensor, kind, severity, zone, country), (n, sum, max))| {
                vec![
                    Value::Integer(hour),
                    Value::Text(sensor.into()),
                    Value::Text(kind.into()),
                    Value::Text(severity.into()),
                    Value::Text(zone.into()),
                    Value::Text(country.into()),
                    Value::Integer(n),
                    Value::Integer(sum),
                    Value::Integer(max),
                ]
            },
        )
        .collect();
    insert_rows_then(
        db,
        "INSERT INTO rollup_events (hour, sensor_id, event_type, severity, zone, country, events, score_sum, max_score) VALUES ",
        rows,
        " ON CONFLICT (hour, sensor_id, event_type, severity, zone, country) DO UPDATE SET
             events = events + excluded.events, score_sum = score_sum + excluded.score_sum,
             max_score = max(max_score, excluded.max_score)",
    )
    .await
}

/// Take one event out of `rollup_events` (an admin deleted it). Its maximum
/// stays: a maximum cannot be taken back without a scan.
pub async fn remove_event(db: &impl Sql, e: &EventSample<'_>) -> Result<(), ApiError> {
    db.query(
        "UPDATE rollup_events SET events = events - 1, score_sum = score_sum - ?7
          WHERE hour = ?1 AND sensor_id = ?2 AND event_type = ?3 AND severity = ?4 AND zone = ?5 AND country = ?6",
        &[
            Value::Integer(hour_of(e.observed_at)),
            Value::Text(e.sensor_id.into()),
            Value::Text(e.event_type.into()),
            Value::Text(e.severity.into()),
            Value::Text(e.zone.unwrap_or("").into()),
            Value::Text(e.country.unwrap_or("").into()),
            Value::Integer(e.score),
        ],
    )
    .await
    .map(drop)
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
/// durations to the `tta` histogram (one more).
pub async fn add_alert_changes(db: &impl Sql, changes: &[AlertChange<'_>]) -> Result<(), ApiError> {
    let mut sums: BTreeMap<(i64, &str), [i64; 4]> = BTreeMap::new();
    let mut tta: BTreeMap<(i64, i64), i64> = BTreeMap::new();
    for c in changes {
        match *c {
            AlertChange::Opened { at, severity } => {
                sums.entry((hour_of(at), severity)).or_default()[0] += 1;
            }
            AlertChange::Acknowledged {
                at,
                opened_at,
                severity,
            } => {
                let s = sums.entry((hour_of(at), severity)).or_default();
                s[1] += 1;
                s[3] += at - opened_at;
                *tta.entry((hour_of(at), bucket_of(at - opened_at)))
                    .or_default() += 1;
            }
            AlertChange::Resolved { at, severity } => {
                sums.entry((hour_of(at), severity)).or_default()[2] += 1;
            }
        }
    }
    let rows = sums
        .into_iter()
        .map(|((hour, severity), [o, a, r, ms])| {
            vec![
                Value::Integer(hour),
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
        "INSERT INTO rollup_alerts (hour, severity, opened, acknowledged, resolved, ack_ms_sum) VALUES ",
        rows,
        " ON CONFLICT (hour, severity) DO UPDATE SET opened = opened + excluded.opened,
             acknowledged = acknowledged + excluded.acknowledged, resolved = resolved + excluded.resolved,
             ack_ms_sum = ack_ms_sum + excluded.ack_ms_sum",
    )
    .await?;
    let rows = tta
        .into_iter()
        .map(|((hour, bucket), n)| {
            vec![
                Value::Integer(hour),
                Value::Text("tta".into()),
                Value::Integer(bucket),
                Value::Integer(n),
            ]
        })
        .collect();
    add_durations(db, rows).await
}

async fn add_durations(db: &impl Sql, rows: Vec<Row>) -> Result<(), ApiError> {
    insert_rows_then(
        db,
        "INSERT INTO rollup_durations (hour, series, bucket, count) VALUES ",
        rows,
        " ON CONFLICT (hour, series, bucket) DO UPDATE SET count = count + excluded.count",
    )
    .await
}

/// A decision was submitted at `at` with `priority` (its rank, 1–4).
pub async fn decision_submitted(db: &impl Sql, priority: i64, at: i64) -> Result<(), ApiError> {
    db.query(
        "INSERT INTO rollup_decisions (hour, priority, outcome, reason, analyst, count, decided, ttd_ms_sum, sla_breaches)
         VALUES (?1, ?2, 'submitted', '', '', 1, 0, 0, 0)
         ON CONFLICT (hour, priority, outcome, reason, analyst) DO UPDATE SET count = count + 1",
        &[Value::Integer(hour_of(at)), Value::Integer(priority)],
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
        "INSERT INTO rollup_decisions (hour, priority, outcome, reason, analyst, count, decided, ttd_ms_sum, sla_breaches)
         SELECT ?2, priority, ?3, ?4, ?5, 1, ?6, ?6 * (?7 - created_at), ?6 * (?7 > sla_deadline)
           FROM decisions WHERE id = ?1
         ON CONFLICT (hour, priority, outcome, reason, analyst) DO UPDATE SET count = count + 1,
             decided = decided + excluded.decided, ttd_ms_sum = ttd_ms_sum + excluded.ttd_ms_sum,
             sla_breaches = sla_breaches + excluded.sla_breaches",
        &[
            Value::Text(id.into()),
            Value::Integer(hour_of(at)),
            Value::Text(outcome.into()),
            Value::Text(reason.unwrap_or("").into()),
            Value::Text(analyst.into()),
            Value::Integer(first),
            Value::Integer(at),
        ],
    )
    .await?;
    if first == 1 {
        db.query(
            &format!(
                "INSERT INTO rollup_durations (hour, series, bucket, count)
                 SELECT ?2, 'ttd:P' || priority, {}, 1 FROM decisions WHERE id = ?1
                 ON CONFLICT (hour, series, bucket) DO UPDATE SET count = count + 1",
                bucket_sql("?3 - created_at")
            ),
            &[
                Value::Text(id.into()),
                Value::Integer(hour_of(at)),
                Value::Integer(at),
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
        assert!(bucket_sql("x").starts_with("CASE WHEN max(x, 0) / 1000 < 10 THEN 0"));
    }
}
