//! `GET /metrics`: Prometheus text exposition (format 0.0.4), every family
//! with its HELP and TYPE lines. Counters come from the rollups (all time:
//! their day rows), gauges from the small live tables.

use std::collections::BTreeMap;
use std::fmt::Write;

use vigil_core::ApiError;
use vigil_core::decision::Priority;
use vigil_core::sql::{Columns, Sql, Value, int, text};
use vigil_ingest::sensor::Liveness;

pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// One metric family: name, help, type, and samples (labels, value).
pub struct Family {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: &'static str,
    pub samples: Vec<(Vec<(&'static str, String)>, f64)>,
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The text exposition of `families`.
pub fn render(families: &[Family]) -> String {
    let mut out = String::new();
    for f in families {
        let _ = writeln!(out, "# HELP {} {}", f.name, f.help);
        let _ = writeln!(out, "# TYPE {} {}", f.name, f.kind);
        for (labels, value) in &f.samples {
            out.push_str(f.name);
            if !labels.is_empty() {
                let l: Vec<String> = labels
                    .iter()
                    .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                    .collect();
                let _ = write!(out, "{{{}}}", l.join(","));
            }
            let _ = writeln!(out, " {value}");
        }
    }
    out
}

fn by(label: &'static str, map: BTreeMap<String, i64>) -> Vec<(Vec<(&'static str, String)>, f64)> {
    map.into_iter()
        .map(|(k, v)| (vec![(label, k)], v as f64))
        .collect()
}

async fn grouped(
    db: &impl Sql,
    sql: &str,
    params: &[Value],
) -> Result<BTreeMap<String, i64>, ApiError> {
    Ok(db
        .query(sql, params)
        .await?
        .iter()
        .filter_map(|r| Some((text(r, 0)?, int(r, 1).unwrap_or(0))))
        .collect())
}

const SEVERITIES: [&str; 5] = ["info", "low", "medium", "high", "critical"];

fn with_severities(mut m: BTreeMap<String, i64>) -> BTreeMap<String, i64> {
    for s in SEVERITIES {
        m.entry(s.into()).or_default();
    }
    m
}

/// Read everything `/metrics` shows, at `now`.
pub async fn scrape(db: &impl Sql, liveness: &Liveness, now: i64) -> Result<Vec<Family>, ApiError> {
    let events = grouped(
        db,
        "SELECT key, sum(events) FROM rollup_events_by WHERE span = 'day' AND sensor_id = '' AND dim = 'severity'
          GROUP BY key",
        &[],
    )
    .await?;
    let opened = grouped(
        db,
        "SELECT severity, sum(opened) FROM rollup_alerts WHERE span = 'day' GROUP BY severity",
        &[],
    )
    .await?;
    let open = grouped(
        db,
        "SELECT severity, count(*) FROM alerts WHERE status IN ('open', 'acknowledged') GROUP BY severity",
        &[],
    )
    .await?;
    let mut pending: BTreeMap<String, i64> =
        [Priority::P1, Priority::P2, Priority::P3, Priority::P4]
            .iter()
            .map(|p| (format!("{p:?}"), 0))
            .collect();
    static PENDING: Columns = Columns::new("priority, count(*) AS waiting");
    for r in db
        .query(
            &format!(
                "SELECT {PENDING} FROM decisions
                  WHERE status IN ('pending', 'claimed', 'escalated', 'awaiting_second_approval') GROUP BY priority"
            ),
            &[],
        )
        .await?
    {
        let r = PENDING.row(&r);
        if let Some(p) = r.int("priority").and_then(Priority::from_rank) {
            pending.insert(format!("{p:?}"), r.int("waiting").unwrap_or(0));
        }
    }
    let breaches = db
        .query(
            "SELECT coalesce(sum(sla_breaches), 0) FROM rollup_decisions WHERE span = 'day'",
            &[],
        )
        .await?;
    let overdue = db
        .query(
            "SELECT count(*) FROM decisions
              WHERE status IN ('pending', 'claimed', 'escalated', 'awaiting_second_approval') AND sla_deadline < ?1",
            &[Value::Integer(now)],
        )
        .await?;
    let sensors = crate::fleet::sensors_by_status(db, liveness, now).await?;
    // The log is append-only with increasing ids: its last id is its length,
    // read without counting a growing table.
    let audit = db
        .query("SELECT coalesce(max(id), 0) FROM audit_log", &[])
        .await?;
    let one = |rows: &[Vec<Value>]| rows.first().and_then(|r| int(r, 0)).unwrap_or(0) as f64;
    Ok(vec![
        Family {
            name: "vigil_events_total",
            help: "Threat events stored, by severity.",
            kind: "counter",
            samples: by("severity", with_severities(events)),
        },
        Family {
            name: "vigil_alerts_opened_total",
            help: "Alerts opened, by the severity they opened with.",
            kind: "counter",
            samples: by("severity", with_severities(opened)),
        },
        Family {
            name: "vigil_alerts_open",
            help: "Alerts open or acknowledged (not resolved), by severity.",
            kind: "gauge",
            samples: by("severity", with_severities(open)),
        },
        Family {
            name: "vigil_decisions_pending",
            help: "Decisions waiting for a person (pending, claimed, escalated, awaiting a second approval), by priority.",
            kind: "gauge",
            samples: by("priority", pending),
        },
        Family {
            name: "vigil_decision_sla_breaches_total",
            help: "Decisions first decided after their SLA deadline.",
            kind: "counter",
            samples: vec![(vec![], one(&breaches))],
        },
        Family {
            name: "vigil_decisions_overdue",
            help: "Decisions still waiting past their SLA deadline.",
            kind: "gauge",
            samples: vec![(vec![], one(&overdue))],
        },
        Family {
            name: "vigil_sensors",
            help: "Registered sensors, by status (online, stale, offline).",
            kind: "gauge",
            samples: by("status", sensors),
        },
        Family {
            name: "vigil_audit_entries_total",
            help: "Entries in the hash-chained audit log.",
            kind: "counter",
            samples: vec![(vec![], one(&audit))],
        },
    ])
}
