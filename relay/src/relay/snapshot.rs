//! Snapshots: the current state of a channel, read in one transaction with
//! the newest outbox id so the client knows which events it already
//! reflects. Bounded to [`LIMIT`] items each (`truncated: true` says there
//! were more; the HTTP API pages through the rest).
//!
//! - alerts: unresolved (open, acknowledged), most recently seen first;
//! - decisions: still waiting for a person (pending, claimed, escalated,
//!   awaiting a second approval), by priority then SLA deadline;
//! - sensors: id, name, kind and status (online/stale/offline from the last
//!   heartbeat), by name;
//! - threats, playbooks, audit: no items (their events are a log, not a state).
//!
//! The subscription's filters apply to the items as they do to events.

use anyhow::{Context, Result};
use serde_json::{Value, json};
use vigil_core::decision::{Status, wire};
use vigil_core::time::rfc3339;
use vigil_ingest::sensor::{Liveness, SensorStatus};

use super::protocol::{Channel, Filters, Severity};

pub const LIMIT: usize = 500;

/// The items of each channel and the outbox id they are consistent with.
pub async fn read(
    conn: &libsql::Connection,
    channels: &[Channel],
    filters: &Filters,
    liveness: &Liveness,
) -> Result<(i64, Vec<(Channel, Vec<Value>)>)> {
    let tx = conn
        .transaction_with_behavior(libsql::TransactionBehavior::Deferred)
        .await?;
    let as_of = vigil_db::target::query_i64(&tx, "SELECT max(id) FROM events", ())
        .await?
        .unwrap_or(0);
    let mut out = Vec::new();
    for &channel in channels {
        let items = match channel {
            Channel::Alerts => alerts(&tx, filters).await,
            Channel::Decisions => decisions(&tx, filters).await,
            Channel::Sensors => sensors(&tx, filters, liveness).await,
            Channel::Threats | Channel::Playbooks | Channel::Audit => Ok(Vec::new()),
        }
        .with_context(|| format!("reading the {} snapshot", channel.as_str()))?;
        out.push((channel, items));
    }
    tx.commit().await?;
    Ok((as_of, out))
}

/// `?` placeholders and their values, numbered from 1 in order of use.
#[derive(Default)]
struct Clauses {
    sql: Vec<String>,
    params: Vec<libsql::Value>,
}

impl Clauses {
    fn add(&mut self, clause: &str, values: Vec<libsql::Value>) {
        self.sql.push(clause.to_string());
        self.params.extend(values);
    }

    /// `col IN (?, ?, …)` over `names`.
    fn one_of(&mut self, column: &str, names: &[String]) {
        let marks = vec!["?"; names.len()].join(", ");
        self.add(
            &format!("{column} IN ({marks})"),
            names.iter().cloned().map(libsql::Value::Text).collect(),
        );
    }

    fn where_clause(&self) -> String {
        self.sql.join(" AND ")
    }
}

/// The wire names of severities at or above `min`, within `scale`.
fn at_least(min: Severity, scale: &[&str]) -> Vec<String> {
    scale
        .iter()
        .filter(|s| vigil_core::wire::parse_wire::<Severity>(s).is_some_and(|s| s >= min))
        .map(|s| s.to_string())
        .collect()
}

/// Each row as an item. Rows are read as they come: a local connection's
/// row is only valid until the next step.
async fn items(
    conn: &libsql::Connection,
    sql: &str,
    params: Vec<libsql::Value>,
    item: impl Fn(&libsql::Row) -> Result<Value>,
) -> Result<Vec<Value>> {
    let mut rows = conn.query(sql, params).await?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().await? {
        out.push(item(&row)?);
    }
    Ok(out)
}

async fn alerts(conn: &libsql::Connection, f: &Filters) -> Result<Vec<Value>> {
    let mut c = Clauses::default();
    c.one_of("status", &["open".into(), "acknowledged".into()]);
    if let Some(status) = &f.status {
        c.add("status = ?", vec![status.clone().into()]);
    }
    if let Some(sensor) = &f.sensor_id {
        c.add("sensor_id = ?", vec![sensor.clone().into()]);
    }
    if let Some(min) = f.min_severity {
        c.one_of(
            "severity",
            &at_least(min, &["info", "low", "medium", "high", "critical"]),
        );
    }
    let sql = format!(
        "SELECT id, status, severity, sensor_id, source_ip, event_type, max_score, event_count,
                first_seen, last_seen, version
           FROM alerts WHERE {} ORDER BY last_seen DESC, id DESC LIMIT {LIMIT}",
        c.where_clause()
    );
    items(conn, &sql, c.params, |r| {
        Ok(json!({
            "id": r.get::<String>(0)?,
            "status": r.get::<String>(1)?,
            "severity": r.get::<String>(2)?,
            "sensor_id": r.get::<String>(3)?,
            "source_ip": r.get::<String>(4)?,
            "event_type": r.get::<String>(5)?,
            "score": r.get::<i64>(6)?,
            "events": r.get::<i64>(7)?,
            "first_seen": rfc3339(r.get::<i64>(8)?),
            "last_seen": rfc3339(r.get::<i64>(9)?),
            "version": r.get::<i64>(10)?,
        }))
    })
    .await
}

async fn decisions(conn: &libsql::Connection, f: &Filters) -> Result<Vec<Value>> {
    let open: Vec<String> = Status::ALL
        .into_iter()
        .filter(|s| s.is_open())
        .map(|s| wire(&s))
        .collect();
    let mut c = Clauses::default();
    c.one_of("status", &open);
    if let Some(status) = &f.status {
        c.add("status = ?", vec![status.clone().into()]);
    }
    if let Some(min) = f.min_severity {
        c.one_of(
            "threat_level",
            &at_least(min, &["low", "medium", "high", "critical"]),
        );
    }
    let sql = format!(
        "SELECT id, status, priority, sla_deadline, action, subject_kind, subject_id, threat_level,
                confidence, summary, assignee, version, created_at
           FROM decisions WHERE {} ORDER BY priority, sla_deadline, id LIMIT {LIMIT}",
        c.where_clause()
    );
    items(conn, &sql, c.params, |r| {
        Ok(json!({
            "id": r.get::<String>(0)?,
            "status": r.get::<String>(1)?,
            "priority": r.get::<i64>(2)?,
            "sla_deadline": rfc3339(r.get::<i64>(3)?),
            "action": r.get::<String>(4)?,
            "subject_kind": r.get::<String>(5)?,
            "subject_id": r.get::<String>(6)?,
            "threat_level": r.get::<String>(7)?,
            "confidence": r.get::<f64>(8)?,
            "summary": r.get::<String>(9)?,
            "assignee": r.get::<Option<String>>(10)?,
            "version": r.get::<i64>(11)?,
            "created_at": rfc3339(r.get::<i64>(12)?),
        }))
    })
    .await
}

async fn sensors(
    conn: &libsql::Connection,
    f: &Filters,
    liveness: &Liveness,
) -> Result<Vec<Value>> {
    let now = vigil_core::time::now_millis();
    let mut c = Clauses::default();
    c.add("1 = 1", vec![]);
    if let Some(sensor) = &f.sensor_id {
        c.add("id = ?", vec![sensor.clone().into()]);
    }
    if let Some(status) = &f.status {
        let Some(status) = vigil_core::wire::parse_wire::<SensorStatus>(status) else {
            // No sensor has a status that does not exist.
            return Ok(Vec::new());
        };
        match liveness.heartbeat_range(status, now) {
            (Some(after), None) => c.add("last_heartbeat > ?", vec![after.into()]),
            (Some(after), Some(through)) => c.add(
                "last_heartbeat > ? AND last_heartbeat <= ?",
                vec![after.into(), through.into()],
            ),
            (None, Some(through)) => c.add(
                "(last_heartbeat IS NULL OR last_heartbeat <= ?)",
                vec![through.into()],
            ),
            (None, None) => {}
        }
    }
    let sql = format!(
        "SELECT id, name, kind, last_heartbeat FROM sensors WHERE {} ORDER BY name, id LIMIT {LIMIT}",
        c.where_clause()
    );
    items(conn, &sql, c.params, |r| {
        let heartbeat = r.get::<Option<i64>>(3)?;
        Ok(json!({
            "id": r.get::<String>(0)?,
            "name": r.get::<String>(1)?,
            "kind": r.get::<String>(2)?,
            "status": wire(&liveness.status(heartbeat, now)),
            "last_heartbeat": heartbeat.map(rfc3339),
        }))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_filters_become_value_lists() {
        assert_eq!(
            at_least(
                Severity::High,
                &["info", "low", "medium", "high", "critical"]
            ),
            ["high", "critical"]
        );
        assert_eq!(
            at_least(Severity::Info, &["low", "medium", "high", "critical"]),
            ["low", "medium", "high", "critical"]
        );
    }
}
