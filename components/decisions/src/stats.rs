//! `GET /api/decisions/stats?range=24h|7d|30d|all`: queue depth, time to
//! decision, SLA breaches, outcomes by dismissal reason and by analyst, and
//! the escalation rate, over decisions submitted in the range.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Serialize;
use spin_sdk::http::Response;
use vigil_api::db::Value;
use vigil_api::{ApiError, Ctx, db, response};
use vigil_core::decision::{DurationSummary, Priority, summarize};
use vigil_core::time::now_millis;

#[derive(Serialize, JsonSchema)]
pub struct Stats {
    /// `24h`, `7d`, `30d` or `all`.
    range: String,
    /// Decisions submitted in the range.
    submitted: i64,
    /// Open decisions now, by priority and status (whenever submitted).
    queue_depth: BTreeMap<String, BTreeMap<String, i64>>,
    /// From submission to the first decision (approve, reject, dismiss).
    time_to_decision: Option<DurationSummary>,
    time_to_decision_by_priority: BTreeMap<String, DurationSummary>,
    /// Decided after the deadline, or still open past it.
    sla_breaches: i64,
    sla_breach_rate: f64,
    /// Dismissals by reason.
    dismissed_by_reason: BTreeMap<String, i64>,
    /// Decisions by the analyst who made them, by outcome.
    by_analyst: BTreeMap<String, BTreeMap<String, i64>>,
    /// Share of the range's decisions that were ever escalated.
    escalation_rate: f64,
}

const DECIDING: &str = "('approved', 'awaiting_second_approval', 'rejected', 'dismissed')";

fn rate(part: i64, whole: i64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

pub fn stats(ctx: &mut Ctx) -> Result<Response, ApiError> {
    let range = ctx.query_param("range").unwrap_or_else(|| "24h".into());
    let window_ms: Option<i64> = match range.as_str() {
        "24h" => Some(24 * 3600 * 1000),
        "7d" => Some(7 * 24 * 3600 * 1000),
        "30d" => Some(30 * 24 * 3600 * 1000),
        "all" => None,
        _ => return Err(ApiError::invalid_field("range", "is 24h, 7d, 30d or all")),
    };
    let now = now_millis();
    let since = window_ms.map_or(i64::MIN, |w| now - w);
    let conn = db::open()?;
    let since_v = || Value::Integer(since);

    let mut queue_depth: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
    for r in db::query(
        conn,
        "SELECT priority, status, count(*) FROM decisions
         WHERE status IN ('pending', 'claimed', 'escalated', 'awaiting_second_approval') GROUP BY priority, status",
        &[],
    )? {
        let priority = Priority::from_rank(db::int(&r, 0).unwrap_or(0)).map_or("?".into(), |p| format!("{p:?}"));
        queue_depth.entry(priority).or_default().insert(db::text(&r, 1).unwrap_or_default(), db::int(&r, 2).unwrap_or(0));
    }

    // One row per decision in the range: priority, when it was first decided
    // (if it was), its deadline, and whether it was ever escalated.
    let rows = db::query(
        conn,
        &format!(
            "SELECT d.priority, d.created_at, d.sla_deadline,
                    (SELECT min(t.at) FROM decision_transitions t WHERE t.decision_id = d.id AND t.to_status IN {DECIDING}),
                    EXISTS (SELECT 1 FROM decision_transitions t WHERE t.decision_id = d.id AND t.to_status = 'escalated'),
                    d.status IN ('pending', 'claimed', 'escalated', 'awaiting_second_approval')
             FROM decisions d WHERE d.created_at >= ?1"
        ),
        &[since_v()],
    )?;
    let submitted = rows.len() as i64;
    let (mut all, mut by_priority, mut breaches, mut escalated) =
        (Vec::new(), BTreeMap::<String, Vec<i64>>::new(), 0, 0);
    for r in &rows {
        let (created, deadline) = (db::int(r, 1).unwrap_or(0), db::int(r, 2).unwrap_or(0));
        let decided = db::int(r, 3);
        let open = db::int(r, 5) == Some(1);
        if let Some(at) = decided {
            all.push(at - created);
            let priority = Priority::from_rank(db::int(r, 0).unwrap_or(0))
                .map_or("?".into(), |p| format!("{p:?}"));
            by_priority.entry(priority).or_default().push(at - created);
        }
        if decided.is_some_and(|at| at > deadline) || (decided.is_none() && open && now > deadline)
        {
            breaches += 1;
        }
        if db::int(r, 4) == Some(1) {
            escalated += 1;
        }
    }

    let mut dismissed_by_reason = BTreeMap::new();
    for r in db::query(
        conn,
        "SELECT t.reason, count(*) FROM decision_transitions t JOIN decisions d ON d.id = t.decision_id
         WHERE t.command = 'dismiss' AND d.created_at >= ?1 GROUP BY t.reason",
        &[since_v()],
    )? {
        dismissed_by_reason.insert(db::text(&r, 0).unwrap_or_default(), db::int(&r, 1).unwrap_or(0));
    }
    let mut by_analyst: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
    for r in db::query(
        conn,
        &format!(
            "SELECT t.actor, t.to_status, count(*) FROM decision_transitions t JOIN decisions d ON d.id = t.decision_id
             WHERE t.to_status IN {DECIDING} AND d.created_at >= ?1 GROUP BY t.actor, t.to_status"
        ),
        &[since_v()],
    )? {
        by_analyst.entry(db::text(&r, 0).unwrap_or_default()).or_default().insert(db::text(&r, 1).unwrap_or_default(), db::int(&r, 2).unwrap_or(0));
    }

    Ok(response::json(
        200,
        &Stats {
            range,
            submitted,
            queue_depth,
            time_to_decision: summarize(all),
            time_to_decision_by_priority: by_priority
                .into_iter()
                .filter_map(|(p, v)| Some((p, summarize(v)?)))
                .collect(),
            sla_breaches: breaches,
            sla_breach_rate: rate(breaches, submitted),
            dismissed_by_reason,
            by_analyst,
            escalation_rate: rate(escalated, submitted),
        },
    ))
}
