//! `vigil metrics rebuild [--from --to]`: recompute the rollups of whole
//! hours from the raw rows, with the same keys and buckets as the writers
//! (`vigil_core::rollup`). Run it inside one write transaction: the hours
//! are emptied and refilled together, so a reader never sees them half
//! done. Events deleted by retention are gone from the raw rows, so
//! rebuilding their hours drops them from the rollups too.

use serde::Serialize;
use vigil_core::ApiError;
use vigil_core::rollup::{DECIDING, HOUR_MS, UNDECIDED, bucket_sql, hour_of};
use vigil_core::sql::{Sql, Value, int};

/// What a rebuild did: the hours it covered and the rows it wrote per table.
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

/// Rebuild the hours from `from`'s hour up to the one holding `to - 1`
/// (both unbounded when `None`), inside the caller's write transaction.
pub async fn rebuild(
    db: &impl Sql,
    from: Option<i64>,
    to: Option<i64>,
) -> Result<Rebuilt, ApiError> {
    let lo = from.map_or(i64::MIN, hour_of);
    let hi = to.map_or(i64::MAX, |t| hour_of(t - 1) + HOUR_MS);
    let p = [Value::Integer(lo), Value::Integer(hi)];
    for table in [
        "rollup_events",
        "rollup_alerts",
        "rollup_decisions",
        "rollup_durations",
    ] {
        db.query(
            &format!("DELETE FROM {table} WHERE hour >= ?1 AND hour < ?2"),
            &p,
        )
        .await?;
    }
    let in_range = |col: &str| format!("{col} >= ?1 AND {col} < ?2");
    db.query(
        &format!(
            "INSERT INTO rollup_events (hour, sensor_id, event_type, severity, zone, country, events, score_sum, max_score)
             SELECT {}, sensor_id, event_type, severity, coalesce(dest_zone, ''), coalesce(source_country, ''),
                    count(*), sum(score), max(score)
               FROM threat_events WHERE {} GROUP BY 1, 2, 3, 4, 5, 6",
            hour("observed_at"),
            in_range("observed_at")
        ),
        &p,
    )
    .await?;
    db.query(
        &format!(
            "INSERT INTO rollup_alerts (hour, severity, opened, acknowledged, resolved, ack_ms_sum)
             SELECT h, s, sum(o), sum(a), sum(r), sum(ms) FROM (
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
            "INSERT INTO rollup_durations (hour, series, bucket, count)
             SELECT {}, 'tta', {}, count(*) FROM alerts WHERE {} GROUP BY 1, 2, 3",
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
            "INSERT INTO rollup_decisions (hour, priority, outcome, reason, analyst, count, decided, ttd_ms_sum, sla_breaches)
             SELECT h, priority, outcome, reason, analyst, count(*), sum(f), sum(f * ttd), sum(f * late) FROM (
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
            "INSERT INTO rollup_durations (hour, series, bucket, count)
             SELECT {}, 'ttd:P' || d.priority, {}, count(*)
               FROM decision_transitions t JOIN decisions d ON d.id = t.decision_id
              WHERE {} AND t.to_status IN ({}) AND {first}
              GROUP BY 1, 2, 3",
            hour("t.at"),
            bucket_sql("t.at - d.created_at"),
            in_range("t.at"),
            list(&DECIDING),
        ),
        &p,
    )
    .await?;
    let count = |table: &'static str| {
        let p = p.clone();
        async move {
            let rows = db
                .query(
                    &format!("SELECT count(*) FROM {table} WHERE hour >= ?1 AND hour < ?2"),
                    &p,
                )
                .await?;
            Ok::<i64, ApiError>(rows.first().and_then(|r| int(r, 0)).unwrap_or(0))
        }
    };
    Ok(Rebuilt {
        from: from.map(|_| lo),
        to: to.map(|_| hi),
        events: count("rollup_events").await?,
        alerts: count("rollup_alerts").await?,
        decisions: count("rollup_decisions").await?,
        durations: count("rollup_durations").await?,
    })
}
