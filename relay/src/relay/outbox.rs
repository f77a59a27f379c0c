//! Reading the `events` outbox and the audit log by id, and the one poller
//! per relay that tails both and hands each batch to the hub.
//!
//! Ids are a safe cursor: every write is a `BEGIN IMMEDIATE` transaction and
//! SQLite (and a libSQL server) has one writer at a time, so when id N is
//! visible every smaller id has committed or was rolled back for good.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};

use super::db::Pool;
use super::hub::{Event, Hub};
use super::metrics::Metrics;
use super::protocol::{Channel, Facets, event_message};
use super::{log, stopping};

/// Rows read per poll (and per replay step).
pub const BATCH: i64 = 500;

/// How long a fan-out waits for room in the sockets' queues (see
/// [`Hub::wait_for_room`]) before those still full are slow consumers.
pub const SLOW_CONSUMER_GRACE: Duration = Duration::from_secs(2);

/// One read of the outbox or the audit log.
pub struct Batch {
    /// The rows a channel carries, as events, oldest first.
    pub events: Vec<Arc<Event>>,
    /// The last id read (rows no channel carries, such as `user.*`, still
    /// move the cursor); `after` when nothing was read.
    pub last: i64,
    /// Rows read: [`BATCH`] means more may be waiting.
    pub rows: usize,
    /// Sensors whose control message may have changed (see [`super::control`]).
    pub sensors: Vec<String>,
}

/// Outbox rows after `after` and through `through`, oldest first, at most [`BATCH`].
pub async fn outbox_after(conn: &libsql::Connection, after: i64, through: i64) -> Result<Batch> {
    let mut rows = conn
        .query(
            "SELECT id, type, payload, created_at FROM events
              WHERE id > ?1 AND id <= ?2 ORDER BY id LIMIT ?3",
            libsql::params![after, through, BATCH],
        )
        .await?;
    let mut events = Vec::new();
    let mut sensors = Vec::new();
    let mut last = after;
    let mut read = 0;
    while let Some(row) = rows.next().await? {
        read += 1;
        let id: i64 = row.get(0)?;
        let event_type: String = row.get(1)?;
        let payload: String = row.get(2)?;
        let created_at: i64 = row.get(3)?;
        last = id;
        let Some(channel) = Channel::of_event_type(&event_type) else {
            continue;
        };
        // The table's CHECK keeps payloads valid JSON; a row that is not is shown as null.
        let data: Value = serde_json::from_str(&payload).unwrap_or(Value::Null);
        if vigil_ingest::sensor::CONTROL_EVENTS.contains(&event_type.as_str())
            && let Some(sensor) = data["id"].as_str()
        {
            sensors.push(sensor.to_string());
        }
        events.push(Arc::new(Event {
            id,
            channel,
            facets: Facets::of(channel, &data),
            created_at,
            message: event_message(id, &event_type, channel, &data, created_at).into(),
        }));
    }
    Ok(Batch {
        events,
        last,
        rows: read,
        sensors,
    })
}

/// Audit entries after `after`, oldest first, at most [`BATCH`], as audit
/// channel events. The entry's `before`/`after`
/// bodies are left out (fetch them over HTTP); the hash is kept so a client
/// can match an entry with the verified chain.
pub async fn audit_after(conn: &libsql::Connection, after: i64) -> Result<Batch> {
    let mut rows = conn
        .query(
            "SELECT id, at, actor, action, subject_kind, subject_id, request_id, hash
               FROM audit_log WHERE id > ?1 ORDER BY id LIMIT ?2",
            libsql::params![after, BATCH],
        )
        .await?;
    let mut events = Vec::new();
    let mut last = after;
    let mut read = 0;
    while let Some(row) = rows.next().await? {
        read += 1;
        let id: i64 = row.get(0)?;
        let at: i64 = row.get(1)?;
        let action: String = row.get(3)?;
        let data = json!({
            "id": id,
            "at": vigil_core::time::rfc3339(at),
            "actor": row.get::<String>(2)?,
            "action": action,
            "subject_kind": row.get::<Option<String>>(4)?,
            "subject_id": row.get::<Option<String>>(5)?,
            "request_id": row.get::<Option<String>>(6)?,
            "hash": row.get::<String>(7)?,
        });
        last = id;
        events.push(Arc::new(Event {
            id,
            channel: Channel::Audit,
            facets: Facets::default(),
            created_at: at,
            message: event_message(id, &action, Channel::Audit, &data, at).into(),
        }));
    }
    Ok(Batch {
        events,
        last,
        rows: read,
        sensors: Vec::new(),
    })
}

/// The newest outbox id and audit id (0 when empty): where a fresh relay starts.
pub async fn heads(conn: &libsql::Connection) -> Result<(i64, i64)> {
    let outbox = vigil_db::target::query_i64(conn, "SELECT max(id) FROM events", ()).await?;
    let audit = vigil_db::target::query_i64(conn, "SELECT max(id) FROM audit_log", ()).await?;
    Ok((outbox.unwrap_or(0), audit.unwrap_or(0)))
}

/// The oldest and newest retained outbox ids.
pub async fn retained(conn: &libsql::Connection) -> Result<(Option<i64>, Option<i64>)> {
    let mut rows = conn
        .query("SELECT min(id), max(id) FROM events", ())
        .await?;
    match rows.next().await? {
        Some(row) => Ok((row.get(0)?, row.get(1)?)),
        None => Ok((None, None)),
    }
}

/// Whether a client that has seen everything through `last_event_id` can
/// resume, given the oldest and newest ids still in the outbox.
#[derive(Debug, PartialEq, Eq)]
pub enum Resume {
    Replay,
    /// Events after `last_event_id` were deleted (retention), or the id was
    /// never issued by this database: the client must take a snapshot again.
    ResyncRequired(&'static str),
}

pub fn resume_verdict(last_event_id: i64, oldest: Option<i64>, newest: Option<i64>) -> Resume {
    let newest = newest.unwrap_or(0);
    if last_event_id < 0 {
        return Resume::ResyncRequired("last_event_id is negative");
    }
    if last_event_id > newest {
        return Resume::ResyncRequired("last_event_id is ahead of the outbox");
    }
    match oldest {
        // 0 means "from the beginning": whatever is retained is all there is.
        Some(oldest) if last_event_id > 0 && last_event_id + 1 < oldest => {
            Resume::ResyncRequired("events after last_event_id are no longer retained")
        }
        _ => Resume::Replay,
    }
}

/// The poller: every `interval` (at once again after a full batch), read
/// what follows the hub's positions and fan it out, and hand the sensors
/// whose control message may have changed to `control` (when MQTT is on).
/// A database error is logged, counted and retried at the next tick.
pub async fn poll(
    hub: Arc<Hub>,
    pool: Arc<Pool>,
    metrics: Arc<Metrics>,
    interval: Duration,
    control: Option<mpsc::UnboundedSender<String>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut failing = false;
    loop {
        let full = match poll_once(&hub, &pool, &metrics, control.as_ref()).await {
            Ok(full) => {
                if failing {
                    log::line(json!({"level": "info", "msg": "outbox poll recovered"}));
                    failing = false;
                }
                full
            }
            Err(e) => {
                Metrics::add(&metrics.poll_errors_total);
                if !failing {
                    log::line(
                        json!({"level": "error", "msg": "outbox poll failed", "error": format!("{e:#}")}),
                    );
                    failing = true;
                }
                false
            }
        };
        if full {
            continue;
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stopping(&mut shutdown) => return,
        }
    }
}

/// One poll; whether either batch was full (more is waiting).
async fn poll_once(
    hub: &Hub,
    pool: &Pool,
    metrics: &Metrics,
    control: Option<&mpsc::UnboundedSender<String>>,
) -> Result<bool> {
    Metrics::add(&metrics.polls_total);
    let (position, audit_position) = hub.positions();
    let conn = pool.get().await?;
    let read = async {
        let outbox = outbox_after(conn.conn(), position, i64::MAX).await?;
        let audit = audit_after(conn.conn(), audit_position).await?;
        anyhow::Ok((outbox, audit))
    }
    .await;
    let (outbox, audit) = match read {
        Ok(r) => r,
        Err(e) => {
            conn.discard();
            return Err(e);
        }
    };
    drop(conn);
    if let Some(control) = control {
        for sensor in &outbox.sensors {
            // Gone only when MQTT ingestion stopped: nothing to publish to then.
            let _ = control.send(sensor.clone());
        }
    }
    let full = outbox.rows as i64 >= BATCH || audit.rows as i64 >= BATCH;
    if outbox.last > position || audit.last > audit_position {
        hub.wait_for_room(
            outbox.events.len() + audit.events.len(),
            SLOW_CONSUMER_GRACE,
        )
        .await;
        hub.publish(&outbox.events, outbox.last, &audit.events, audit.last);
    }
    if let Some(newest) = outbox.events.last() {
        metrics.outbox_lag_ms.store(
            (vigil_core::time::now_millis() - newest.created_at).max(0),
            std::sync::atomic::Ordering::Relaxed,
        );
    }
    Ok(full)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resume_is_refused_only_when_something_is_missing() {
        // Retained: 10..=20.
        let (o, n) = (Some(10), Some(20));
        assert_eq!(resume_verdict(20, o, n), Resume::Replay);
        assert_eq!(resume_verdict(12, o, n), Resume::Replay);
        // 9 was seen; 10 is the next and is retained.
        assert_eq!(resume_verdict(9, o, n), Resume::Replay);
        assert!(matches!(resume_verdict(8, o, n), Resume::ResyncRequired(_)));
        assert!(matches!(
            resume_verdict(21, o, n),
            Resume::ResyncRequired(_)
        ));
        assert!(matches!(
            resume_verdict(-1, o, n),
            Resume::ResyncRequired(_)
        ));
        // From the beginning is always possible.
        assert_eq!(resume_verdict(0, o, n), Resume::Replay);
        // An empty outbox: only 0 is a known position.
        assert_eq!(resume_verdict(0, None, None), Resume::Replay);
        assert!(matches!(
            resume_verdict(3, None, None),
            Resume::ResyncRequired(_)
        ));
    }
}
