//! `GET /api/decisions/stats?range=24h|7d|30d|all`: queue depth, time to
//! decision, SLA breaches, outcomes by dismissal reason and by analyst, and
//! the escalation rate, over the range's hours. Everything but the live
//! queue comes from the metrics rollups (`vigil_metrics_rules::summary`),
//! the same figures `GET /api/metrics/summary` shows.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Serialize;
use spin_sdk::http::Response;
use vigil_api::db::{Columns, SpinSql, Value, ready};
use vigil_api::{ApiError, Ctx, db, response};
use vigil_core::decision::{DurationSummary, Priority};
use vigil_core::time::now_millis;
use vigil_metrics_rules::kpi::{Durations, rate};
use vigil_metrics_rules::summary;
use vigil_metrics_rules::window::Window;

#[derive(Serialize, JsonSchema)]
pub struct Stats {
    /// `24h`, `7d`, `30d` or `all`.
    range: String,
    /// Decisions submitted in the range.
    submitted: i64,
    /// Open decisions now, by priority and status (whenever submitted).
    queue_depth: BTreeMap<String, BTreeMap<String, i64>>,
    /// From submission to the first decision (approve, reject, dismiss) made in the range.
    time_to_decision: Option<DurationSummary>,
    time_to_decision_by_priority: BTreeMap<String, DurationSummary>,
    /// First decisions in the range made after the deadline, and open decisions past it now.
    sla_breaches: i64,
    /// sla_breaches over the decisions they are counted among (decided in the range, and overdue now).
    sla_breach_rate: f64,
    /// Dismissals in the range by reason.
    dismissed_by_reason: BTreeMap<String, i64>,
    /// Decisions by the analyst who made them, by outcome.
    by_analyst: BTreeMap<String, BTreeMap<String, i64>>,
    /// Escalations in the range over decisions submitted in it (at most 1).
    escalation_rate: f64,
}

fn summary_of(d: &Durations) -> DurationSummary {
    DurationSummary {
        count: d.count as usize,
        mean_seconds: d.mean_seconds,
        median_seconds: d.median_seconds,
        p90_seconds: d.p90_seconds,
    }
}

const OPEN: &str = "('pending', 'claimed', 'escalated', 'awaiting_second_approval')";

pub fn stats(ctx: &mut Ctx) -> Result<Response, ApiError> {
    let now = now_millis();
    let window = Window::parse(ctx.query_param("range").as_deref(), None, None, now)?;
    let conn = db::open()?;
    let figures = ready(summary::decisions(&SpinSql(conn), &window))?;

    let mut queue_depth: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
    let mut overdue = 0;
    static DEPTH: Columns =
        Columns::new("priority, status, count(*) AS waiting, sum(sla_deadline < ?1) AS overdue");
    for r in db::query(
        conn,
        &format!("SELECT {DEPTH} FROM decisions WHERE status IN {OPEN} GROUP BY priority, status"),
        &[Value::Integer(now)],
    )? {
        let r = DEPTH.row(&r);
        let priority = Priority::from_rank(r.int("priority").unwrap_or(0))
            .map_or("?".into(), |p| format!("{p:?}"));
        queue_depth.entry(priority).or_default().insert(
            r.text("status").unwrap_or_default(),
            r.int("waiting").unwrap_or(0),
        );
        overdue += r.int("overdue").unwrap_or(0);
    }
    let breaches = figures.sla_breaches + overdue;
    Ok(response::json(
        200,
        &Stats {
            range: window.label,
            submitted: figures.submitted,
            queue_depth,
            time_to_decision: figures.time_to_decision.as_ref().map(summary_of),
            time_to_decision_by_priority: figures
                .time_to_decision_by_priority
                .iter()
                .map(|(p, d)| (p.clone(), summary_of(d)))
                .collect(),
            sla_breaches: breaches,
            sla_breach_rate: rate(breaches, figures.decided + overdue),
            dismissed_by_reason: figures.dismissed_by_reason,
            by_analyst: figures.by_analyst,
            escalation_rate: rate(figures.escalated, figures.submitted),
        },
    ))
}
