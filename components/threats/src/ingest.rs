//! `POST /api/threats/events`: one event, or `{"events": [...]}` (up to
//! 1,000). Each item is validated on its own; the valid ones are scored and
//! committed together, with their alerts and outbox rows, in one transaction.

use std::collections::{HashMap, HashSet};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use spin_sdk::http::Response;
use spin_sdk::sqlite::{Connection, Value};
use vigil_api::{ApiError, Ctx, FieldError, db, response};
use vigil_core::id::new_ordered_id;
use vigil_core::time::now_millis;
use vigil_core::wire::wire;
use vigil_ingest::alert;
use vigil_ingest::classify::{AddressClass, Zone, ZoneMap, classify};
use vigil_ingest::event::{Event, RawEvent, Severity, validate};
use vigil_ingest::geo::Geo;
use vigil_ingest::repeat::RecentBySource;
use vigil_ingest::score::{REPEATS_THAT_COUNT, Score, score};

use crate::geo::GeoLookup;
use crate::settings;

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

#[derive(Serialize, JsonSchema)]
pub struct Accepted {
    index: usize,
    #[schemars(extend("format" = "uuid"))]
    id: String,
    event_id: String,
    score: u8,
    severity: Severity,
    alert_id: Option<String>,
}

#[derive(Serialize, JsonSchema)]
pub struct Duplicate {
    index: usize,
    event_id: String,
}

#[derive(Serialize, JsonSchema)]
pub struct Rejected {
    index: usize,
    errors: Vec<FieldError>,
}

#[derive(Serialize, JsonSchema, Default)]
pub struct Outcome {
    accepted: Vec<Accepted>,
    duplicates: Vec<Duplicate>,
    rejected: Vec<Rejected>,
    /// Alerts this request opened (playbooks answer them after the commit).
    #[serde(skip)]
    opened: Vec<String>,
}

/// The sensor an API key speaks for (`None` for users).
pub fn own_sensor(conn: &Connection, ctx: &Ctx) -> Result<Option<String>, ApiError> {
    let who = ctx.principal();
    if who.role.is_some() {
        return Ok(None);
    }
    let rows = db::query(
        conn,
        "SELECT sensor_id FROM api_keys WHERE id = ?1",
        &[Value::Text(who.token_id.clone())],
    )?;
    Ok(Some(
        rows.first()
            .and_then(|r| db::text(r, 0))
            .unwrap_or_default(),
    ))
}

pub fn post(ctx: &mut Ctx) -> Result<Response, ApiError> {
    let submission: Submission = ctx.json()?;
    let items = match submission {
        Submission::Batch { events } => events,
        Submission::One(event) => vec![serde_json::Value::Object(event)],
    };
    if items.len() > MAX_BATCH {
        return Err(ApiError::new(413, "payload-too-large", "Payload too large")
            .with_detail(format!("at most {MAX_BATCH} events per request")));
    }
    let now = now_millis();
    let zones = ZoneMap::parse(&settings::zones()).map_err(|why| {
        vigil_api::log::line(
            serde_json::json!({"level": "error", "msg": "threat_zones is invalid", "why": why}),
        );
        ApiError::internal()
    })?;
    let (retention, window) = (settings::retention_ms(), settings::alert_window_ms());
    let mut outcome = Outcome::default();
    let mut valid: Vec<(usize, Event)> = Vec::new();
    for (index, item) in items.into_iter().enumerate() {
        let path = format!("events[{index}]");
        let raw: Result<RawEvent, _> = serde_path_to_error::deserialize(item);
        match raw {
            Err(e) => outcome.rejected.push(Rejected {
                index,
                errors: vec![FieldError {
                    field: format!("{path}.{}", e.path()),
                    message: e.inner().to_string(),
                }],
            }),
            Ok(raw) => match validate(raw, now, retention, &path) {
                Ok(event) => valid.push((index, event)),
                Err(errors) => outcome.rejected.push(Rejected { index, errors }),
            },
        }
    }
    let conn = db::open()?;
    let speaks_for = own_sensor(conn, ctx)?;
    if let Some(sensor) = &speaks_for
        && let Some((_, e)) = valid.iter().find(|(_, e)| &e.sensor_id != sensor)
    {
        return Err(
            ApiError::new(403, "forbidden", "Forbidden").with_detail(format!(
                "this key speaks for sensor {sensor:?}, not {:?}",
                e.sensor_id
            )),
        );
    }
    if !valid.is_empty() {
        db::transaction(conn, |conn| {
            let mut storing = Storing {
                zones: &zones,
                window,
                now,
                geo: GeoLookup::default(),
            };
            store_all(conn, &mut storing, &valid, &mut outcome)?;
            // A sensor sending its own events is alive, heartbeat or not.
            if let Some(sensor) = &speaks_for {
                crate::sensors::heard_from(conn, ctx, sensor, None, now)?;
            }
            let mut entry = ctx.audit_entry(
                "threats.ingested",
                "sensor_batch",
                &valid[0].1.sensor_id,
                now,
            );
            entry.after = Some(serde_json::json!({"accepted": outcome.accepted.len(), "duplicates": outcome.duplicates.len(), "rejected": outcome.rejected.len()}).to_string());
            vigil_api::audit::append(conn, &entry)
        })?;
    }
    if outcome.accepted.is_empty() && outcome.duplicates.is_empty() {
        return Err(ApiError::validation(
            outcome
                .rejected
                .into_iter()
                .flat_map(|r| r.errors)
                .collect(),
        ));
    }
    if !outcome.opened.is_empty() {
        crate::playbooks::run_automatic(conn, ctx, &outcome.opened);
    }
    outcome.rejected.sort_by_key(|r| r.index);
    Ok(response::json(200, &outcome))
}

/// How this request stores events: the zone map, the grouping window, the
/// clock, and the GeoIP databases.
struct Storing<'a> {
    zones: &'a ZoneMap,
    window: i64,
    now: i64,
    geo: GeoLookup,
}

/// Rows per multi-row `INSERT` (24 parameters each: 2,400 stay far below SQLite's
/// and libSQL's parameter limits).
const ROWS_PER_INSERT: usize = 100;

/// Store the valid events of a batch inside the caller's transaction, with
/// a fixed handful of statements whatever its size: which events exist
/// already, the sources' recent activity, the unresolved alerts of the
/// batch's groups, then multi-row writes of events, alerts and outbox rows.
/// The write lock is held throughout, so what was read stays true until the
/// commit.
fn store_all(
    conn: &Connection,
    s: &mut Storing,
    valid: &[(usize, Event)],
    outcome: &mut Outcome,
) -> Result<(), ApiError> {
    let stored = already_stored(conn, valid)?;
    let mut seen = HashSet::new();
    let mut fresh: Vec<(usize, &Event)> = Vec::new();
    for (index, event) in valid {
        let key = (event.sensor_id.clone(), event.event_id.clone());
        if stored.contains(&key) || !seen.insert(key) {
            outcome.duplicates.push(Duplicate {
                index: *index,
                event_id: event.event_id.clone(),
            });
        } else {
            fresh.push((*index, event));
        }
    }
    let mut recent = recent_activity(conn, &fresh)?;
    // Each fresh event's destination zone and score, in batch order (the
    // repeat factor counts the batch's earlier events too).
    let scores: Vec<(Option<&Zone>, Score)> = fresh
        .iter()
        .map(|(_, event)| {
            let source = event.source_ip.to_string();
            let zone = event.dest_ip.and_then(|ip| s.zones.zone_of(ip));
            let scored = score(
                event,
                zone.map(|z| z.criticality),
                recent.count(&source, event.observed_at_ms),
            );
            recent.record(&source, event.observed_at_ms);
            (zone, scored)
        })
        .collect();
    let raising: Vec<(usize, alert::Raising)> = fresh
        .iter()
        .zip(&scores)
        .enumerate()
        .filter(|(_, (_, (_, scored)))| alert::raises_alert(scored.severity))
        .map(|(i, ((_, event), (_, scored)))| {
            (
                i,
                alert::Raising {
                    event,
                    score: scored.score,
                    severity: scored.severity,
                },
            )
        })
        .collect();
    let (positions, raising): (Vec<usize>, Vec<alert::Raising>) = raising.into_iter().unzip();
    let unresolved = unresolved_alerts(conn, &raising)?;
    let grouping = alert::group(&raising, &unresolved, s.window, new_ordered_id);
    let mut alert_of: Vec<Option<&str>> = vec![None; fresh.len()];
    for (position, touched) in positions.iter().zip(&grouping.alert_of) {
        alert_of[*position] = Some(grouping.touched[*touched].id.as_str());
    }
    let mut outbox = write_alerts(conn, &grouping, &raising, s.now)?;
    outcome.opened.extend(
        grouping
            .touched
            .iter()
            .filter(|a| a.opened)
            .map(|a| a.id.clone()),
    );

    let mut rows: Vec<Vec<Value>> = Vec::with_capacity(fresh.len());
    for (((index, event), (zone, scored)), alert_id) in fresh.into_iter().zip(scores).zip(alert_of)
    {
        let id = new_ordered_id();
        let source = event.source_ip.to_string();
        let source_class = classify(event.source_ip);
        let geo = if source_class == AddressClass::Public {
            s.geo.lookup(event.source_ip)
        } else {
            Geo::default()
        };
        rows.push(vec![
            Value::Text(id.clone()),
            Value::Text(event.sensor_id.clone()),
            Value::Text(event.event_id.clone()),
            Value::Integer(event.observed_at_ms),
            Value::Integer(s.now),
            Value::Text(wire(&event.event_type)),
            Value::Text(source.clone()),
            Value::Text(wire(&source_class)),
            event
                .source_port
                .map_or(Value::Null, |p| Value::Integer(p.into())),
            db::opt_text(event.dest_ip.map(|ip| ip.to_string()).as_deref()),
            event
                .dest_port
                .map_or(Value::Null, |p| Value::Integer(p.into())),
            db::opt_text(zone.map(|z| z.name.as_str())),
            db::opt_text(event.protocol.as_deref()),
            db::opt_text(event.event_type.technique().map(|t| t.id)),
            Value::Integer(scored.score.into()),
            Value::Text(wire(&scored.severity)),
            Value::Text(serde_json::to_string(&scored.breakdown).expect("serializes")),
            Value::Real(event.confidence),
            Value::Text(serde_json::Value::Object(event.payload.clone()).to_string()),
            Value::Text(serde_json::to_string(&event.tags).expect("serializes")),
            db::opt_text(alert_id),
            db::opt_text(geo.country.as_deref()),
            geo.asn.map_or(Value::Null, |a| Value::Integer(a.into())),
            db::opt_text(geo.as_org.as_deref()),
        ]);
        outbox.push(outbox_row(
            "threat.created",
            &serde_json::json!({"id": id, "sensor_id": event.sensor_id, "event_type": event.event_type, "source_ip": source, "score": scored.score, "severity": scored.severity, "alert_id": alert_id}),
            s.now,
        ));
        outcome.accepted.push(Accepted {
            index,
            id,
            event_id: event.event_id.clone(),
            score: scored.score,
            severity: scored.severity,
            alert_id: alert_id.map(str::to_string),
        });
    }
    insert_rows(
        conn,
        "INSERT INTO threat_events (id, sensor_id, event_id, observed_at, received_at, event_type, source_ip, source_class,
                                    source_port, dest_ip, dest_port, dest_zone, protocol, technique, score, severity,
                                    breakdown, confidence, payload, tags, alert_id, source_country, source_asn, source_as_org)
         VALUES ",
        rows,
    )?;
    insert_rows(
        conn,
        "INSERT INTO events (type, payload, created_at) VALUES ",
        outbox,
    )
}

/// An `events` outbox row (type, payload, created_at).
fn outbox_row(event_type: &str, payload: &serde_json::Value, now: i64) -> Vec<Value> {
    vec![
        Value::Text(event_type.into()),
        Value::Text(serde_json::to_string(payload).expect("serializes")),
        Value::Integer(now),
    ]
}

/// The unresolved alert with the latest event of each group the raising
/// events belong to, in one statement.
fn unresolved_alerts(
    conn: &Connection,
    raising: &[alert::Raising],
) -> Result<HashMap<String, alert::Unresolved>, ApiError> {
    let keys: HashSet<String> = raising.iter().map(|r| alert::group_key(r.event)).collect();
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = db::query(
        conn,
        "SELECT group_key, id, last_seen FROM alerts
          WHERE group_key IN (SELECT value FROM json_each(?1)) AND status != 'resolved'",
        &[Value::Text(
            serde_json::to_string(&keys).expect("serializes"),
        )],
    )?;
    let mut latest: HashMap<String, alert::Unresolved> = HashMap::new();
    for row in &rows {
        let (Some(key), Some(id), Some(last_seen_ms)) =
            (db::text(row, 0), db::text(row, 1), db::int(row, 2))
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
/// inserts, the joined ones in one update; the outbox rows to publish with
/// the batch (`alert.opened`, `alert.updated`), one per alert.
fn write_alerts(
    conn: &Connection,
    grouping: &alert::Grouping,
    raising: &[alert::Raising],
    now: i64,
) -> Result<Vec<Vec<Value>>, ApiError> {
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
            ]);
            outbox.push(outbox_row("alert.opened", &payload, now));
        } else {
            joined.push(serde_json::json!([
                a.id,
                a.event_count,
                a.first_seen_ms,
                a.last_seen_ms,
                a.max_score,
                wire(&a.severity)
            ]));
            outbox.push(outbox_row("alert.updated", &payload, now));
        }
    }
    insert_rows(
        conn,
        "INSERT INTO alerts (id, group_key, status, source_ip, event_type, sensor_id, severity, max_score,
                             event_count, first_seen, last_seen, version, created_at, updated_at) VALUES ",
        opened,
    )?;
    if !joined.is_empty() {
        // [id, events, first seen, last seen, max score, its severity] per joined alert.
        db::query(
            conn,
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
        )?;
    }
    Ok(outbox)
}

/// Run `insert` (ending in `VALUES `) over `rows` (all of one width), many
/// rows per statement.
fn insert_rows(conn: &Connection, insert: &str, rows: Vec<Vec<Value>>) -> Result<(), ApiError> {
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        // Anonymous `?` marks number themselves in order.
        let tuple = format!("({})", vec!["?"; chunk[0].len()].join(", "));
        let sql = format!("{insert}{}", vec![tuple; chunk.len()].join(", "));
        let params: Vec<Value> = chunk.iter().flatten().cloned().collect();
        db::query(conn, &sql, &params)?;
    }
    Ok(())
}

/// Which (sensor, event id) pairs of the batch are stored already.
fn already_stored(
    conn: &Connection,
    valid: &[(usize, Event)],
) -> Result<HashSet<(String, String)>, ApiError> {
    let pairs: Vec<[&str; 2]> = valid
        .iter()
        .map(|(_, e)| [e.sensor_id.as_str(), e.event_id.as_str()])
        .collect();
    let rows = db::query(
        conn,
        "SELECT t.sensor_id, t.event_id FROM json_each(?1) AS j
           JOIN threat_events AS t ON t.sensor_id = j.value ->> 0 AND t.event_id = j.value ->> 1",
        &[Value::Text(
            serde_json::to_string(&pairs).expect("serializes"),
        )],
    )?;
    Ok(rows
        .iter()
        .filter_map(|r| Some((db::text(r, 0)?, db::text(r, 1)?)))
        .collect())
}

/// The latest observation times of each source of the batch: as many as
/// can change a score, in one statement.
fn recent_activity(
    conn: &Connection,
    fresh: &[(usize, &Event)],
) -> Result<RecentBySource, ApiError> {
    let sources: HashSet<String> = fresh.iter().map(|(_, e)| e.source_ip.to_string()).collect();
    if sources.is_empty() {
        return Ok(RecentBySource::default());
    }
    let rows = db::query(
        conn,
        "SELECT j.value, (SELECT json_group_array(observed_at) FROM
                            (SELECT observed_at FROM threat_events WHERE source_ip = j.value
                             ORDER BY observed_at DESC LIMIT ?2))
           FROM json_each(?1) AS j",
        &[
            Value::Text(serde_json::to_string(&sources).expect("serializes")),
            Value::Integer(REPEATS_THAT_COUNT.into()),
        ],
    )?;
    Ok(RecentBySource::new(rows.iter().filter_map(|r| {
        let times: Vec<i64> = serde_json::from_str(&db::text(r, 1)?).ok()?;
        Some((db::text(r, 0)?, times))
    })))
}
