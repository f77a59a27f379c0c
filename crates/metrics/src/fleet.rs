//! `GET /api/metrics/sensors` (fleet health) and `GET /api/metrics/map`
//! (events by source country).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Serialize;
use vigil_core::ApiError;
use vigil_core::sql::{Columns, Sql, int};
use vigil_core::wire::wire;
use vigil_ingest::sensor::{Liveness, SensorStatus};

use crate::read::{self, Dim};
use crate::window::Window;

#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct SensorHealth {
    pub id: String,
    pub name: String,
    pub status: SensorStatus,
    /// Events observed in the window.
    pub events: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct Fleet {
    pub range: String,
    pub total: i64,
    pub online: i64,
    pub stale: i64,
    pub offline: i64,
    /// Registered sensors, most events first.
    pub sensors: Vec<SensorHealth>,
    /// Registered sensors with no event in the window.
    pub silent: Vec<String>,
    /// Events in the window from sensor ids that are not registered.
    pub unregistered_events: i64,
}

/// Every registered sensor with its status at `now` and its events in the window.
pub async fn fleet(
    db: &impl Sql,
    w: &Window,
    liveness: &Liveness,
    now: i64,
) -> Result<Fleet, ApiError> {
    let [by_sensor] = read::events_by(db, w, &[Dim::Sensor])
        .await?
        .try_into()
        .map_err(|_| ApiError::internal())?;
    static SENSORS: Columns = Columns::new("id, name, last_heartbeat");
    let rows = db
        .query(&format!("SELECT {SENSORS} FROM sensors"), &[])
        .await?;
    let mut f = Fleet {
        range: w.label.clone(),
        total: 0,
        online: 0,
        stale: 0,
        offline: 0,
        sensors: Vec::new(),
        silent: Vec::new(),
        unregistered_events: 0,
    };
    let mut registered = std::collections::HashSet::new();
    for r in &rows {
        let r = SENSORS.row(r);
        let (Some(id), Some(name)) = (r.text("id"), r.text("name")) else {
            continue;
        };
        let status = liveness.status(r.int("last_heartbeat"), now);
        match status {
            SensorStatus::Online => f.online += 1,
            SensorStatus::Stale => f.stale += 1,
            SensorStatus::Offline => f.offline += 1,
        }
        let events = by_sensor.get(&id).map_or(0, |a| a.events);
        if events == 0 {
            f.silent.push(id.clone());
        }
        registered.insert(id.clone());
        f.sensors.push(SensorHealth {
            id,
            name,
            status,
            events,
        });
    }
    f.total = f.sensors.len() as i64;
    f.unregistered_events = by_sensor
        .iter()
        .filter(|(id, _)| !registered.contains(*id))
        .map(|(_, a)| a.events)
        .sum();
    f.sensors
        .sort_by(|a, b| b.events.cmp(&a.events).then_with(|| a.id.cmp(&b.id)));
    f.silent.sort();
    Ok(f)
}

/// Sensors by status at `now` (for Prometheus).
pub async fn sensors_by_status(
    db: &impl Sql,
    liveness: &Liveness,
    now: i64,
) -> Result<BTreeMap<String, i64>, ApiError> {
    let mut out: BTreeMap<String, i64> = [
        SensorStatus::Online,
        SensorStatus::Stale,
        SensorStatus::Offline,
    ]
    .iter()
    .map(|s| (wire(s), 0))
    .collect();
    for r in db.query("SELECT last_heartbeat FROM sensors", &[]).await? {
        *out.entry(wire(&liveness.status(int(&r, 0), now)))
            .or_default() += 1;
    }
    Ok(out)
}

#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct Country {
    /// ISO 3166-1 alpha-2, from the GeoIP databases.
    pub country: String,
    pub events: i64,
    pub max_score: i64,
    pub mean_score: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct Map {
    pub range: String,
    /// Most events first.
    pub countries: Vec<Country>,
    /// Events whose source has no known country (private addresses, no GeoIP data).
    pub unknown: i64,
}

pub async fn map(db: &impl Sql, w: &Window) -> Result<Map, ApiError> {
    let [by_country] = read::events_by(db, w, &[Dim::Country])
        .await?
        .try_into()
        .map_err(|_| ApiError::internal())?;
    let mut countries: Vec<Country> = by_country
        .iter()
        .filter(|(k, a)| !k.is_empty() && a.events > 0)
        .map(|(k, a)| Country {
            country: k.clone(),
            events: a.events,
            max_score: a.max_score,
            mean_score: a.score_sum as f64 / a.events as f64,
        })
        .collect();
    countries.sort_by(|a, b| {
        b.events
            .cmp(&a.events)
            .then_with(|| a.country.cmp(&b.country))
    });
    Ok(Map {
        range: w.label.clone(),
        countries,
        unknown: by_country.get("").map_or(0, |a| a.events),
    })
}
