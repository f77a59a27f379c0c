//! The weekly report: a week runs from Monday 00:00 to the next Monday
//! 00:00, UTC, and is named by its last day, a Sunday (`week_ending`).
//! `GET /api/metrics/weekly` answers the stored report of a week when the
//! relay's `weekly_report` job has persisted it, else computes it.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use vigil_core::ApiError;
use vigil_core::sql::{Sql, Value, text};
use vigil_core::time::rfc3339;

use crate::read::{self, Dim};
use crate::summary::{self, Ranked, TOP};
use crate::window::{DAY_MS, Window, invalid, parse_date};

/// Monday (0) … Sunday (6) of the UTC day starting at `midnight`.
pub fn weekday(midnight: i64) -> i64 {
    // 1970-01-01 was a Thursday.
    (midnight.div_euclid(DAY_MS) + 3).rem_euclid(7)
}

/// The `week_ending` parameter (a Sunday, `YYYY-MM-DD`), or by default the
/// last week that has ended by `now`: its Sunday's midnight.
pub fn week_ending(value: Option<&str>, now: i64) -> Result<i64, ApiError> {
    match value {
        Some(v) => {
            let day = parse_date(v)
                .ok_or_else(|| invalid("week_ending", "must be a date, YYYY-MM-DD"))?;
            if weekday(day) != 6 {
                return Err(invalid(
                    "week_ending",
                    "must be a Sunday: weeks run Monday to Sunday (UTC)",
                ));
            }
            Ok(day)
        }
        None => Ok(last_ended_week(now)),
    }
}

/// The Sunday midnight of the last week that ended by `now`.
pub fn last_ended_week(now: i64) -> i64 {
    let today = now.div_euclid(DAY_MS) * DAY_MS;
    // Back to this week's Monday, then to the Sunday before it.
    today - weekday(today) * DAY_MS - DAY_MS
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct WeeklyRanked {
    pub key: String,
    pub events: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct WeeklyReport {
    /// The Sunday the week ends on (UTC), `YYYY-MM-DD`.
    pub week_ending: String,
    #[schemars(extend("format" = "date-time"))]
    pub from: String,
    #[schemars(extend("format" = "date-time"))]
    pub to: String,
    pub events: i64,
    /// Alerts opened in the week.
    pub incidents: i64,
    pub incidents_by_severity: BTreeMap<String, i64>,
    /// First decisions made in the week.
    pub decided: i64,
    pub dismissed: i64,
    pub dismissed_rate: f64,
    pub mean_time_to_decision_seconds: Option<f64>,
    pub sla_breaches: i64,
    pub top_sensors: Vec<WeeklyRanked>,
    pub top_zones: Vec<WeeklyRanked>,
    pub dismiss_reasons: BTreeMap<String, i64>,
    #[schemars(extend("format" = "date-time"))]
    pub generated_at: String,
    /// Whether this is the report the weekly job stored (else computed now).
    pub stored: bool,
}

fn ranked(v: Vec<Ranked>) -> Vec<WeeklyRanked> {
    v.into_iter()
        .map(|r| WeeklyRanked {
            key: r.key,
            events: r.events,
        })
        .collect()
}

/// Compute the report of the week ending on the Sunday at `sunday`.
pub async fn compute(db: &impl Sql, sunday: i64, now: i64) -> Result<WeeklyReport, ApiError> {
    let from = sunday - 6 * DAY_MS;
    let w = Window {
        label: "week".into(),
        from: Some(from),
        to: sunday + DAY_MS,
        open_end: false,
    };
    const DIMS: [Dim; 3] = [Dim::Sensor, Dim::Zone, Dim::Severity];
    let mut b = read::Batch::default();
    b.events(&w, "", &DIMS);
    b.alerts(&w, None);
    b.decisions(&w, None);
    b.durations(&w);
    let read = b.run(db).await?;
    let [by_sensor, by_zone, by_severity] = read
        .events_by(&DIMS)
        .try_into()
        .map_err(|_| ApiError::internal())?;
    let alerts = read.alerts_by_severity();
    let d = summary::decision_figures(&read.decisions(), &read.histograms());
    Ok(WeeklyReport {
        week_ending: rfc3339(sunday)[..10].to_string(),
        from: rfc3339(from),
        to: rfc3339(w.to),
        events: by_severity.values().map(|a| a.events).sum(),
        incidents: alerts.values().map(|a| a.opened).sum(),
        incidents_by_severity: alerts
            .iter()
            .filter(|(_, a)| a.opened > 0)
            .map(|(k, a)| (k.clone(), a.opened))
            .collect(),
        decided: d.decided,
        dismissed: d.dismissed,
        dismissed_rate: crate::kpi::rate(d.dismissed, d.decided),
        mean_time_to_decision_seconds: d.time_to_decision.as_ref().map(|t| t.mean_seconds),
        sla_breaches: d.sla_breaches,
        top_sensors: ranked(summary::top(&by_sensor, TOP)),
        top_zones: ranked(summary::top(&by_zone, TOP)),
        dismiss_reasons: d.dismissed_by_reason,
        generated_at: rfc3339(now),
        stored: false,
    })
}

/// The stored report of a week, if the job has written it.
pub async fn stored(db: &impl Sql, sunday: i64) -> Result<Option<WeeklyReport>, ApiError> {
    let rows = db
        .query(
            "SELECT report FROM weekly_reports WHERE week_ending = ?1",
            &[Value::Text(rfc3339(sunday)[..10].to_string())],
        )
        .await?;
    Ok(rows
        .first()
        .and_then(|r| text(r, 0))
        .and_then(|t| serde_json::from_str::<WeeklyReport>(&t).ok())
        .map(|mut r| {
            r.stored = true;
            r
        }))
}

/// The stored report, or one computed now.
pub async fn report(db: &impl Sql, sunday: i64, now: i64) -> Result<WeeklyReport, ApiError> {
    match stored(db, sunday).await? {
        Some(r) => Ok(r),
        None => compute(db, sunday, now).await,
    }
}

/// The weekly job's body, inside the caller's write transaction: store the
/// report of the last week that ended by `now`, once (a week already stored
/// is left as it is). The week stored, and whether this run stored it.
pub async fn persist_last_week(db: &impl Sql, now: i64) -> Result<(String, bool), ApiError> {
    let sunday = last_ended_week(now);
    let week = rfc3339(sunday)[..10].to_string();
    if stored(db, sunday).await?.is_some() {
        return Ok((week, false));
    }
    let mut report = compute(db, sunday, now).await?;
    report.stored = true;
    db.query(
        "INSERT INTO weekly_reports (week_ending, report, created_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (week_ending) DO NOTHING",
        &[
            Value::Text(week.clone()),
            Value::Text(serde_json::to_string(&report).expect("serializes")),
            Value::Integer(now),
        ],
    )
    .await?;
    Ok((week, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weeks_end_on_sunday() {
        let sunday = parse_date("2026-11-29").unwrap();
        assert_eq!(weekday(sunday), 6);
        assert_eq!(weekday(parse_date("2026-11-30").unwrap()), 0);
        // On Wednesday 2 December, the last ended week ends on Sunday 29 November.
        let wed = parse_date("2026-12-02").unwrap() + 5 * 3_600_000;
        assert_eq!(last_ended_week(wed), sunday);
        // On Monday 30 November, too; on Sunday 29 itself, the week before.
        assert_eq!(last_ended_week(parse_date("2026-11-30").unwrap()), sunday);
        assert_eq!(last_ended_week(sunday + 1000), sunday - 7 * DAY_MS);
        assert_eq!(week_ending(Some("2026-11-29"), 0).unwrap(), sunday);
        let e = week_ending(Some("2026-11-28"), 0).unwrap_err();
        assert_eq!(e.errors[0].field, "week_ending");
        assert!(week_ending(Some("29/11/2026"), 0).is_err());
    }
}
