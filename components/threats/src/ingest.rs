//! `POST /api/threats/events`: one event, or `{"events": [...]}` (up to
//! 1,000). Each item is validated on its own; the valid ones are scored and
//! committed together, with their alerts and outbox rows, in one transaction.

use std::collections::HashSet;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use spin_sdk::http::Response;
use spin_sdk::sqlite::{Connection, Value};
use vigil_api::{ApiError, Ctx, FieldError, db, response};
use vigil_core::id::new_id;
use vigil_core::time::now_millis;
use vigil_core::wire::wire;
use vigil_ingest::alert::{self, OpenAlert};
use vigil_ingest::classify::{AddressClass, ZoneMap, classify};
use vigil_ingest::event::{Event, RawEvent, Severity, validate};
use vigil_ingest::geo::Geo;
use vigil_ingest::repeat::RecentBySource;
use vigil_ingest::score::{REPEATS_THAT_COUNT, score};

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

/// Store the valid events of a batch inside the caller's transaction: a few
/// statements per batch (which already exist, the sources' recent activity,
/// multi-row inserts of events and outbox rows), plus three per event that
/// raises or joins an alert. The write lock is held throughout, so what was read
/// stays true until the commit.
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
    let mut rows: Vec<Vec<Value>> = Vec::with_capacity(fresh.len());
    let mut published: Vec<serde_json::Value> = Vec::with_capacity(fresh.len());
    for (index, event) in fresh {
        let source = event.source_ip.to_string();
        let zone = event.dest_ip.and_then(|ip| s.zones.zone_of(ip));
        let scored = score(
            event,
            zone.map(|z| z.criticality),
            recent.count(&source, event.observed_at_ms),
        );
        recent.record(&source, event.observed_at_ms);
        let alert_id = if alert::raises_alert(scored.severity) {
            let (alert_id, opened) =
                raise(conn, event, scored.score, scored.severity, s.window, s.now)?;
            if opened {
                outcome.opened.push(alert_id.clone());
            }
            Some(alert_id)
        } else {
            None
        };
        let id = new_id();
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
            db::opt_text(alert_id.as_deref()),
            db::opt_text(geo.country.as_deref()),
            geo.asn.map_or(Value::Null, |a| Value::Integer(a.into())),
            db::opt_text(geo.as_org.as_deref()),
        ]);
        published.push(serde_json::json!({"id": id, "sensor_id": event.sensor_id, "event_type": event.event_type, "source_ip": source, "score": scored.score, "severity": scored.severity, "alert_id": alert_id}));
        outcome.accepted.push(Accepted {
            index,
            id,
            event_id: event.event_id.clone(),
            score: scored.score,
            severity: scored.severity,
            alert_id,
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
    let outbox = published
        .into_iter()
        .map(|payload| {
            vec![
                Value::Text("threat.created".into()),
                Value::Text(serde_json::to_string(&payload).expect("serializes")),
                Value::Integer(s.now),
            ]
        })
        .collect();
    insert_rows(
        conn,
        "INSERT INTO events (type, payload, created_at) VALUES ",
        outbox,
    )
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

/// Open an alert for a high or critical event, or update the open alert of
/// its group when the event falls within the window: `(alert id, opened)`.
fn raise(
    conn: &Connection,
    event: &Event,
    score: u8,
    severity: Severity,
    window: i64,
    now: i64,
) -> Result<(String, bool), ApiError> {
    let key = alert::group_key(event);
    let rows = db::query(
        conn,
        "SELECT id, last_seen FROM alerts WHERE group_key = ?1 AND status != 'resolved' ORDER BY last_seen DESC LIMIT 1",
        &[Value::Text(key.clone())],
    )?;
    let open = rows
        .first()
        .and_then(|r| Some((db::text(r, 0)?, db::int(r, 1)?)));
    if let Some((id, _)) = open.filter(|(_, last)| {
        alert::joins(
            Some(OpenAlert {
                last_seen_ms: *last,
            }),
            event.observed_at_ms,
            window,
        )
    }) {
        db::query(
            conn,
            "UPDATE alerts SET event_count = event_count + 1, last_seen = max(last_seen, ?2), first_seen = min(first_seen, ?2),
                    max_score = max(max_score, ?3),
                    severity = CASE WHEN ?3 > max_score THEN ?4 ELSE severity END,
                    version = version + 1, updated_at = ?5
             WHERE id = ?1",
            &[Value::Text(id.clone()), Value::Integer(event.observed_at_ms), Value::Integer(score.into()), Value::Text(wire(&severity)), Value::Integer(now)],
        )?;
        vigil_api::audit::publish(
            conn,
            "alert.updated",
            &serde_json::json!({"id": id, "score": score}),
            now,
        )?;
        return Ok((id, false));
    }
    let id = new_id();
    db::query(
        conn,
        "INSERT INTO alerts (id, group_key, status, source_ip, event_type, sensor_id, severity, max_score, event_count,
                             first_seen, last_seen, version, created_at, updated_at)
         VALUES (?1, ?2, 'open', ?3, ?4, ?5, ?6, ?7, 1, ?8, ?8, 1, ?9, ?9)",
        &[
            Value::Text(id.clone()),
            Value::Text(key),
            Value::Text(event.source_ip.to_string()),
            Value::Text(wire(&event.event_type)),
            Value::Text(event.sensor_id.clone()),
            Value::Text(wire(&severity)),
            Value::Integer(score.into()),
            Value::Integer(event.observed_at_ms),
            Value::Integer(now),
        ],
    )?;
    vigil_api::audit::publish(
        conn,
        "alert.opened",
        &serde_json::json!({"id": id, "severity": severity, "score": score}),
        now,
    )?;
    Ok((id, true))
}
