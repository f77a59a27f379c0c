//! `vigil metrics rebuild [--from --to]`: recompute the rollups of whole
//! hours from the raw rows, with the same keys and buckets as the writers
//! (`vigil_core::rollup`), then the day rows of every day those hours
//! touch from its hour rows (a day row is the sum of its hours, as the
//! writers keep it). Run it inside one write transaction: the hours are
//! emptied and refilled together, so a reader never sees them half done.
//! Events deleted by retention are gone from the raw rows, so rebuilding
//! their hours drops them from the rollups too.

use serde::Serialize;
use vigil_core::ApiError;
use vigil_core::rollup::{DAY_MS, DECIDING, HOUR_MS, UNDECIDED, bucket_sql, day_of, hour_of};
use vigil_core::sql::{Sql, Value, int};

/// What a rebuild did: the hours it covered and the hour rows it wrote per table.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Rebuilt {
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub events: i64,
    pub alerts: i64,
    pub decisions: i64,
    pub durations: i64,
}

fn list(values: &[&str]) -> String {
    values
        .iter()
        .map(|v| format!("'{v}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The hour expression of a time column (times are after 1970, so integer
/// division is the floor).
fn hour(col: &str) -> String {
    format!("({col} / {HOUR_MS}) * {HOUR_MS}")
}

/// Each rollup table, its key columns after `span, start`, and how its
/// values add up (a day row from its hours).
const TABLES: [(&str, &str, &str); 4] = [
    (
        "rollup_events_by",
        "sensor_id, dim, key",
        "sum(events), sum(score_sum), max(max_score)",
    ),
    (
        "rollup_alerts",
        "severity",
        "sum(opened), sum(acknowledged), sum(resolved), sum(ack_ms_sum)",
    ),
    (
        "rollup_decisions",
        "priority, outcome, reason, analyst",
        "sum(count), sum(decided), sum(ttd_ms_sum), sum(sla_breaches)",
    ),
    ("rollup_durations", "series, bucket", "sum(count)"),
];

/// Rebuild the hours from `from`'s hour up to the one holding `to - 1`
/// (both unbounded when `None`), and the days they touch, inside the
/// caller's write transaction.
pub async fn rebuild(
    db: &impl Sql,
    from: Option<i64>,
    to: Option<i64>,
) -> Result<Rebuilt, ApiError> {
    let lo = from.map_or(i64::MIN, hour_of);
    let hi = to.map_or(i64::MAX, |t| hour_of(t - 1) + HOUR_MS);
    let p = [Value::Integer(lo), Value::Integer(hi)];
    for (table, _, _) in TABLES {
        db.query(
            &format!("DELETE FROM {table} WHERE span = 'hour' AND start >= ?1 AND start < ?2"),
            &p,
        )
        .await?;
    }
    let in_range = |col: &str| format!("{col} >= ?1 AND {col} < ?2");
    // Each event counts once per dimension over every sensor, and once per
    // dimension of its sensor's own breakdown (vigil_core::rollup::EventSample).
    let per_dim = [
        ("''", "severity", "severity"),
        ("''", "type", "event_type"),
        ("''", "sensor", "sensor_id"),
        ("''", "zone", "zone"),
        ("''", "country", "country"),
        ("sensor_id", "severity", "severity"),
        ("sensor_id", "type", "event_type"),
    ]
    .iter()
    .map(|(scope, dim, col)| {
        format!(
            "SELECT 'hour', {scope}, '{dim}', h, {col}, sum(n), sum(s), max(m) FROM e GROUP BY 2, 4, 5"
        )
    })
    .collect::<Vec<_>>()
    .join(" UNION ALL ");
    db.query(
        &format!(
            "WITH e AS MATERIALIZED (
               SELECT {} AS h, sensor_id, event_type, severity, coalesce(dest_zone, '') AS zone,
                      coalesce(source_country, '') AS country, count(*) AS n, sum(score) AS s, max(score) AS m
                 FROM threat_events WHERE {} GROUP BY 1, 2, 3, 4, 5, 6)
             INSERT INTO rollup_events_by (span, sensor_id, dim, start, key, events, score_sum, max_score)
             {per_dim}",
            hour("observed_at"),
            in_range("observed_at")
        ),
        &p,
    )
    .await?;
    db.query(
        &format!(
            "INSERT INTO rollup_alerts (span, start, severity, opened, acknowledged, resolved, ack_ms_sum)
             SELECT 'hour', h, s, sum(o), sum(a), sum(r), sum(ms) FROM (
               SELECT {} AS h, coalesce(opened_severity, severity) AS s, 1 AS o, 0 AS a, 0 AS r, 0 AS ms
                 FROM alerts WHERE {}
               UNION ALL
               SELECT {}, coalesce(opened_severity, severity), 0, 1, 0, acknowledged_at - created_at
                 FROM alerts WHERE {}
               UNION ALL
               SELECT {}, coalesce(opened_severity, severity), 0, 0, 1, 0
                 FROM alerts WHERE {})
             GROUP BY h, s",
            hour("created_at"),
            in_range("created_at"),
            hour("acknowledged_at"),
            in_range("acknowledged_at"),
            hour("resolved_at"),
            in_range("resolved_at"),
        ),
        &p,
    )
    .await?;
    db.query(
        &format!(
            "INSERT INTO rollup_durations (span, start, series, bucket, count)
             SELECT 'hour', {}, 'tta', {}, count(*) FROM alerts WHERE {} GROUP BY 2, 3, 4",
            hour("acknowledged_at"),
            bucket_sql("acknowledged_at - created_at"),
            in_range("acknowledged_at")
        ),
        &p,
    )
    .await?;
    let first = format!("(t.from_status IN ({}))", list(&UNDECIDED));
    db.query(
        &format!(
            "INSERT INTO rollup_decisions (span, start, priority, outcome, reason, analyst, count, decided, ttd_ms_sum, sla_breaches)
             SELECT 'hour', h, priority, outcome, reason, analyst, count(*), sum(f), sum(f * ttd), sum(f * late) FROM (
               SELECT {} AS h, priority, 'submitted' AS outcome, '' AS reason, '' AS analyst, 0 AS f, 0 AS ttd, 0 AS late
                 FROM decisions WHERE {}
               UNION ALL
               SELECT {}, d.priority, CASE WHEN t.to_status = 'escalated' THEN 'escalated' ELSE t.to_status END,
                      coalesce(t.reason, ''), t.actor,
                      CASE WHEN t.to_status = 'escalated' THEN 0 ELSE {first} END,
                      t.at - d.created_at, t.at > d.sla_deadline
                 FROM decision_transitions t JOIN decisions d ON d.id = t.decision_id
                WHERE {} AND t.to_status IN ({}, 'escalated'))
             GROUP BY h, priority, outcome, reason, analyst",
            hour("created_at"),
            in_range("created_at"),
            hour("t.at"),
            in_range("t.at"),
            list(&DECIDING),
        ),
        &p,
    )
    .await?;
    db.query(
        &format!(
            "INSERT INTO rollup_durations (span, start, series, bucket, count)
             SELECT 'hour', {}, 'ttd:P' || d.priority, {}, count(*)
               FROM decision_transitions t JOIN decisions d ON d.id = t.decision_id
              WHERE {} AND t.to_status IN ({}) AND {first}
              GROUP BY 2, 3, 4",
            hour("t.at"),
            bucket_sql("t.at - d.created_at"),
            in_range("t.at"),
            list(&DECIDING),
        ),
        &p,
    )
    .await?;
    // The days those hours are in: each day row again the sum of its hours.
    days_from_hours(
        db,
        if lo == i64::MIN { lo } else { day_of(lo) },
        if hi == i64::MAX {
            hi
        } else {
            day_of(hi - 1) + DAY_MS
        },
    )
    .await?;
    let count = |table: &'static str| {
        let p = p.clone();
        async move {
            let rows = db
                .query(
                    &format!(
                        "SELECT count(*) FROM {table} WHERE span = 'hour' AND start >= ?1 AND start < ?2"
                    ),
                    &p,
                )
                .await?;
            Ok::<i64, ApiError>(rows.first().and_then(|r| int(r, 0)).unwrap_or(0))
        }
    };
    Ok(Rebuilt {
        from: from.map(|_| lo),
        to: to.map(|_| hi),
        events: count("rollup_events_by").await?,
        alerts: count("rollup_alerts").await?,
        decisions: count("rollup_decisions").await?,
        durations: count("rollup_durations").await?,
    })
}

/// Recompute the day rows of the days starting in `[from, to)` (UTC
/// midnights, or unbounded) from their hour rows, in every rollup table.
pub async fn days_from_hours(db: &impl Sql, from: i64, to: i64) -> Result<(), ApiError> {
    let days = [Value::Integer(from), Value::Integer(to)];
    for (table, keys, sums) in TABLES {
        db.query(
            &format!("DELETE FROM {table} WHERE span = 'day' AND start >= ?1 AND start < ?2"),
            &days,
        )
        .await?;
        db.query(
            &format!(
                "INSERT INTO {table} (span, start, {keys}, {columns})
                 SELECT 'day', (start / {DAY_MS}) * {DAY_MS}, {keys}, {sums} FROM {table}
                  WHERE span = 'hour' AND start >= ?1 AND start < ?2 GROUP BY 2, {keys}",
                columns = value_columns(table),
            ),
            &days,
        )
        .await?;
    }
    Ok(())
}

/// The value columns of a rollup table, in [`TABLES`]' order of sums.
fn value_columns(table: &str) -> &'static str {
    match table {
        "rollup_events_by" => "events, score_sum, max_score",
        "rollup_alerts" => "opened, acknowledged, resolved, ack_ms_sum",
        "rollup_decisions" => "count, decided, ttd_ms_sum, sla_breaches",
        _ => "count",
    }
}
