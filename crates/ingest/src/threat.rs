//! A stored threat event read back: what `GET /api/threats` serves and what
//! evidence packs and threat exports write, one reader for all of them.

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::value::RawValue;
use vigil_core::sql::{Columns, Value};
use vigil_core::time::rfc3339;

#[derive(Serialize, JsonSchema)]
pub struct Threat {
    #[schemars(extend("format" = "uuid"))]
    pub id: String,
    pub sensor_id: String,
    pub event_id: String,
    /// When the sensor saw it.
    #[schemars(extend("format" = "date-time"))]
    pub observed_at: String,
    /// When Vigil stored it.
    #[schemars(extend("format" = "date-time"))]
    pub received_at: String,
    pub event_type: String,
    pub source_ip: String,
    pub source_class: String,
    /// ISO 3166-1 country of a public source (when GeoIP is configured).
    pub source_country: Option<String>,
    /// Autonomous system number and organisation of a public source.
    pub source_asn: Option<i64>,
    pub source_as_org: Option<String>,
    pub source_port: Option<i64>,
    pub dest_ip: Option<String>,
    pub dest_port: Option<i64>,
    pub dest_zone: Option<String>,
    pub protocol: Option<String>,
    /// MITRE ATT&CK technique id.
    pub technique: Option<String>,
    pub score: i64,
    pub severity: String,
    /// Why the score is what it is, factor by factor.
    pub breakdown: Box<RawValue>,
    pub confidence: f64,
    pub payload: Box<RawValue>,
    pub tags: Box<RawValue>,
    pub alert_id: Option<String>,
    /// `observed_at` as stored (milliseconds), for cursors.
    #[serde(skip)]
    pub observed_ms: i64,
}

pub static COLUMNS: Columns = Columns::new(
    "id, sensor_id, event_id, observed_at, received_at, event_type, source_ip, source_class, \
    source_country, source_asn, source_as_org, source_port, dest_ip, dest_port, dest_zone, protocol, technique, \
    score, severity, breakdown, confidence, payload, tags, alert_id",
);

/// A row of [`COLUMNS`]; `None` when it does not read as a threat.
pub fn from_row(row: &[Value]) -> Option<Threat> {
    let r = COLUMNS.row(row);
    Some(Threat {
        id: r.text("id")?,
        sensor_id: r.text("sensor_id")?,
        event_id: r.text("event_id")?,
        observed_at: rfc3339(r.int("observed_at")?),
        received_at: rfc3339(r.int("received_at")?),
        event_type: r.text("event_type")?,
        source_ip: r.text("source_ip")?,
        source_class: r.text("source_class")?,
        source_country: r.text("source_country"),
        source_asn: r.int("source_asn"),
        source_as_org: r.text("source_as_org"),
        source_port: r.int("source_port"),
        dest_ip: r.text("dest_ip"),
        dest_port: r.int("dest_port"),
        dest_zone: r.text("dest_zone"),
        protocol: r.text("protocol"),
        technique: r.text("technique"),
        score: r.int("score")?,
        severity: r.text("severity")?,
        breakdown: r.json("breakdown")?,
        confidence: r.real("confidence")?,
        payload: r.json("payload")?,
        tags: r.json("tags")?,
        alert_id: r.text("alert_id"),
        observed_ms: r.int("observed_at")?,
    })
}
