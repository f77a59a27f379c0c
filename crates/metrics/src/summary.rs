//! `GET /api/metrics/summary`, and the figures `GET /api/decisions/stats`
//! serves: one reading of the rollups for both.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Serialize;
use vigil_core::ApiError;
use vigil_core::decision::{Priority, parse_wire};
use vigil_core::sql::Sql;
use vigil_core::time::rfc3339;
use vigil_ingest::event::EventType;

use crate::kpi::{self, Durations, Fatigue, FatigueInputs, rate};
use crate::read::{self, DecisionAgg, Dim, EventAgg};
use crate::window::Window;

/// How many entries a top list has.
pub const TOP: usize = 10;

#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct Ranked {
    pub key: String,
    pub events: i64,
}

/// The `n` largest by events (ties by key), without the empty key.
pub fn top(map: &BTreeMap<String, EventAgg>, n: usize) -> Vec<Ranked> {
    let mut v: Vec<Ranked> = map
        .iter()
        .filter(|(k, a)| !k.is_empty() && a.events > 0)
        .map(|(k, a)| Ranked {
            key: k.clone(),
            events: a.events,
        })
        .collect();
    v.sort_by(|a, b| b.events.cmp(&a.events).then_with(|| a.key.cmp(&b.key)));
    v.truncate(n);
    v
}

/// What decisions did in a window.
#[derive(Clone, Debug, Default, PartialEq, Serialize, JsonSchema)]
pub struct DecisionFigures {
    /// Submitted in the window.
    pub submitted: i64,
    /// First decisions made in the window (approve, reject, dismiss).
    pub decided: i64,
    /// First decisions that approved (including those awaiting a second approval).
    pub approved: i64,
    pub rejected: i64,
    pub dismissed: i64,
    /// Escalations (by people and by the SLA job).
    pub escalated: i64,
    /// First decisions made after the deadline.
    pub sla_breaches: i64,
    pub dismissed_by_reason: BTreeMap<String, i64>,
    /// Deciding transitions (second approvals included) by who made them, by the status decided into.
    pub by_analyst: BTreeMap<String, BTreeMap<String, i64>>,
    pub time_to_decision: Option<Durations>,
    pub time_to_decision_by_priority: BTreeMap<String, Durations>,
}

fn priority_name(rank: i64) -> String {
    Priority::from_rank(rank).map_or_else(|| "?".into(), |p| format!("{p:?}"))
}

/// Fold the window's decision rollups and histograms into figures.
pub fn decision_figures(
    rows: &[DecisionAgg],
    histograms: &BTreeMap<String, kpi::Histogram>,
) -> DecisionFigures {
    let mut f = DecisionFigures::default();
    let mut ttd: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
    for d in rows {
        match d.outcome.as_str() {
            "submitted" => f.submitted += d.count,
            "escalated" => f.escalated += d.count,
            outcome => {
                *f.by_analyst
                    .entry(d.analyst.clone())
                    .or_default()
                    .entry(outcome.into())
                    .or_default() += d.count;
                f.decided += d.decided;
                f.sla_breaches += d.sla_breaches;
                let t = ttd.entry(d.priority).or_default();
                t.0 += d.decided;
                t.1 += d.ttd_ms_sum;
                match outcome {
                    "approved" | "awaiting_second_approval" => f.approved += d.decided,
                    "rejected" => f.rejected += d.decided,
                    "dismissed" => {
                        f.dismissed += d.decided;
                        *f.dismissed_by_reason.entry(d.reason.clone()).or_default() += d.count;
                    }
                    _ => {}
                }
            }
        }
    }
    let empty = Vec::new();
    for (&p, &(n, sum)) in &ttd {
        let h = histograms.get(&format!("ttd:P{p}")).unwrap_or(&empty);
        if let Some(d) = kpi::durations(n, sum, h) {
            f.time_to_decision_by_priority.insert(priority_name(p), d);
        }
    }
    let all = read::merged(
        histograms
            .iter()
            .filter(|(k, _)| k.starts_with("ttd:"))
            .map(|(_, h)| h),
    );
    let (n, sum) = ttd.values().fold((0, 0), |(n, s), (a, b)| (n + a, s + b));
    f.time_to_decision = kpi::durations(n, sum, &all);
    f
}

/// The decision figures of a window, read from the rollups (one statement).
pub async fn decisions(db: &impl Sql, w: &Window) -> Result<DecisionFigures, ApiError> {
    let mut b = read::Batch::default();
    b.decisions(w, None);
    b.durations(w);
    let rows = b.run(db).await?;
    Ok(decision_figures(&rows.decisions(), &rows.histograms()))
}

#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct AlertFigures {
    /// Opened, acknowledged and resolved in the window.
    pub opened: i64,
    pub acknowledged: i64,
    pub resolved: i64,
    /// Opened in the window, by the severity they opened with.
    pub opened_by_severity: BTreeMap<String, i64>,
    pub mean_time_to_acknowledge_seconds: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct Tops {
    pub sensors: Vec<Ranked>,
    pub zones: Vec<Ranked>,
    pub event_types: Vec<Ranked>,
    /// MITRE ATT&CK techniques, from the event types.
    pub techniques: Vec<Ranked>,
    pub source_countries: Vec<Ranked>,
}

/// `GET /api/metrics/summary`.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct Summary {
    /// `24h`, `7d`, `30d`, `all` or `custom`.
    pub range: String,
    /// The whole hours counted: `from` (absent for `all`) up to `to`.
    #[schemars(extend("format" = "date-time"))]
    pub from: Option<String>,
    #[schemars(extend("format" = "date-time"))]
    pub to: String,
    pub events: i64,
    pub events_by_severity: BTreeMap<String, i64>,
    pub alerts: AlertFigures,
    pub decisions: DecisionFigures,
    /// Dismissed / decided (first decisions).
    pub dismissed_rate: f64,
    /// Escalations / submitted, at most 1.
    pub escalation_rate: f64,
    /// Approved / decided.
    pub approval_rate: f64,
    /// First decisions after the deadline / decided.
    pub sla_breach_rate: f64,
    pub time_to_decision: Option<Durations>,
    pub fatigue: Fatigue,
    pub top: Tops,
    /// Dismissals by reason.
    pub dismiss_reasons: BTreeMap<String, i64>,
}

/// Settings the summary needs.
pub struct SummarySettings {
    pub ack_sla_seconds: f64,
}

pub async fn summary(
    db: &impl Sql,
    w: &Window,
    settings: &SummarySettings,
) -> Result<Summary, ApiError> {
    // Everything in one statement: events by five dimensions, alerts,
    // decisions and their histograms (and for `all`, the first hour).
    const DIMS: [Dim; 5] = [
        Dim::Severity,
        Dim::Sensor,
        Dim::Zone,
        Dim::Type,
        Dim::Country,
    ];
    let mut b = read::Batch::default();
    b.events(w, "", &DIMS);
    b.alerts(w, None);
    b.decisions(w, None);
    b.durations(w);
    if w.from.is_none() {
        b.first_hour();
    }
    let read = b.run(db).await?;
    let [by_severity, by_sensor, by_zone, by_type, by_country]: [BTreeMap<String, EventAgg>; 5] =
        read.events_by(&DIMS)
            .try_into()
            .map_err(|_| ApiError::internal())?;
    let alerts = read.alerts_by_severity();
    let rows = read.decisions();
    let histograms = read.histograms();
    let decisions = decision_figures(&rows, &histograms);
    let first = read.first_hour();

    let mut alert_total = read::AlertAgg::default();
    for a in alerts.values() {
        alert_total.add(a);
    }
    let events: i64 = by_severity.values().map(|a| a.events).sum();
    let alerting_events: i64 = ["high", "critical"]
        .iter()
        .filter_map(|s| by_severity.get(*s))
        .map(|a| a.events)
        .sum();
    let false_positives: i64 = rows
        .iter()
        .filter(|d| {
            d.outcome == "dismissed" && kpi::FALSE_POSITIVE_REASONS.contains(&d.reason.as_str())
        })
        .map(|d| d.decided)
        .sum();
    let analysts = rows
        .iter()
        .filter(|d| d.decided > 0)
        .map(|d| d.analyst.as_str())
        .collect::<std::collections::BTreeSet<_>>()
        .len() as i64;
    let tta = histograms.get("tta").cloned().unwrap_or_default();
    let fatigue = kpi::fatigue(&FatigueInputs {
        decided: decisions.decided,
        false_positives,
        alerts_opened: alert_total.opened,
        analysts,
        hours: w.hours(first),
        alerting_events,
        median_ack_seconds: kpi::percentile(&tta, 0.5),
        ack_sla_seconds: settings.ack_sla_seconds,
    });

    let mut techniques: BTreeMap<String, EventAgg> = BTreeMap::new();
    for (kind, agg) in &by_type {
        if let Some(t) = parse_wire::<EventType>(kind).and_then(EventType::technique) {
            techniques.entry(t.id.into()).or_default().events += agg.events;
        }
    }
    Ok(Summary {
        range: w.label.clone(),
        from: w.from.map(rfc3339),
        to: rfc3339(w.to),
        events,
        events_by_severity: by_severity
            .iter()
            .map(|(k, a)| (k.clone(), a.events))
            .collect(),
        alerts: AlertFigures {
            opened: alert_total.opened,
            acknowledged: alert_total.acknowledged,
            resolved: alert_total.resolved,
            opened_by_severity: alerts
                .iter()
                .filter(|(_, a)| a.opened > 0)
                .map(|(k, a)| (k.clone(), a.opened))
                .collect(),
            mean_time_to_acknowledge_seconds: (alert_total.acknowledged > 0)
                .then(|| alert_total.ack_ms_sum as f64 / alert_total.acknowledged as f64 / 1000.0),
        },
        dismissed_rate: rate(decisions.dismissed, decisions.decided),
        escalation_rate: rate(decisions.escalated, decisions.submitted),
        approval_rate: rate(decisions.approved, decisions.decided),
        sla_breach_rate: rate(decisions.sla_breaches, decisions.decided),
        time_to_decision: decisions.time_to_decision.clone(),
        dismiss_reasons: decisions.dismissed_by_reason.clone(),
        fatigue,
        top: Tops {
            sensors: top(&by_sensor, TOP),
            zones: top(&by_zone, TOP),
            event_types: top(&by_type, TOP),
            techniques: top(&techniques, TOP),
            source_countries: top(&by_country, TOP),
        },
        decisions,
    })
}
