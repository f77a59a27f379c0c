//! The ingestion pipeline: what becomes of a sensor's submission, whether it
//! came over HTTP (the threats component) or MQTT (the relay). Both call the
//! same two steps, so the same batch gives the same rows either way:
//!
//! 1. [`validate`]: each item checked on its own (schema, then the rules of
//!    [`crate::event`]); no database.
//! 2. [`commit`], inside the caller's `BEGIN IMMEDIATE` transaction: drop
//!    duplicates, score with the sources' recent activity, group alerts, and
//!    write events, alerts, outbox rows, the metrics rollups
//!    (`vigil_core::rollup`), the sender's liveness and the audit entry, in a
//!    fixed handful of statements whatever the batch's size (each is a round
//!    trip on a libSQL server).

use std::collections::{HashMap, HashSet};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use vigil_core::audit::{self, Actor};
use vigil_core::id::new_ordered_id;
use vigil_core::sql::{Columns, Row, Sql, Value, insert_rows, opt_int, opt_text, text};
use vigil_core::wire::wire;
use vigil_core::{ApiError, FieldError, Principal, outbox, rollup};

use crate::alert;
use crate::classify::{AddressClass, Zone, ZoneMap, classify};
use crate::event::{Event, RawEvent, Severity};
use crate::geo::{Geo, GeoLookup};
use crate::repeat::RecentBySource;
use crate::score::{REPEATS_THAT_COUNT, Score, score};
use crate::sensor;

/// Most events in one submission.
pub const MAX_BATCH: usize = 1000;

/// One event, or a batch.
#[derive(Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Submission {
    Batch {
        #[schemars(length(max = 1000))]
        events: Vec<serde_json::Value>,
    },
    One(serde_json::Map<String, serde_json::Value>),
}

impl Submission {
    /// The submitted items; more than [`MAX_BATCH`] is a 413.
    pub fn items(self) -> Result<Vec<serde_json::Value>, ApiError> {
        let items = match self {
            Submission::Batch { events } => events,
            Submission::One(event) => vec![serde_json::Value::Object(event)],
        };
        if items.len() > MAX_BATCH {
            return Err(ApiError::new(413, "payload-too-large", "Payload too large")
                .with_detail(format!("at most {MAX_BATCH} events per request")));
        }
        Ok(items)
    }
}

#[derive(Clone, Serialize, JsonSchema)]
pub struct Accepted {
    pub index: usize,
    #[schemars(extend("format" = "uuid"))]
    pub id: String,
    pub event_id: String,
    pub score: u8,
    pub severity: Severity,
    pub alert_id: Option<String>,
}

#[derive(Clone, Serialize, JsonSchema)]
pub struct Duplicate {
    pub index: usize,
    pub event_id: String,
}

#[derive(Clone, Serialize, JsonSchema)]
pub struct Rejected {
    pub index: usize,
    pub errors: Vec<FieldError>,
}

/// What became of each item of a submission.
#[derive(Clone, Serialize, JsonSchema, Default)]
pub struct Outcome {
    pub accepted: Vec<Accepted>,
    pub duplicates: Vec<Duplicate>,
    pub rejected: Vec<Rejected>,
    /// Alerts this submission opened (automatic playbooks answer them).
    #[serde(skip)]
    pub opened: Vec<String>,
}

/// The valid events of a submission, with their positions in it; the
/// outcome so far holds the rejected ones.
pub struct Validated {
    pub valid: Vec<(usize, Event)>,
    pub outcome: Outcome,
}

/// Check each item on its own: a bad one is rejected with its field paths
/// (`events[3].source_ip`) and the rest go on.
pub fn validate(items: Vec<serde_json::Value>, now: i64, retention_ms: i64) -> Validated {
    let mut validated = Validated {
        valid: Vec::new(),
        outcome: Outcome::default(),
    };
    for (index, item) in items.into_iter().enumerate() {
        let path = format!("events[{index}]");
        let checked = serde_path_to_error::deserialize::<_, RawEvent>(item)
            .map_err(|e| {
                // The path is "." when the item itself is wrong (not an object, a missing field).
                let field = match e.path().to_string().as_str() {
                    "." => path.clone(),
                    inner => format!("{path}.{inner}"),
                };
                vec![FieldError {
                    field,
                    message: e.inner().to_string(),
                }]
            })
            .and_then(|raw| crate::event::validate(raw, now, retention_ms, &path));
        match checked {
            Ok(event) => validated.valid.push((index, event)),
            Err(errors) => validated.outcome.rejected.push(Rejected { index, errors }),
        }
    }
    validated
}

impl Validated {
    /// A sensor's key may only submit its own events (403 naming both).
    pub fn check_sender(&self, speaks_for: Option<&str>) -> Result<(), ApiError> {
        if let Some(sensor) = speaks_for
            && let Some((_, e)) = self.valid.iter().find(|(_, e)| e.sensor_id != sensor)
        {
            return Err(
                ApiError::new(403, "forbidden", "Forbidden").with_detail(format!(
                    "this key speaks for sensor {sensor:?}, not {:?}",
                    e.sensor_id
                )),
            );
        }
        Ok(())
    }

    /// Record who ingested every valid event (a decision's submitters
    /// include them: no one approves what their own events asked for).
    pub fn ingested_by(&mut self, actor: &Actor) {
        for (_, event) in &mut self.valid {
            event.ingested_by = Some(actor.actor.clone());
        }
    }

    /// Each valid event's row, as far as it is known before the write lock.
    pub fn prepare<'a>(&'a self, storing: &'a Storing) -> Vec<Prepared<'a>> {
        prepare(storing, &self.valid)
    }

    /// The answer when nothing was valid (a 422 with every item's errors).
    pub fn finish(self) -> Result<Outcome, ApiError> {
        self.outcome.finish()
    }
}

impl Outcome {
    /// The answer, once committed: a submission with nothing accepted and
    /// nothing already stored is a 422 with every item's errors.
    pub fn finish(mut self) -> Result<Outcome, ApiError> {
        if self.accepted.is_empty() && self.duplicates.is_empty() {
            return Err(ApiError::validation(
                self.rejected.into_iter().flat_map(|r| r.errors).collect(),
            ));
        }
        self.rejected.sort_by_key(|r| r.index);
        Ok(self)
    }
}

/// How events are stored: the destination zones, the alert grouping window,
/// and the GeoIP databases.
pub struct Storing {
    pub zones: ZoneMap,
    pub alert_window_ms: i64,
    pub geo: GeoLookup,
}

/// Who submitted: the sensor a key speaks for (`None` for users), and the
/// actor the audit log records.
pub struct Sender<'a> {
    pub sensor: Option<&'a str>,
    pub actor: &'a Actor,
}

/// The sensor an API key speaks for (`None` for users, who may submit for
/// any sensor).
pub async fn speaks_for(db: &impl Sql, who: &Principal) -> Result<Option<String>, ApiError> {
    if who.role.is_some() {
        return Ok(None);
    }
    let rows = db
        .query(
            "SELECT sensor_id FROM api_keys WHERE id = ?1",
            &[Value::Text(who.token_id.clone())],
        )
        .await?;
    Ok(Some(
        rows.first().and_then(|r| text(r, 0)).unwrap_or_default(),
    ))
}

/// Store the valid events (`prepared` from `validated` by
/// [`Validated::prepare`]) inside the caller's write transaction: the write
/// lock is held throughout, so what was read stays true until the commit.
/// Returns the whole outcome (the rejected items of `validated` with what
/// became of the valid ones); nothing of the inputs changes, so a
/// transaction the database interrupted can simply be run again.
pub async fn commit(
    db: &impl Sql,
    storing: &Storing,
    sender: &Sender<'_>,
    validated: &Validated,
    prepared: &[Prepared<'_>],
    now: i64,
) -> Result<Outcome, ApiError> {
    let mut outcome = validated.outcome.clone();
    let Some(first) = prepared.first() else {
        return Ok(outcome);
    };
    store(db, storing, prepared, &mut outcome, now).await?;
    record_sender(db, sender, &first.event.sensor_id, &outcome, now).await?;
    Ok(outcome)
}

/// What a submission leaves besides its events: a sensor sending its own
/// events is alive, heartbeat or not; and one audit entry with the counts.
pub async fn record_sender(
    db: &impl Sql,
    sender: &Sender<'_>,
    subject_sensor: &str,
    outcome: &Outcome,
    now: i64,
) -> Result<(), ApiError> {
    if let Some(sensor) = sender.sensor {
        // Events from an unregistered id are stored all the same.
        sensor::heard_from(db, sender.actor, sensor, None, now).await?;
    }
    let mut entry = sender
        .actor
        .entry("threats.ingested", "sensor_batch", subject_sensor, now);
    entry.after = Some(serde_json::json!({"accepted": outcome.accepted.len(), "duplicates": outcome.duplicates.len(), "rejected": outcome.rejected.len()}).to_string());
    audit::append(db, &entry).await.map(drop)
}

/// What an event's row holds that depends on the event alone: worked out
/// before the write lock ([`prepare`]), so that the lock is held only for
/// what depends on the database (duplicates, repeats, alerts) and the writes.
pub struct Prepared<'a> {
    /// The event's position in its submission.
    pub index: usize,
    pub event: &'a Event,
    id: String,
    source: String,
    source_class: String,
    dest: Option<String>,
    zone: Option<&'a Zone>,
    geo: Geo,
    event_type: String,
    payload: String,
    tags: String,
}

/// Prepare the rows of `valid` (of any sensors; see [`Prepared`]).
pub fn prepare<'a>(s: &'a Storing, valid: &'a [(usize, Event)]) -> Vec<Prepared<'a>> {
    valid
        .iter()
        .map(|(index, event)| {
            let source_class = classify(event.source_ip);
            Prepared {
                index: *index,
                event,
                id: new_ordered_id(),
                source: event.source_ip.to_string(),
                source_class: wire(&source_class),
                dest: event.dest_ip.map(|ip| ip.to_string()),
                zone: event.dest_ip.and_then(|ip| s.zones.zone_of(ip)),
                geo: match source_class {
                    AddressClass::Public => s.geo.lookup(event.source_ip),
                    _ => Geo::default(),
                },
                event_type: wire(&event.event_type),
                payload: serde_json::Value::Object(event.payload.clone()).to_string(),
                tags: serde_json::to_string(&event.tags).expect("serializes"),
            }
        })
        .collect()
}

/// Store prepared events in a fixed handful of statements: which exist
/// already, the sources' recent activity, the unresolved alerts of the
/// events' groups, then multi-row writes of events, alerts and outbox rows.
/// `outcome` gets each event's fate, by its index.
pub async fn store(
    db: &impl Sql,
    s: &Storing,
    prepared: &[Prepared<'_>],
    outcome: &mut Outcome,
    now: i64,
) -> Result<(), ApiError> {
    let stored = already_stored(db, prepared).await?;
    let mut seen = HashSet::new();
    let mut fresh: Vec<&Prepared> = Vec::new();
    for p in prepared {
        let key = (p.event.sensor_id.clone(), p.event.event_id.clone());
        if stored.contains(&key) || !seen.insert(key) {
            outcome.duplicates.push(Duplicate {
                index: p.index,
                event_id: p.event.event_id.clone(),
            });
        } else {
            fresh.push(p);
        }
    }
    let mut recent = recent_activity(db, &fresh).await?;
    // Each fresh event's score, in batch order (the repeat factor counts the
    // batch's earlier events too).
    let scores: Vec<Score> = fresh
        .iter()
        .map(|p| {
            let scored = score(
                p.event,
                p.zone.map(|z| z.criticality),
                recent.count(&p.source, p.event.observed_at_ms),
            );
            recent.record(&p.source, p.event.observed_at_ms);
            scored
        })
        .collect();
    let (positions, raising): (Vec<usize>, Vec<alert::Raising>) = fresh
        .iter()
        .zip(&scores)
        .enumerate()
        .filter(|(_, (_, scored))| alert::raises_alert(scored.severity))
        .map(|(i, (p, scored))| {
            (
                i,
                alert::Raising {
                    event: p.event,
                    score: scored.score,
                    severity: scored.severity,
                },
            )
        })
        .unzip();
    let unresolved = unresolved_alerts(db, &raising).await?;
    let grouping = alert::group(&raising, &unresolved, s.alert_window_ms, new_ordered_id);
    let mut alert_of: Vec<Option<&str>> = vec![None; fresh.len()];
    for (position, touched) in positions.iter().zip(&grouping.alert_of) {
        alert_of[*position] = Some(grouping.touched[*touched].id.as_str());
    }
    let mut outbox = write_alerts(db, &grouping, &raising, now).await?;
    outcome.opened.extend(
        grouping
            .touched
            .iter()
            .filter(|a| a.opened)
            .map(|a| a.id.clone()),
    );

    let mut rows: Vec<Row> = Vec::with_capacity(fresh.len());
    let mut samples: Vec<rollup::EventSample> = Vec::with_capacity(fresh.len());
    let severities: Vec<String> = scores.iter().map(|s| wire(&s.severity)).collect();
    for (((p, scored), severity), alert_id) in
        fresh.iter().zip(&scores).zip(&severities).zip(alert_of)
    {
        let event = p.event;
        rows.push(vec![
            Value::Text(p.id.clone()),
            Value::Text(event.sensor_id.clone()),
            Value::Text(event.event_id.clone()),
            Value::Integer(event.observed_at_ms),
            Value::Integer(now),
            Value::Text(p.event_type.clone()),
            Value::Text(p.source.clone()),
            Value::Text(p.source_class.clone()),
            opt_int(event.source_port),
            opt_text(p.dest.as_deref()),
            opt_int(event.dest_port),
            opt_text(p.zone.map(|z| z.name.as_str())),
            opt_text(event.protocol.as_deref()),
            opt_text(event.event_type.technique().map(|t| t.id)),
            Value::Integer(scored.score.into()),
            Value::Text(severity.clone()),
            Value::Text(serde_json::to_string(&scored.breakdown).expect("serializes")),
            Value::Real(event.confidence),
            Value::Text(p.payload.clone()),
            Value::Text(p.tags.clone()),
            opt_text(alert_id),
            opt_text(p.geo.country.as_deref()),
            opt_int(p.geo.asn),
            opt_text(p.geo.as_org.as_deref()),
            opt_text(event.ingested_by.as_deref()),
        ]);
        samples.push(rollup::EventSample {
            observed_at: event.observed_at_ms,
            sensor_id: &event.sensor_id,
            event_type: &p.event_type,
            severity,
            zone: p.zone.map(|z| z.name.as_str()),
            country: p.geo.country.as_deref(),
            score: scored.score.into(),
        });
        outbox.push(outbox::row(
            "threat.created",
            &serde_json::json!({"id": p.id, "sensor_id": event.sensor_id, "event_type": event.event_type, "source_ip": p.source, "score": scored.score, "severity": scored.severity, "alert_id": alert_id}),
            now,
        ));
        outcome.accepted.push(Accepted {
            index: p.index,
            id: p.id.clone(),
            event_id: event.event_id.clone(),
            score: scored.score,
            severity: scored.severity,
            alert_id: alert_id.map(str::to_string),
        });
    }
    insert_rows(
        db,
        "INSERT INTO threat_events (id, sensor_id, event_id, observed_at, received_at, event_type, source_ip, source_class,
                                    source_port, dest_ip, dest_port, dest_zone, protocol, technique, score, severity,
                                    breakdown, confidence, payload, tags, alert_id, source_country, source_asn, source_as_org,
                                    ingested_by)
         VALUES ",
        rows,
    )
    .await?;
    rollup::add_events(db, &samples).await?;
    outbox::publish_all(db, outbox).await
}

/// The unresolved alert with the latest event of each group the raising
/// events belong to, in one statement.
async fn unresolved_alerts(
    db: &impl Sql,
    raising: &[alert::Raising<'_>],
) -> Result<HashMap<String, alert::Unresolved>, ApiError> {
    let keys: HashSet<String> = raising.iter().map(|r| alert::group_key(r.event)).collect();
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    static UNRESOLVED: Columns = Columns::new("group_key, id, last_seen");
    let rows = db
        .query(
            &format!(
                "SELECT {UNRESOLVED} FROM alerts
                  WHERE group_key IN (SELECT value FROM json_each(?1)) AND status != 'resolved'"
            ),
            &[Value::Text(
                serde_json::to_string(&keys).expect("serializes"),
            )],
        )
        .await?;
    let mut latest: HashMap<String, alert::Unresolved> = HashMap::new();
    for row in &rows {
        let row = UNRESOLVED.row(row);
        let (Some(key), Some(id), Some(last_seen_ms)) =
            (row.text("group_key"), row.text("id"), row.int("last_seen"))
        else {
            continue;
        };
        if latest
            .get(&key)
            .is_none_or(|u| u.last_seen_ms < last_seen_ms)
        {
            latest.insert(key, alert::Unresolved { id, last_seen_ms });
        }
    }
    Ok(latest)
}

/// Write what the batch did to alerts: the opened ones in multi-row
/// inserts, the joined ones in one update; return the outbox rows to
/// publish with the batch (`alert.opened`, `alert.updated`), one per alert.
async fn write_alerts(
    db: &impl Sql,
    grouping: &alert::Grouping,
    raising: &[alert::Raising<'_>],
    now: i64,
) -> Result<Vec<Row>, ApiError> {
    let mut outbox = Vec::new();
    let mut opened = Vec::new();
    let mut joined = Vec::new();
    for a in &grouping.touched {
        let payload = serde_json::json!({"id": a.id, "severity": a.severity, "score": a.max_score, "events": a.event_count});
        if a.opened {
            let first = raising[a.first_event].event;
            opened.push(vec![
                Value::Text(a.id.clone()),
                Value::Text(a.group_key.clone()),
                Value::Text("open".into()),
                Value::Text(first.source_ip.to_string()),
                Value::Text(wire(&first.event_type)),
                Value::Text(first.sensor_id.clone()),
                Value::Text(wire(&a.severity)),
                Value::Integer(a.max_score.into()),
                Value::Integer(a.event_count),
                Value::Integer(a.first_seen_ms),
                Value::Integer(a.last_seen_ms),
                Value::Integer(1),
                Value::Integer(now),
                Value::Integer(now),
                Value::Text(wire(&a.severity)),
            ]);
            outbox.push(outbox::row("alert.opened", &payload, now));
        } else {
            joined.push(serde_json::json!([
                a.id,
                a.event_count,
                a.first_seen_ms,
                a.last_seen_ms,
                a.max_score,
                wire(&a.severity)
            ]));
            outbox.push(outbox::row("alert.updated", &payload, now));
        }
    }
    let changes: Vec<rollup::AlertChange> = opened
        .iter()
        .map(|row| rollup::AlertChange::Opened {
            at: now,
            severity: match &row[6] {
                Value::Text(severity) => severity,
                _ => "",
            },
        })
        .collect();
    rollup::add_alert_changes(db, &changes).await?;
    insert_rows(
        db,
        "INSERT INTO alerts (id, group_key, status, source_ip, event_type, sensor_id, severity, max_score,
                             event_count, first_seen, last_seen, version, created_at, updated_at, opened_severity) VALUES ",
        opened,
    )
    .await?;
    if !joined.is_empty() {
        // [id, events, first seen, last seen, max score, its severity] per joined alert.
        db.query(
            "UPDATE alerts SET event_count = event_count + u.value ->> 1,
                    first_seen = min(first_seen, u.value ->> 2), last_seen = max(last_seen, u.value ->> 3),
                    severity = CASE WHEN u.value ->> 4 > max_score THEN u.value ->> 5 ELSE severity END,
                    max_score = max(max_score, u.value ->> 4),
                    version = version + 1, updated_at = ?2
               FROM json_each(?1) AS u
              WHERE alerts.id = u.value ->> 0",
            &[
                Value::Text(serde_json::Value::Array(joined).to_string()),
                Value::Integer(now),
            ],
        )
        .await?;
    }
    Ok(outbox)
}

/// Which (sensor, event id) pairs of the batch are stored already.
async fn already_stored(
    db: &impl Sql,
    prepared: &[Prepared<'_>],
) -> Result<HashSet<(String, String)>, ApiError> {
    let pairs: Vec<[&str; 2]> = prepared
        .iter()
        .map(|p| [p.event.sensor_id.as_str(), p.event.event_id.as_str()])
        .collect();
    static STORED: Columns = Columns::new("t.sensor_id, t.event_id");
    let rows = db
        .query(
            &format!(
                "SELECT {STORED} FROM json_each(?1) AS j
                   JOIN threat_events AS t ON t.sensor_id = j.value ->> 0 AND t.event_id = j.value ->> 1"
            ),
            &[Value::Text(
                serde_json::to_string(&pairs).expect("serializes"),
            )],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| STORED.row(r))
        .filter_map(|r| Some((r.text("t.sensor_id")?, r.text("t.event_id")?)))
        .collect())
}

/// The latest observation times of each source of the batch: as many as
/// can change a score, in one statement.
async fn recent_activity(
    db: &impl Sql,
    fresh: &[&Prepared<'_>],
) -> Result<RecentBySource, ApiError> {
    let sources: HashSet<&str> = fresh.iter().map(|p| p.source.as_str()).collect();
    if sources.is_empty() {
        return Ok(RecentBySource::default());
    }
    static LATEST: Columns = Columns::new(
        "j.value AS source, (SELECT json_group_array(observed_at) FROM \
            (SELECT observed_at FROM threat_events WHERE source_ip = j.value \
             ORDER BY observed_at DESC LIMIT ?2)) AS times",
    );
    let rows = db
        .query(
            &format!("SELECT {LATEST} FROM json_each(?1) AS j"),
            &[
                Value::Text(serde_json::to_string(&sources).expect("serializes")),
                Value::Integer(REPEATS_THAT_COUNT.into()),
            ],
        )
        .await?;
    Ok(RecentBySource::new(rows.iter().filter_map(|r| {
        let r = LATEST.row(r);
        let times: Vec<i64> = serde_json::from_str(&r.text("times")?).ok()?;
        Some((r.text("source")?, times))
    })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_db::Target;
    use vigil_db::sql::LibsqlSql;

    /// An hour after the events were observed.
    const NOW: i64 = 1_790_010_000_000;

    async fn migrated() -> (tempfile::TempDir, libsql::Connection) {
        let dir = tempfile::tempdir().unwrap();
        let target = Target::Local(dir.path().join("v.db"));
        vigil_db::migrations::migrate(&target, &vigil_db::migrations::embedded())
            .await
            .unwrap();
        let conn = target.connect().await.unwrap();
        conn.execute(
            "INSERT INTO sensors (id, name, kind, version, created_by, created_at, updated_at)
             VALUES ('s1', 'edge', 'honeypot', 1, 'test', 0, 0)",
            (),
        )
        .await
        .unwrap();
        (dir, conn)
    }

    fn event(id: &str, event_type: &str, source: &str) -> serde_json::Value {
        serde_json::json!({
            "sensor_id": "s1", "event_id": id, "event_type": event_type,
            "observed_at": "2026-09-21T15:00:00Z", "source_ip": source, "dest_ip": "10.0.0.5",
            "payload": {"note": "x"},
        })
    }

    fn storing() -> Storing {
        Storing {
            zones: ZoneMap::parse("10.0.0.0/8=ot:critical").unwrap(),
            alert_window_ms: 15 * 60 * 1000,
            geo: GeoLookup::new(vec![], |_| {}),
        }
    }

    async fn submit(conn: &libsql::Connection, items: Vec<serde_json::Value>) -> Outcome {
        let actor = Actor {
            actor: "key:k1".into(),
            request_id: None,
            client_addr: None,
        };
        let sender = Sender {
            sensor: Some("s1"),
            actor: &actor,
        };
        let mut validated = validate(items, NOW, 90 * 24 * 3600 * 1000);
        validated.check_sender(sender.sensor).unwrap();
        validated.ingested_by(&actor);
        conn.execute("BEGIN IMMEDIATE", ()).await.unwrap();
        let storing = storing();
        let prepared = validated.prepare(&storing);
        let outcome = commit(
            &LibsqlSql(conn),
            &storing,
            &sender,
            &validated,
            &prepared,
            NOW,
        )
        .await
        .unwrap();
        conn.execute("COMMIT", ()).await.unwrap();
        outcome.finish().unwrap()
    }

    async fn count(conn: &libsql::Connection, sql: &str) -> i64 {
        vigil_db::target::query_i64(conn, sql, ())
            .await
            .unwrap()
            .unwrap()
    }

    #[tokio::test]
    async fn a_batch_becomes_events_alerts_outbox_rows_and_one_audit_entry() {
        let (_dir, conn) = migrated().await;
        let outcome = submit(
            &conn,
            vec![
                event("e1", "exploit_attempt", "203.0.113.9"),
                event("e2", "exploit_attempt", "203.0.113.9"),
                serde_json::json!({"sensor_id": "s1"}),
                event("e3", "http_probe", "192.168.1.4"),
            ],
        )
        .await;
        assert_eq!(outcome.accepted.len(), 3);
        assert_eq!(outcome.rejected.len(), 1);
        assert_eq!(outcome.rejected[0].index, 2);
        assert_eq!(count(&conn, "SELECT count(*) FROM threat_events").await, 3);
        // Both exploit attempts of one source share one alert.
        assert!(outcome.accepted[0].alert_id.is_some());
        assert_eq!(outcome.accepted[0].alert_id, outcome.accepted[1].alert_id);
        let alerts = count(&conn, "SELECT count(*) FROM alerts").await;
        let raised: HashSet<_> = outcome
            .accepted
            .iter()
            .filter_map(|a| a.alert_id.clone())
            .collect();
        assert_eq!(alerts as usize, raised.len());
        assert_eq!(outcome.opened.len(), raised.len());
        assert_eq!(
            count(
                &conn,
                "SELECT count(*) FROM events WHERE type = 'threat.created'"
            )
            .await,
            3
        );
        assert_eq!(
            count(
                &conn,
                "SELECT count(*) FROM events WHERE type = 'alert.opened'"
            )
            .await,
            alerts
        );
        // The sensor came online: audited and published once, with the batch's entry.
        assert_eq!(
            count(
                &conn,
                "SELECT count(*) FROM events WHERE type = 'sensor.status'"
            )
            .await,
            1
        );
        assert_eq!(
            count(&conn, "SELECT count(*) FROM audit_log WHERE action IN ('threats.ingested', 'sensor.status')").await,
            2
        );
        assert_eq!(
            count(
                &conn,
                "SELECT count(*) FROM sensors WHERE published_status = 'online'"
            )
            .await,
            1
        );
    }

    #[tokio::test]
    async fn a_redelivered_batch_is_all_duplicates_and_writes_no_event() {
        let (_dir, conn) = migrated().await;
        let batch = vec![
            event("e1", "port_scan", "198.51.100.7"),
            event("e1", "port_scan", "198.51.100.7"),
        ];
        let first = submit(&conn, batch.clone()).await;
        assert_eq!((first.accepted.len(), first.duplicates.len()), (1, 1));
        let outbox = count(&conn, "SELECT count(*) FROM events").await;
        let again = submit(&conn, batch).await;
        assert_eq!((again.accepted.len(), again.duplicates.len()), (0, 2));
        assert_eq!(count(&conn, "SELECT count(*) FROM threat_events").await, 1);
        assert_eq!(count(&conn, "SELECT count(*) FROM events").await, outbox);
    }

    #[tokio::test]
    async fn a_later_batch_joins_the_open_alert_of_its_group() {
        let (_dir, conn) = migrated().await;
        let first = submit(&conn, vec![event("e1", "exploit_attempt", "203.0.113.9")]).await;
        let second = submit(&conn, vec![event("e2", "exploit_attempt", "203.0.113.9")]).await;
        let alert = first.accepted[0].alert_id.clone().expect("raises an alert");
        assert_eq!(second.accepted[0].alert_id.as_deref(), Some(alert.as_str()));
        assert_eq!(count(&conn, "SELECT event_count FROM alerts").await, 2);
        assert_eq!(
            count(
                &conn,
                "SELECT count(*) FROM events WHERE type = 'alert.updated'"
            )
            .await,
            1
        );
    }

    #[test]
    fn a_key_cannot_submit_another_sensors_events_and_all_bad_is_a_422() {
        let validated = validate(
            vec![event("e1", "port_scan", "198.51.100.7")],
            NOW,
            i64::MAX / 2,
        );
        assert_eq!(validated.check_sender(Some("s2")).unwrap_err().status, 403);
        assert!(validated.check_sender(None).is_ok());
        let bad = validate(vec![serde_json::json!({"sensor_id": 3})], NOW, 1000);
        let Err(err) = bad.finish() else {
            panic!("nothing valid is a 422")
        };
        assert_eq!(err.status, 422);
        assert!(err.errors[0].field.starts_with("events[0]"));
    }
}
