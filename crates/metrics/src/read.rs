//! The rollups summed over a window: one statement per table, grouped by
//! what the caller needs. Windows are whole hours (`hour >= from AND hour < to`).

use std::collections::BTreeMap;

use vigil_core::ApiError;
use vigil_core::rollup::BUCKET_BOUNDS_S;
use vigil_core::sql::{Sql, Value, int, text};

use crate::kpi::Histogram;
use crate::window::Window;

/// A dimension of `rollup_events`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dim {
    Severity,
    Type,
    Sensor,
    Zone,
    Country,
}

impl Dim {
    pub fn column(self) -> &'static str {
        match self {
            Dim::Severity => "severity",
            Dim::Type => "event_type",
            Dim::Sensor => "sensor_id",
            Dim::Zone => "zone",
            Dim::Country => "country",
        }
    }
}

/// Events of one key: how many, their score sum and the highest score.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EventAgg {
    pub events: i64,
    pub score_sum: i64,
    pub max_score: i64,
}

fn bounds(w: &Window) -> [Value; 2] {
    [Value::Integer(w.from_or_min()), Value::Integer(w.to)]
}

/// The window's events by each of `dims`, from one scan grouped by all of
/// them at once (each further scan of a long window costs as much as the
/// first); `''` is the key of events without a zone or a country.
pub async fn events_by(
    db: &impl Sql,
    w: &Window,
    dims: &[Dim],
) -> Result<Vec<BTreeMap<String, EventAgg>>, ApiError> {
    if dims.is_empty() {
        return Ok(Vec::new());
    }
    let columns = dims
        .iter()
        .map(|d| d.column())
        .collect::<Vec<_>>()
        .join(", ");
    let n = dims.len();
    let sql = format!(
        "SELECT {columns}, sum(events), sum(score_sum), max(max_score) FROM rollup_events
          WHERE hour >= ?1 AND hour < ?2 GROUP BY {columns}"
    );
    let mut out = vec![BTreeMap::<String, EventAgg>::new(); n];
    for r in db.query(&sql, &bounds(w)).await? {
        let agg = EventAgg {
            events: int(&r, n).unwrap_or(0),
            score_sum: int(&r, n + 1).unwrap_or(0),
            max_score: int(&r, n + 2).unwrap_or(0),
        };
        for (i, map) in out.iter_mut().enumerate() {
            let a = map.entry(text(&r, i).unwrap_or_default()).or_default();
            a.events += agg.events;
            a.score_sum += agg.score_sum;
            a.max_score = a.max_score.max(agg.max_score);
        }
    }
    Ok(out)
}

/// The window's events per bucket start (`bucket_ms` wide) and key of
/// `dim` (`None`: one series, key `total`).
pub async fn events_series(
    db: &impl Sql,
    w: &Window,
    bucket_ms: i64,
    dim: Option<Dim>,
) -> Result<Vec<(i64, String, EventAgg)>, ApiError> {
    let key = dim.map_or("'total'", Dim::column);
    let rows = db
        .query(
            &format!(
                "SELECT (hour / ?3) * ?3, {key}, sum(events), sum(score_sum), max(max_score) FROM rollup_events
                  WHERE hour >= ?1 AND hour < ?2 GROUP BY 1, 2"
            ),
            &[
                Value::Integer(w.from_or_min()),
                Value::Integer(w.to),
                Value::Integer(bucket_ms),
            ],
        )
        .await?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            Some((
                int(r, 0)?,
                text(r, 1)?,
                EventAgg {
                    events: int(r, 2).unwrap_or(0),
                    score_sum: int(r, 3).unwrap_or(0),
                    max_score: int(r, 4).unwrap_or(0),
                },
            ))
        })
        .collect())
}

/// Alerts of one severity (the one they opened with).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AlertAgg {
    pub opened: i64,
    pub acknowledged: i64,
    pub resolved: i64,
    pub ack_ms_sum: i64,
}

impl AlertAgg {
    pub fn add(&mut self, o: &AlertAgg) {
        self.opened += o.opened;
        self.acknowledged += o.acknowledged;
        self.resolved += o.resolved;
        self.ack_ms_sum += o.ack_ms_sum;
    }
}

/// The window's alert counts per bucket start and severity.
pub async fn alerts_series(
    db: &impl Sql,
    w: &Window,
    bucket_ms: i64,
) -> Result<Vec<(i64, String, AlertAgg)>, ApiError> {
    let rows = db
        .query(
            "SELECT (hour / ?3) * ?3, severity, sum(opened), sum(acknowledged), sum(resolved), sum(ack_ms_sum)
               FROM rollup_alerts WHERE hour >= ?1 AND hour < ?2 GROUP BY 1, 2",
            &[
                Value::Integer(w.from_or_min()),
                Value::Integer(w.to),
                Value::Integer(bucket_ms),
            ],
        )
        .await?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            Some((
                int(r, 0)?,
                text(r, 1)?,
                AlertAgg {
                    opened: int(r, 2).unwrap_or(0),
                    acknowledged: int(r, 3).unwrap_or(0),
                    resolved: int(r, 4).unwrap_or(0),
                    ack_ms_sum: int(r, 5).unwrap_or(0),
                },
            ))
        })
        .collect())
}

/// The window's alert counts by severity.
pub async fn alerts_by_severity(
    db: &impl Sql,
    w: &Window,
) -> Result<BTreeMap<String, AlertAgg>, ApiError> {
    let mut out: BTreeMap<String, AlertAgg> = BTreeMap::new();
    for (_, severity, agg) in alerts_series(db, w, i64::MAX / 4).await? {
        out.entry(severity).or_default().add(&agg);
    }
    Ok(out)
}

/// One group of decision rollups.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DecisionAgg {
    pub priority: i64,
    /// `submitted`, `escalated`, or the status decided into.
    pub outcome: String,
    pub reason: String,
    pub analyst: String,
    pub count: i64,
    /// Of `count`, the decisions' first decisions.
    pub decided: i64,
    pub ttd_ms_sum: i64,
    pub sla_breaches: i64,
}

/// The window's decision rollups by priority, outcome, reason and analyst
/// (optionally per bucket start).
pub async fn decisions(db: &impl Sql, w: &Window) -> Result<Vec<DecisionAgg>, ApiError> {
    Ok(decisions_series(db, w, i64::MAX / 4)
        .await?
        .into_iter()
        .map(|(_, d)| d)
        .collect())
}

pub async fn decisions_series(
    db: &impl Sql,
    w: &Window,
    bucket_ms: i64,
) -> Result<Vec<(i64, DecisionAgg)>, ApiError> {
    let rows = db
        .query(
            "SELECT (hour / ?3) * ?3, priority, outcome, reason, analyst, sum(count), sum(decided), sum(ttd_ms_sum),
                    sum(sla_breaches)
               FROM rollup_decisions WHERE hour >= ?1 AND hour < ?2 GROUP BY 1, 2, 3, 4, 5",
            &[
                Value::Integer(w.from_or_min()),
                Value::Integer(w.to),
                Value::Integer(bucket_ms),
            ],
        )
        .await?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            Some((
                int(r, 0)?,
                DecisionAgg {
                    priority: int(r, 1)?,
                    outcome: text(r, 2)?,
                    reason: text(r, 3)?,
                    analyst: text(r, 4)?,
                    count: int(r, 5).unwrap_or(0),
                    decided: int(r, 6).unwrap_or(0),
                    ttd_ms_sum: int(r, 7).unwrap_or(0),
                    sla_breaches: int(r, 8).unwrap_or(0),
                },
            ))
        })
        .collect())
}

/// The window's duration histograms by series (`tta`, `ttd:P1`…).
pub async fn histograms(
    db: &impl Sql,
    w: &Window,
) -> Result<BTreeMap<String, Histogram>, ApiError> {
    let rows = db
        .query(
            "SELECT series, bucket, sum(count) FROM rollup_durations WHERE hour >= ?1 AND hour < ?2
              GROUP BY series, bucket",
            &bounds(w),
        )
        .await?;
    let mut out: BTreeMap<String, Histogram> = BTreeMap::new();
    for r in &rows {
        let (Some(series), Some(bucket), Some(n)) = (text(r, 0), int(r, 1), int(r, 2)) else {
            continue;
        };
        let h = out
            .entry(series)
            .or_insert_with(|| vec![0; BUCKET_BOUNDS_S.len() + 1]);
        if let Some(slot) = h.get_mut(bucket as usize) {
            *slot += n;
        }
    }
    Ok(out)
}

/// Add histograms bucket by bucket.
pub fn merged<'a>(histograms: impl IntoIterator<Item = &'a Histogram>) -> Histogram {
    let mut out = vec![0; BUCKET_BOUNDS_S.len() + 1];
    for h in histograms {
        for (o, n) in out.iter_mut().zip(h) {
            *o += n;
        }
    }
    out
}

/// The first hour anything was counted in (events, alerts or decisions).
pub async fn first_hour(db: &impl Sql) -> Result<Option<i64>, ApiError> {
    let rows = db
        .query(
            "SELECT min(h) FROM (SELECT min(hour) AS h FROM rollup_events UNION ALL
                                 SELECT min(hour) FROM rollup_alerts UNION ALL
                                 SELECT min(hour) FROM rollup_decisions)",
            &[],
        )
        .await?;
    Ok(rows.first().and_then(|r| int(r, 0)))
}
