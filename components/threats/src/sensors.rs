//! The sensor registry: list, create, read, change (If-Match; also the
//! sensor's `config`, which the relay delivers on its control topic), delete
//! (which revokes the sensor's keys), per-sensor stats, and heartbeats from
//! the sensor's own key. Status (online/stale/offline) follows from the last
//! heartbeat's age when read; a heartbeat that brings a sensor back
//! publishes `sensor.status`.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use spin_sdk::http::Response;
use spin_sdk::sqlite::Connection;
use vigil_api::audit::{self, Audited};
use vigil_api::db::{Columns, SpinSql, Value, ready};
use vigil_api::listing::{self, Filters};
use vigil_api::{ApiError, Ctx, FieldError, db, response};
use vigil_core::time::{now_millis, rfc3339};
use vigil_core::wire::{parse_wire, wire};
use vigil_ingest::pipeline;
use vigil_ingest::sensor::{self, Heartbeat, Liveness, SensorKind, SensorStatus, valid_sensor_id};

use crate::settings;

#[derive(Clone, Serialize, JsonSchema)]
pub struct Sensor {
    pub id: String,
    pub name: String,
    pub kind: SensorKind,
    pub location: Option<String>,
    pub description: Option<String>,
    /// From the last heartbeat's age: `online`, `stale` or `offline`.
    pub status: SensorStatus,
    #[schemars(extend("format" = "date-time"))]
    pub last_heartbeat: Option<String>,
    /// The body of the last heartbeat (version, uptime, metrics …).
    pub heartbeat: Option<serde_json::Value>,
    /// The sensor's configuration (an object, `{}` when none), published
    /// retained to `vigil/sensors/{id}/control` by the relay.
    pub config: serde_json::Map<String, serde_json::Value>,
    /// Changes with every edit; the ETag is `"<version>"`.
    pub version: i64,
    #[schemars(extend("format" = "date-time"))]
    pub created_at: String,
}

static COLUMNS: Columns = Columns::new(
    "id, name, kind, location, description, last_heartbeat, heartbeat, version, created_at, config",
);

fn sensor(row: &[Value], now: i64, liveness: &Liveness) -> Option<Sensor> {
    let r = COLUMNS.row(row);
    let last = r.int("last_heartbeat");
    Some(Sensor {
        id: r.text("id")?,
        name: r.text("name")?,
        kind: parse_wire(&r.text("kind")?)?,
        location: r.text("location"),
        description: r.text("description"),
        status: liveness.status(last, now),
        last_heartbeat: last.map(rfc3339),
        heartbeat: r
            .text("heartbeat")
            .and_then(|h| serde_json::from_str(&h).ok()),
        version: r.int("version")?,
        created_at: rfc3339(r.int("created_at")?),
        config: r
            .text("config")
            .and_then(|c| serde_json::from_str(&c).ok())
            .unwrap_or_default(),
    })
}

impl Sensor {
    fn etag(&self) -> String {
        vigil_api::response::etag(self.version)
    }

    fn response(&self, status: u16) -> Response {
        let mut response = response::json(status, self);
        response.set_header("etag", self.etag());
        response
    }
}

pub fn load(conn: &Connection, id: &str, now: i64) -> Result<Sensor, ApiError> {
    let liveness = settings::get()?.liveness;
    let rows = db::query(
        conn,
        &format!("SELECT {COLUMNS} FROM sensors WHERE id = ?1"),
        &[Value::Text(id.into())],
    )?;
    rows.first()
        .and_then(|r| sensor(r, now, &liveness))
        .ok_or_else(ApiError::not_found)
}

#[derive(Serialize, JsonSchema)]
pub struct SensorPage {
    sensors: Vec<Sensor>,
    /// Pass as `cursor` for the next page; absent on the last page.
    next_cursor: Option<String>,
}

/// `GET /api/sensors`: by name. Filters `status`, `kind`; `limit`, `cursor`.
pub fn list(ctx: &mut Ctx) -> Result<Response, ApiError> {
    let now = now_millis();
    let liveness = settings::get()?.liveness;
    let mut f = Filters::default();
    if let Some(s) = ctx.query_param("status") {
        let status: SensorStatus = parse_wire(&s)
            .ok_or_else(|| ApiError::invalid_field("status", "is online, stale or offline"))?;
        match liveness.heartbeat_range(status, now) {
            (Some(after), None) => f.add("last_heartbeat > ?", vec![Value::Integer(after)]),
            (Some(after), Some(until)) => f.add(
                "last_heartbeat > ? AND last_heartbeat <= ?",
                vec![Value::Integer(after), Value::Integer(until)],
            ),
            (None, Some(until)) => f.add(
                "(last_heartbeat IS NULL OR last_heartbeat <= ?)",
                vec![Value::Integer(until)],
            ),
            (None, None) => {}
        }
    }
    if let Some(k) = ctx.query_param("kind") {
        parse_wire::<SensorKind>(&k).ok_or_else(|| {
            ApiError::invalid_field("kind", "is network, honeypot, wireless, physical or other")
        })?;
        f.add("kind = ?", vec![Value::Text(k)]);
    }
    let limit = listing::limit(ctx)?;
    if let Some(c) = listing::cursor(ctx, 2)? {
        f.add(
            "(name, id) > (?, ?)",
            vec![Value::Text(c[0].clone()), Value::Text(c[1].clone())],
        );
    }
    let sql = format!(
        "SELECT {COLUMNS} FROM sensors {} ORDER BY name, id LIMIT {}",
        f.where_clause(),
        f.limit_placeholder(limit + 1)
    );
    let conn = db::open()?;
    let mut sensors: Vec<Sensor> = db::query(conn, &sql, &f.params)?
        .iter()
        .filter_map(|r| sensor(r, now, &liveness))
        .collect();
    let next_cursor = listing::page(&mut sensors, limit, |s| vec![s.name.clone(), s.id.clone()]);
    Ok(response::json(
        200,
        &SensorPage {
            sensors,
            next_cursor,
        },
    ))
}

/// A new sensor, by a supervisor (`POST /api/sensors`) or through an
/// onboarding token (`POST /api/sensors/register`, which picks the id).
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSensor {
    /// `A-Z a-z 0-9 . _ -`, 1-64; the `sensor_id` of its events. Generated when absent.
    #[schemars(length(min = 1, max = 64), regex(pattern = r"^[A-Za-z0-9._-]+$"))]
    pub id: Option<String>,
    #[schemars(length(min = 1, max = 100))]
    pub name: String,
    pub kind: SensorKind,
    #[schemars(length(max = 200))]
    pub location: Option<String>,
    #[schemars(length(max = 2000))]
    pub description: Option<String>,
}

/// Field problems with a name, location and description.
fn check_texts(
    name: Option<&str>,
    location: Option<&str>,
    description: Option<&str>,
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let mut check = |field: &str, value: Option<&str>, min: usize, max: usize| {
        if let Some(v) = value {
            let n = v.trim().chars().count();
            if n < min || n > max || (field != "description" && v.contains('\n')) {
                errors.push(FieldError {
                    field: field.into(),
                    message: format!("must be {min}-{max} characters"),
                });
            }
        }
    };
    check("name", name, 1, 100);
    check("location", location, 0, 200);
    check("description", description, 0, 2000);
    errors
}

impl NewSensor {
    pub fn validate(&self) -> Result<(), ApiError> {
        let mut errors = check_texts(
            Some(&self.name),
            self.location.as_deref(),
            self.description.as_deref(),
        );
        if self.id.as_deref().is_some_and(|id| !valid_sensor_id(id)) {
            errors.push(FieldError {
                field: "id".into(),
                message: "must be 1-64 of A-Z a-z 0-9 . _ -".into(),
            });
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::validation(errors))
        }
    }
}

/// A fresh sensor id: `sensor-` and 8 hex characters.
pub fn new_sensor_id() -> String {
    format!("sensor-{}", &vigil_core::id::new_id().replace('-', "")[..8])
}

/// Insert `new` with `id`, audited (as done by `created_by`) and published as
/// `sensor.registered`, inside the caller's transaction (409 if the id is taken).
pub fn insert(
    conn: &Connection,
    ctx: &Ctx,
    id: &str,
    new: &NewSensor,
    created_by: &str,
    now: i64,
) -> Result<Sensor, ApiError> {
    let inserted = db::query(
        conn,
        "INSERT INTO sensors (id, name, kind, location, description, version, created_by, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6, ?7, ?7) ON CONFLICT (id) DO NOTHING RETURNING id",
        &[
            Value::Text(id.into()),
            Value::Text(new.name.trim().into()),
            Value::Text(wire(&new.kind)),
            db::opt_text(new.location.as_deref().map(str::trim)),
            db::opt_text(new.description.as_deref()),
            Value::Text(created_by.into()),
            Value::Integer(now),
        ],
    )?;
    if inserted.is_empty() {
        return Err(ApiError::conflict(format!("sensor {id:?} already exists")));
    }
    let created = load(conn, id, now)?;
    let mut entry = ctx.audit_entry("sensor.registered", "sensor", id, now);
    entry.actor = created_by.into();
    let payload = serde_json::to_value(&created).expect("serializes");
    audit::record(
        conn,
        &Audited::new(entry)
            .after(&created)
            .publish("sensor.registered", payload),
    )?;
    Ok(created)
}

/// `POST /api/sensors` (supervisor).
pub fn create(ctx: &mut Ctx) -> Result<Response, ApiError> {
    let new: NewSensor = ctx.json()?;
    new.validate()?;
    let id = new.id.clone().unwrap_or_else(new_sensor_id);
    let now = now_millis();
    let conn = db::open()?;
    let who = ctx.principal().subject.clone();
    let created = db::transaction(conn, |conn| insert(conn, ctx, &id, &new, &who, now))?;
    let mut response = created.response(201);
    response.set_header("location", format!("/api/sensors/{id}"));
    Ok(response)
}

/// `GET /api/sensors/{id}`.
pub fn get(ctx: &mut Ctx) -> Result<Response, ApiError> {
    let conn = db::open()?;
    Ok(load(conn, ctx.param("id"), now_millis())?.response(200))
}

/// `PATCH /api/sensors/{id}`: the fields given change; `null` clears
/// `location` and `description`; `config` replaces the whole configuration.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SensorChange {
    #[schemars(length(min = 1, max = 100))]
    name: Option<String>,
    kind: Option<SensorKind>,
    #[serde(default, deserialize_with = "present")]
    #[schemars(length(max = 200))]
    location: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schemars(length(max = 2000))]
    description: Option<Option<String>>,
    /// The sensor's whole new configuration: a JSON object (16 KiB of JSON
    /// at most, nested 8 deep, keys of 1-64 characters); `{}` clears it.
    #[schemars(with = "Option<serde_json::Map<String, serde_json::Value>>")]
    config: Option<serde_json::Value>,
}

/// Tell a field sent as `null` (`Some(None)`) from one not sent (`None`).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

pub fn update(ctx: &mut Ctx) -> Result<Response, ApiError> {
    let change: SensorChange = ctx.json()?;
    let mut errors = check_texts(
        change.name.as_deref(),
        change.location.clone().flatten().as_deref(),
        change.description.clone().flatten().as_deref(),
    );
    let config = match change.config.as_ref().map(sensor::checked_config) {
        Some(Err(e)) => {
            errors.extend(e.errors);
            None
        }
        Some(Ok(config)) => Some(config),
        None => None,
    };
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let if_match = ctx.if_match("sensor")?;
    let id = ctx.param("id").to_string();
    let now = now_millis();
    let conn = db::open()?;
    let after = db::transaction(conn, |conn| {
        audit::update(
            conn,
            |conn| load(conn, &id, now),
            |conn, before| {
                Ctx::check_version(&if_match, before.version, "sensor")?;
                let pick = |new: &Option<Option<String>>, old: &Option<String>| match new {
                    Some(v) => v.as_ref().map(|s| s.trim().to_string()),
                    None => old.clone(),
                };
                db::query(
                    conn,
                    "UPDATE sensors SET name = ?2, kind = ?3, location = ?4, description = ?5,
                            config = coalesce(?7, config), version = version + 1, updated_at = ?6
                      WHERE id = ?1",
                    &[
                        Value::Text(id.clone()),
                        Value::Text(
                            change
                                .name
                                .as_deref()
                                .map_or(before.name.clone(), |n| n.trim().into()),
                        ),
                        Value::Text(wire(&change.kind.unwrap_or(before.kind))),
                        db::opt_text(pick(&change.location, &before.location).as_deref()),
                        db::opt_text(pick(&change.description, &before.description).as_deref()),
                        Value::Integer(now),
                        db::opt_text(config.as_deref()),
                    ],
                )
                .map(drop)
            },
            |before, after| {
                let payload = serde_json::to_value(after).expect("serializes");
                Audited::new(ctx.audit_entry("sensor.updated", "sensor", &id, now))
                    .before(before)
                    .after(after)
                    .publish("sensor.updated", payload)
            },
        )
    })?;
    Ok(after.response(200))
}

/// `DELETE /api/sensors/{id}`: the sensor leaves the registry and its API
/// keys are revoked at once; its events stay.
pub fn delete(ctx: &mut Ctx) -> Result<Response, ApiError> {
    let id = ctx.param("id").to_string();
    let now = now_millis();
    let conn = db::open()?;
    db::transaction(conn, |conn| {
        let before = load(conn, &id, now)?;
        db::query(
            conn,
            "DELETE FROM sensors WHERE id = ?1",
            &[Value::Text(id.clone())],
        )?;
        let revoked = db::query(
            conn,
            "UPDATE api_keys SET revoked_at = ?2 WHERE sensor_id = ?1 AND revoked_at IS NULL RETURNING id",
            &[Value::Text(id.clone()), Value::Integer(now)],
        )?;
        let audited = Audited::new(ctx.audit_entry("sensor.deleted", "sensor", &id, now))
            .before(&before)
            .after(&serde_json::json!({"revoked_keys": revoked.len()}))
            .publish("sensor.deleted", serde_json::json!({"id": id}));
        audit::record(conn, &audited)
    })?;
    Ok(Response::builder().status(204).build())
}

#[derive(Serialize, JsonSchema)]
pub struct SensorStats {
    sensor_id: String,
    /// `24h`, `7d`, `30d` or `all`.
    range: String,
    status: SensorStatus,
    total: i64,
    by_severity: BTreeMap<String, i64>,
    by_type: BTreeMap<String, i64>,
    /// Alerts of this sensor not yet resolved.
    open_alerts: i64,
    #[schemars(extend("format" = "date-time"))]
    last_event_at: Option<String>,
}

/// `GET /api/sensors/{id}/stats?range=24h|7d|30d|all`: the sensor's events
/// in the range's whole hours by severity and by type, from its own rows in
/// the metrics rollups (so they agree with `/api/metrics/*`), whatever the
/// number of events.
pub fn stats(ctx: &mut Ctx) -> Result<Response, ApiError> {
    use vigil_metrics_rules::read::{Dim, EventAgg, events_by_of};
    use vigil_metrics_rules::window::Window;
    let id = ctx.param("id").to_string();
    let now = now_millis();
    let window = Window::parse(ctx.query_param("range").as_deref(), None, None, now)?;
    let conn = db::open()?;
    let sensor = load(conn, &id, now)?;
    let [by_severity, by_type]: [BTreeMap<String, EventAgg>; 2] = ready(events_by_of(
        &SpinSql(conn),
        &window,
        &id,
        &[Dim::Severity, Dim::Type],
    ))?
    .try_into()
    .map_err(|_| ApiError::internal())?;
    let counts = |m: BTreeMap<String, EventAgg>| -> BTreeMap<String, i64> {
        m.into_iter()
            .filter(|(_, a)| a.events > 0)
            .map(|(k, a)| (k, a.events))
            .collect()
    };
    let (by_severity, by_type) = (counts(by_severity), counts(by_type));
    let range = window.label;
    static ACTIVITY: Columns = Columns::new(
        "(SELECT count(*) FROM alerts WHERE sensor_id = ?1 AND status != 'resolved') AS open_alerts, \
         (SELECT max(observed_at) FROM threat_events WHERE sensor_id = ?1) AS last_event_at",
    );
    let rows = db::query(
        conn,
        &format!("SELECT {ACTIVITY}"),
        &[Value::Text(id.clone())],
    )?;
    let row = rows
        .first()
        .map(|r| ACTIVITY.row(r))
        .ok_or_else(ApiError::internal)?;
    Ok(response::json(
        200,
        &SensorStats {
            sensor_id: id,
            range,
            status: sensor.status,
            total: by_severity.values().sum(),
            by_severity,
            by_type,
            open_alerts: row.int("open_alerts").unwrap_or(0),
            last_event_at: row.int("last_event_at").map(rfc3339),
        },
    ))
}

/// `POST /api/sensors/{id}/heartbeat`, from the sensor's own key only.
pub fn heartbeat(ctx: &mut Ctx) -> Result<Response, ApiError> {
    let body: Heartbeat = if ctx.body.is_empty() {
        Heartbeat::default()
    } else {
        ctx.json()?
    };
    let kept = body.kept()?;
    let id = ctx.param("id").to_string();
    let now = now_millis();
    let conn = db::open()?;
    load(conn, &id, now)?;
    let speaks_for = ready(pipeline::speaks_for(&SpinSql(conn), ctx.principal()))?;
    if speaks_for.as_deref() != Some(id.as_str()) {
        return Err(
            ApiError::new(403, "forbidden", "Forbidden").with_detail(format!(
                "only sensor {id:?}'s own API key sends its heartbeats"
            )),
        );
    }
    let sensor = db::transaction(conn, |conn| {
        ready(sensor::heard_from(
            &SpinSql(conn),
            &ctx.actor(),
            &id,
            Some(&kept),
            now,
        ))?;
        load(conn, &id, now)
    })?;
    Ok(sensor.response(200))
}
