//! Threats for other tools: CSV (RFC 4180, safe to open in a spreadsheet),
//! JSONL (one event a line, the fields of `GET /api/threats/{id}`), and a
//! STIX 2.1 bundle. Events are read oldest first, a page at a time, with
//! the threat explorer's filters.
//!
//! The STIX mapping: one `identity` for Vigil (the producer) and one per
//! sensor (where events were sighted); per source address an SCO
//! (`ipv4-addr`/`ipv6-addr`) and an `indicator` with the pattern
//! `[ipv4-addr:value = '…']`; per ATT&CK technique an `attack-pattern` with
//! its `mitre-attack` external id, and an `indicates` relationship from each
//! indicator to the techniques its events map to; per event an
//! `observed-data` of its source and a `sighting` of its indicator. Ids are
//! derived from what they name (UUIDv5 for observables as STIX prescribes),
//! so the same events give the same ids.

use std::collections::BTreeSet;

use serde_json::{Value as Json, json};
use sha2::{Digest, Sha256};
use vigil_core::ApiError;
use vigil_core::sql::{Sql, Value, int};
use vigil_ingest::event::EventType;

use crate::records::{self, EVENT_COLUMNS, Event};

/// Events read per statement.
pub const PAGE: i64 = 1000;

/// Parse an RFC 3339 time to milliseconds (as the threat explorer does).
pub fn parse_time(text: &str) -> Option<i64> {
    vigil_core::time::parse_rfc3339(text)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Csv,
    Jsonl,
    Stix,
}

impl Format {
    pub const ALLOWED: &str = "csv, jsonl, stix";

    /// The `format` parameter; 422 naming the allowed values otherwise.
    pub fn parse(value: Option<&str>) -> Result<Format, ApiError> {
        match value {
            Some("csv") => Ok(Format::Csv),
            Some("jsonl") => Ok(Format::Jsonl),
            Some("stix") => Ok(Format::Stix),
            _ => Err(ApiError::invalid_field(
                "format",
                format!("must be one of {}", Format::ALLOWED),
            )),
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Csv => "text/csv",
            Format::Jsonl => "application/x-ndjson",
            Format::Stix => "application/stix+json",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Jsonl => "jsonl",
            Format::Stix => "stix.json",
        }
    }
}

/// The threat explorer's filters: `since`, `until` (RFC 3339), `severity`,
/// `event_type`, `sensor_id`, `source_ip`, `technique`, `zone`, `country`.
#[derive(Debug, Default, Clone)]
pub struct ThreatFilter {
    clauses: Vec<(&'static str, Value)>,
}

impl ThreatFilter {
    pub fn parse(get: impl Fn(&str) -> Option<String>) -> Result<ThreatFilter, ApiError> {
        let mut f = ThreatFilter::default();
        for (name, clause) in [("since", "observed_at >="), ("until", "observed_at <")] {
            if let Some(t) = get(name) {
                let ms = parse_time(&t)
                    .ok_or_else(|| ApiError::invalid_field(name, "is not an RFC 3339 time"))?;
                f.clauses.push((clause, Value::Integer(ms)));
            }
        }
        if let Some(s) = get("severity") {
            vigil_core::wire::parse_wire::<vigil_ingest::event::Severity>(&s)
                .ok_or_else(|| ApiError::invalid_field("severity", "is not a severity"))?;
            f.clauses.push(("severity =", Value::Text(s)));
        }
        if let Some(t) = get("event_type") {
            vigil_core::wire::parse_wire::<EventType>(&t)
                .ok_or_else(|| ApiError::invalid_field("event_type", "is not an event type"))?;
            f.clauses.push(("event_type =", Value::Text(t)));
        }
        for (name, clause) in [
            ("sensor_id", "sensor_id ="),
            ("source_ip", "source_ip ="),
            ("technique", "technique ="),
            ("zone", "dest_zone ="),
            ("country", "source_country ="),
        ] {
            if let Some(v) = get(name) {
                f.clauses.push((clause, Value::Text(v)));
            }
        }
        Ok(f)
    }

    /// Conditions numbered from `?4` on (`?1`–`?3` are the page's cursor and size).
    fn conditions(&self) -> (String, Vec<Value>) {
        let mut sql = String::from("(observed_at, id) > (?1, ?2)");
        let mut params = Vec::new();
        for (i, (clause, value)) in self.clauses.iter().enumerate() {
            sql += &format!(" AND {clause} ?{}", i + 4);
            params.push(value.clone());
        }
        (sql, params)
    }

    /// How many events match (checked against the export limit first).
    pub async fn count(&self, db: &impl Sql) -> Result<i64, ApiError> {
        let (conditions, params) = self.conditions();
        let mut all = vec![
            Value::Integer(i64::MIN),
            Value::Text(String::new()),
            Value::Integer(0),
        ];
        all.extend(params);
        let sql = format!("SELECT count(*) FROM threat_events WHERE {conditions}");
        let rows = db.query(&sql, &crate::params_for(&sql, &all)).await?;
        Ok(rows.first().and_then(|r| int(r, 0)).unwrap_or(0))
    }
}

/// Write the matching events in `format` into `out`, a page at a time,
/// handing each page to `flush` (which sends it and empties `out`; one that
/// keeps it gives the whole export in memory); returns how many.
/// `bundle_id` names a STIX bundle (`bundle--<uuid>`).
pub async fn export(
    db: &impl Sql,
    filter: &ThreatFilter,
    format: Format,
    bundle_id: &str,
    out: &mut Vec<u8>,
    mut flush: impl FnMut(&mut Vec<u8>) -> Result<(), ApiError>,
) -> Result<u64, ApiError> {
    let (conditions, params) = filter.conditions();
    let sql = format!(
        "SELECT {EVENT_COLUMNS} FROM threat_events WHERE {conditions} ORDER BY observed_at, id LIMIT ?3"
    );
    let mut sink = match format {
        Format::Csv => {
            csv_writer(out, true).flush().expect("writing to memory");
            Sink::Csv
        }
        Format::Jsonl => Sink::Jsonl,
        Format::Stix => {
            out.extend_from_slice(
                format!(r#"{{"type":"bundle","id":"{bundle_id}","objects":["#).as_bytes(),
            );
            Sink::Stix(Box::default())
        }
    };
    let (mut after_ms, mut after_id) = (i64::MIN, String::new());
    let mut n = 0;
    loop {
        let mut all = vec![
            Value::Integer(after_ms),
            Value::Text(after_id.clone()),
            Value::Integer(PAGE),
        ];
        all.extend(params.iter().cloned());
        let page = db.query(&sql, &all).await?;
        // The schema's constraints make every row readable; one that is
        // not fails the export rather than leave a silent gap in it.
        let events = page
            .iter()
            .map(|row| records::event(row).ok_or_else(records::unreadable))
            .collect::<Result<Vec<_>, _>>()?;
        sink.write_page(&events, out);
        n += events.len() as u64;
        if let Some(last) = events.into_iter().last() {
            (after_ms, after_id) = (last.observed_ms, last.id);
        }
        if (page.len() as i64) < PAGE {
            break;
        }
        flush(out)?;
    }
    if let Sink::Stix(_) = sink {
        out.extend_from_slice(b"]}");
    }
    flush(out)?;
    Ok(n)
}

/// How events are written, in their format.
enum Sink {
    Csv,
    Jsonl,
    Stix(Box<Stix>),
}

impl Sink {
    fn write_page(&mut self, events: &[Event], out: &mut Vec<u8>) {
        match self {
            Sink::Csv => {
                let mut w = csv_writer(out, false);
                for e in events {
                    w.write_record(csv_row(e)).expect("writing to memory");
                }
                w.flush().expect("writing to memory");
            }
            Sink::Jsonl => {
                for e in events {
                    serde_json::to_writer(&mut *out, e).expect("events serialize");
                    out.push(b'\n');
                }
            }
            Sink::Stix(stix) => {
                for e in events {
                    stix.event(e, out);
                }
            }
        }
    }
}

/// The CSV columns, in order.
pub const CSV_HEADER: [&str; 21] = [
    "id",
    "observed_at",
    "received_at",
    "sensor_id",
    "event_id",
    "event_type",
    "severity",
    "score",
    "technique",
    "source_ip",
    "source_class",
    "source_country",
    "source_asn",
    "source_port",
    "dest_ip",
    "dest_port",
    "dest_zone",
    "protocol",
    "confidence",
    "alert_id",
    "payload",
];

/// A CSV writer into `out`, starting with the header row when asked (one is
/// made per page, so each page's bytes can leave before the next is read).
fn csv_writer(out: &mut Vec<u8>, header: bool) -> csv::Writer<&mut Vec<u8>> {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(out);
    if header {
        w.write_record(CSV_HEADER).expect("writing to memory");
    }
    w
}

/// A cell a spreadsheet will not run: text starting with `=`, `+`, `-`, `@`,
/// a tab or a carriage return is prefixed with `'` (OWASP's advice against
/// CSV injection). Quoting itself is the CSV writer's (RFC 4180).
pub fn safe_cell(value: &str) -> String {
    match value.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{value}"),
        _ => value.to_string(),
    }
}

fn csv_row(e: &Event) -> Vec<String> {
    let opt = |v: &Option<String>| v.as_deref().map(safe_cell).unwrap_or_default();
    let num = |v: Option<i64>| v.map(|n| n.to_string()).unwrap_or_default();
    vec![
        safe_cell(&e.id),
        e.observed_at.clone(),
        e.received_at.clone(),
        safe_cell(&e.sensor_id),
        safe_cell(&e.event_id),
        safe_cell(&e.event_type),
        safe_cell(&e.severity),
        e.score.to_string(),
        opt(&e.technique),
        safe_cell(&e.source_ip),
        safe_cell(&e.source_class),
        opt(&e.source_country),
        num(e.source_asn),
        num(e.source_port),
        opt(&e.dest_ip),
        num(e.dest_port),
        opt(&e.dest_zone),
        opt(&e.protocol),
        e.confidence.to_string(),
        opt(&e.alert_id),
        safe_cell(e.payload.get()),
    ]
}

/// STIX's namespace for the UUIDv5 ids of cyber observables (STIX 2.1 §2.9).
const STIX_NAMESPACE: uuid::Uuid = uuid::uuid!("00abedb4-aa42-466c-9c01-fed23315a9b7");
/// When Vigil's own identity object was made (fixed, so ids and bytes are stable).
const IDENTITY_CREATED: &str = "2026-01-01T00:00:00.000Z";

/// A UUIDv4-shaped id derived from `key`, for objects STIX gives no rule for.
fn derived_id(kind: &str, key: &str) -> String {
    let digest = Sha256::digest(format!("vigil:{kind}:{key}"));
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest[..16]);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    format!("{kind}--{}", uuid::Uuid::from_bytes(b))
}

fn vigil_identity() -> String {
    derived_id("identity", "vigil")
}

#[derive(Default)]
struct Stix {
    started: bool,
    sensors: BTreeSet<String>,
    sources: BTreeSet<String>,
    techniques: BTreeSet<String>,
    relations: BTreeSet<(String, String)>,
}

impl Stix {
    fn push(&mut self, object: Json, out: &mut Vec<u8>) {
        if self.started {
            out.push(b',');
        }
        self.started = true;
        serde_json::to_writer(&mut *out, &object).expect("objects serialize");
    }

    fn event(&mut self, e: &Event, out: &mut Vec<u8>) {
        let creator = vigil_identity();
        if !self.started {
            self.push(
                json!({"type": "identity", "spec_version": "2.1", "id": creator,
                       "created": IDENTITY_CREATED, "modified": IDENTITY_CREATED,
                       "name": "Vigil", "identity_class": "system",
                       "description": "The Vigil security-operations backend that recorded these events"}),
                out,
            );
        }
        let sensor_identity = derived_id("identity", &format!("sensor:{}", e.sensor_id));
        if self.sensors.insert(e.sensor_id.clone()) {
            self.push(
                json!({"type": "identity", "spec_version": "2.1", "id": sensor_identity,
                       "created": e.observed_at, "modified": e.observed_at, "created_by_ref": creator,
                       "name": format!("sensor {}", e.sensor_id), "identity_class": "system"}),
                out,
            );
        }
        let sco_type = if e.source_ip.contains(':') {
            "ipv6-addr"
        } else {
            "ipv4-addr"
        };
        let sco_id = format!(
            "{sco_type}--{}",
            uuid::Uuid::new_v5(
                &STIX_NAMESPACE,
                json!({"value": e.source_ip}).to_string().as_bytes()
            )
        );
        let indicator = derived_id("indicator", &e.source_ip);
        if self.sources.insert(e.source_ip.clone()) {
            self.push(json!({"type": sco_type, "spec_version": "2.1", "id": sco_id, "value": e.source_ip}), out);
            self.push(
                json!({"type": "indicator", "spec_version": "2.1", "id": indicator,
                       "created": e.observed_at, "modified": e.observed_at, "created_by_ref": creator,
                       "name": format!("Hostile source {}", e.source_ip),
                       "description": format!("{} was the source of {} events seen by Vigil's sensors", e.source_ip, e.event_type),
                       "indicator_types": ["malicious-activity"],
                       "pattern": format!("[{sco_type}:value = '{}']", e.source_ip),
                       "pattern_type": "stix", "pattern_version": "2.1",
                       "valid_from": e.observed_at}),
                out,
            );
        }
        let technique = vigil_core::wire::parse_wire::<EventType>(&e.event_type)
            .and_then(EventType::technique)
            .filter(|t| Some(t.id) == e.technique.as_deref());
        if let Some(t) = technique {
            let pattern = derived_id("attack-pattern", t.id);
            if self.techniques.insert(t.id.to_string()) {
                self.push(
                    json!({"type": "attack-pattern", "spec_version": "2.1", "id": pattern,
                           "created": e.observed_at, "modified": e.observed_at, "created_by_ref": creator,
                           "name": t.name,
                           "external_references": [{"source_name": "mitre-attack", "external_id": t.id}]}),
                    out,
                );
            }
            if self
                .relations
                .insert((e.source_ip.clone(), t.id.to_string()))
            {
                self.push(
                    json!({"type": "relationship", "spec_version": "2.1",
                           "id": derived_id("relationship", &format!("{}|{}", e.source_ip, t.id)),
                           "created": e.observed_at, "modified": e.observed_at, "created_by_ref": creator,
                           "relationship_type": "indicates", "source_ref": indicator, "target_ref": pattern}),
                    out,
                );
            }
        }
        let observed = derived_id("observed-data", &e.id);
        self.push(
            json!({"type": "observed-data", "spec_version": "2.1", "id": observed,
                   "created": e.observed_at, "modified": e.observed_at, "created_by_ref": creator,
                   "first_observed": e.observed_at, "last_observed": e.observed_at,
                   "number_observed": 1, "object_refs": [sco_id],
                   "labels": [e.event_type, e.severity]}),
            out,
        );
        self.push(
            json!({"type": "sighting", "spec_version": "2.1", "id": derived_id("sighting", &e.id),
                   "created": e.observed_at, "modified": e.observed_at, "created_by_ref": creator,
                   "first_seen": e.observed_at, "last_seen": e.observed_at, "count": 1,
                   "sighting_of_ref": indicator, "observed_data_refs": [observed],
                   "where_sighted_refs": [sensor_identity],
                   "description": format!("{} event {} (score {}, {})", e.event_type, e.id, e.score, e.severity)}),
            out,
        );
    }
}
