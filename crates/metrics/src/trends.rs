//! `GET /api/metrics/trends`: a metric per bucket, zero-filled, optionally
//! one series per key of a dimension; and the risk index over time.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Serialize;
use vigil_core::ApiError;
use vigil_core::rollup::HOUR_MS;
use vigil_core::sql::{Columns, Sql, Value, int};
use vigil_core::time::rfc3339;

use crate::kpi::{self, HourScores};
use crate::read::{self, Dim};
use crate::window::{Bucket, Window, invalid};

/// What a series counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    /// Events observed.
    Events,
    /// Alerts opened.
    Alerts,
    /// First decisions made.
    Decisions,
    /// The risk index at the end of each bucket.
    Risk,
}

impl Metric {
    pub const ALLOWED: &str = "events, alerts, decisions, risk";

    pub fn parse(value: Option<&str>) -> Result<Metric, ApiError> {
        match value.unwrap_or("events") {
            "events" => Ok(Metric::Events),
            "alerts" => Ok(Metric::Alerts),
            "decisions" => Ok(Metric::Decisions),
            "risk" => Ok(Metric::Risk),
            _ => Err(invalid(
                "metric",
                format!("must be one of {}", Metric::ALLOWED),
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Metric::Events => "events",
            Metric::Alerts => "alerts",
            Metric::Decisions => "decisions",
            Metric::Risk => "risk",
        }
    }

    /// The `group_by` values this metric takes.
    pub fn groups(self) -> &'static [&'static str] {
        match self {
            Metric::Events => &["severity", "type", "sensor", "zone"],
            Metric::Alerts => &["severity"],
            Metric::Decisions => &["outcome", "priority"],
            Metric::Risk => &[],
        }
    }

    /// `group_by` checked against [`Metric::groups`]: 422 listing them.
    pub fn group_by(self, value: Option<&str>) -> Result<Option<String>, ApiError> {
        let Some(v) = value else { return Ok(None) };
        if self.groups().contains(&v) {
            return Ok(Some(v.into()));
        }
        let allowed = if self.groups().is_empty() {
            "none (leave it out)".to_string()
        } else {
            self.groups().join(", ")
        };
        Err(invalid(
            "group_by",
            format!("metric={} groups by {allowed}", self.name()),
        ))
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct Series {
    /// The group's key (`total` without `group_by`; `none` for events without a zone).
    pub key: String,
    /// One value per bucket of `buckets`.
    pub values: Vec<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct Trend {
    pub metric: String,
    pub bucket: String,
    pub group_by: Option<String>,
    pub range: String,
    /// Each bucket's start (RFC 3339); every bucket is present, empty ones are 0.
    pub buckets: Vec<String>,
    pub series: Vec<Series>,
}

/// The zero-filled series of `metric` over the window.
pub async fn trend(
    db: &impl Sql,
    w: &Window,
    metric: Metric,
    bucket: Bucket,
    group_by: Option<String>,
) -> Result<Trend, ApiError> {
    let from = match w.from {
        Some(f) => f,
        None => read::first_hour(db).await?.unwrap_or(w.to - HOUR_MS),
    };
    let axis = bucket.axis(from, w.to)?;
    let window = Window {
        label: w.label.clone(),
        from: Some(from),
        to: w.to,
        open_end: w.open_end,
    };
    let width = bucket.width();
    let mut points: BTreeMap<String, BTreeMap<i64, f64>> = BTreeMap::new();
    let mut add = |key: String, at: i64, v: f64| {
        *points.entry(key).or_default().entry(at).or_default() += v;
    };
    let series = |read: fn(&mut read::Batch, &Window, Option<i64>)| {
        let mut b = read::Batch::default();
        read(&mut b, &window, Some(width));
        b.run(db)
    };
    match metric {
        Metric::Events => {
            let dim = group_by.as_deref().map(|g| match g {
                "severity" => Dim::Severity,
                "type" => Dim::Type,
                "sensor" => Dim::Sensor,
                _ => Dim::Zone,
            });
            for (at, key, agg) in read::events_series(db, &window, width, dim).await? {
                let key = if key.is_empty() { "none".into() } else { key };
                add(key, at, agg.events as f64);
            }
        }
        Metric::Alerts => {
            for (at, severity, agg) in series(read::Batch::alerts).await?.alerts_series() {
                let key = if group_by.is_some() {
                    severity
                } else {
                    "total".into()
                };
                add(key, at, agg.opened as f64);
            }
        }
        Metric::Decisions => {
            for (at, d) in series(read::Batch::decisions).await?.decisions_series() {
                if d.decided == 0 {
                    continue;
                }
                let key = match group_by.as_deref() {
                    Some("outcome") => d.outcome,
                    Some(_) => format!("P{}", d.priority),
                    None => "total".into(),
                };
                add(key, at, d.decided as f64);
            }
        }
        Metric::Risk => {
            let ends: Vec<i64> = axis.iter().map(|b| b + width).collect();
            for (at, (risk, _, _)) in axis.iter().zip(risk_at(db, &ends).await?) {
                add("risk".into(), *at, f64::from(risk));
            }
        }
    }
    if points.is_empty() && group_by.is_none() {
        points.insert(
            if metric == Metric::Risk {
                "risk"
            } else {
                "total"
            }
            .into(),
            BTreeMap::new(),
        );
    }
    Ok(Trend {
        metric: metric.name().into(),
        bucket: bucket.name().into(),
        group_by,
        range: w.label.clone(),
        buckets: axis.iter().map(|&b| rfc3339(b)).collect(),
        series: points
            .into_iter()
            .map(|(key, at)| Series {
                values: axis
                    .iter()
                    .map(|b| at.get(b).copied().unwrap_or(0.0))
                    .collect(),
                key,
            })
            .collect(),
    })
}

/// The risk index as the rollups tell it at each of `ends` (times, oldest
/// first): the weighted mean score of the 24 hours before, and as open
/// critical alerts, those that opened critical in those hours and were not
/// resolved in them. `(risk, weighted mean score, critical)` per end.
pub async fn risk_at(db: &impl Sql, ends: &[i64]) -> Result<Vec<(u8, f64, i64)>, ApiError> {
    let (Some(&first), Some(&last)) = (ends.first(), ends.last()) else {
        return Ok(Vec::new());
    };
    let from = first - kpi::RISK_HOURS as i64 * HOUR_MS;
    // A union's columns are named by its first select.
    static HOURS: Columns = Columns::new(
        "start, sum(score_sum) AS score_sum, sum(events) AS events, 0 AS opened, 0 AS resolved",
    );
    let rows = db
        .query(
            &format!(
                "SELECT {HOURS} FROM rollup_events_by
                  WHERE span = 'hour' AND sensor_id = '' AND dim = 'severity' AND start >= ?1 AND start < ?2
                  GROUP BY start
                 UNION ALL
                 SELECT start, 0, 0, opened, resolved FROM rollup_alerts
                  WHERE span = 'hour' AND start >= ?1 AND start < ?2 AND severity = 'critical'"
            ),
            &[Value::Integer(from), Value::Integer(last)],
        )
        .await?;
    let mut hours: BTreeMap<i64, (HourScores, i64)> = BTreeMap::new();
    for r in &rows {
        let r = HOURS.row(r);
        let Some(hour) = r.int("start") else { continue };
        let h = hours.entry(hour).or_default();
        h.0.score_sum += r.int("score_sum").unwrap_or(0);
        h.0.events += r.int("events").unwrap_or(0);
        h.1 += r.int("opened").unwrap_or(0) - r.int("resolved").unwrap_or(0);
    }
    Ok(ends
        .iter()
        .map(|&end| {
            let newest_first: Vec<HourScores> = (1..=kpi::RISK_HOURS as i64)
                .map(|age| {
                    hours
                        .get(&(end - age * HOUR_MS))
                        .map(|h| h.0)
                        .unwrap_or_default()
                })
                .collect();
            let critical: i64 = hours
                .range(end - kpi::RISK_HOURS as i64 * HOUR_MS..end)
                .map(|(_, h)| h.1)
                .sum::<i64>()
                .max(0);
            let s = kpi::weighted_mean_score(&newest_first);
            (kpi::risk_index(s, critical), s, critical)
        })
        .collect())
}

/// `GET /api/metrics/risk`.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct Risk {
    /// 0–100: round(0.7·S + 30·(1 − e^(−C/3))).
    pub risk: u8,
    /// S: the mean event score of the last 24 hours, each hour weighted 0.5^(age/6).
    pub weighted_mean_score: f64,
    /// C: alerts open now whose severity is critical.
    pub open_critical_alerts: i64,
    #[schemars(extend("format" = "date-time"))]
    pub at: String,
    /// The index at the end of each hour of the window (C from the rollups).
    pub history: Vec<RiskPoint>,
}

#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct RiskPoint {
    #[schemars(extend("format" = "date-time"))]
    pub at: String,
    pub risk: u8,
}

/// The current risk index (with the live count of open critical alerts)
/// and its hourly history over the window.
pub async fn risk(db: &impl Sql, w: &Window, now: i64) -> Result<Risk, ApiError> {
    let open = db
        .query(
            "SELECT count(*) FROM alerts WHERE status IN ('open', 'acknowledged') AND severity = 'critical'",
            &[],
        )
        .await?;
    let open_critical = open.first().and_then(|r| int(r, 0)).unwrap_or(0);
    let from = match w.from {
        Some(f) => f,
        None => read::first_hour(db).await?.unwrap_or(w.to - HOUR_MS),
    };
    let axis = Bucket::Hour.axis(from, w.to)?;
    let mut ends: Vec<i64> = axis.iter().map(|b| b + HOUR_MS).collect();
    // The current hour counts as age 0 for "now".
    let now_end = vigil_core::rollup::hour_of(now) + HOUR_MS;
    ends.push(now_end);
    let mut points = risk_at(db, &ends).await?;
    let (_, s, _) = points.pop().unwrap_or_default();
    Ok(Risk {
        risk: kpi::risk_index(s, open_critical),
        weighted_mean_score: s,
        open_critical_alerts: open_critical,
        at: rfc3339(now),
        history: ends
            .iter()
            .zip(points)
            .map(|(&end, (risk, _, _))| RiskPoint {
                at: rfc3339(end),
                risk,
            })
            .collect(),
    })
}
