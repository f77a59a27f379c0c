//! Building an evidence pack. The content files come first, in a fixed
//! order, each written once as its rows are read: `record.json`,
//! `alerts.json`, `decisions.json` (with every transition),
//! `playbook_executions.json`, `audit.json`, `events/NNNNNN-<id>.json` (one
//! per event, oldest first, read a page at a time), `report.md`; then
//! `manifest.json` and `manifest.sig`. Every entry has the same fixed
//! timestamp (1980-01-01, the ZIP epoch), permissions and compression, so
//! the same subject in the same state gives the same content files byte
//! for byte; only the manifest's pack id, creation time and creator differ.

use std::io::{Cursor, Write};

use serde::Serialize;
use vigil_core::ApiError;
use vigil_core::sql::{Sql, Value};
use vigil_core::time::rfc3339;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

use crate::manifest::{self, FileEntry, Manifest, PackSubject};
use crate::params_for;
use crate::records::{self, Execution};
use crate::report::{self, EventSummary};
use crate::scope::{Resolved, transitions};
use crate::signing::ExportSigner;

/// Events read per statement while building.
pub const EVENT_PAGE: i64 = 500;

/// Who asked for a pack, and when: what only the manifest carries.
pub struct PackMeta {
    pub pack_id: String,
    pub created_at: i64,
    pub created_by: String,
    pub vigil_version: String,
}

/// A finished, signed pack.
pub struct Built {
    pub bytes: Vec<u8>,
    pub manifest: Manifest,
    /// SHA-256 (hex) of `manifest.json`'s bytes: what the pack list shows.
    pub manifest_sha256: String,
    pub events: u64,
}

/// Writes entries with fixed metadata and keeps each file's size and hash.
struct PackWriter {
    zip: ZipWriter<Cursor<Vec<u8>>>,
    files: Vec<FileEntry>,
}

/// Files smaller than this are stored, larger ones deflated: a deflate
/// stream costs its state (hundreds of KiB set up and cleared) per entry,
/// which for thousands of small event files cost more than compressing
/// them saved. Decided by size alone, so the ZIP stays deterministic.
const DEFLATE_FROM: usize = 16 * 1024;

fn entry_options(size: usize) -> SimpleFileOptions {
    let method = if size < DEFLATE_FROM {
        CompressionMethod::Stored
    } else {
        CompressionMethod::Deflated
    };
    SimpleFileOptions::default()
        .compression_method(method)
        .compression_level((method == CompressionMethod::Deflated).then_some(6))
        .last_modified_time(DateTime::default())
        .unix_permissions(0o644)
}

fn zip_failed(e: impl std::fmt::Display) -> ApiError {
    ApiError::internal().with_detail(format!("writing the pack failed: {e}"))
}

impl PackWriter {
    fn new() -> PackWriter {
        PackWriter {
            zip: ZipWriter::new(Cursor::new(Vec::new())),
            files: Vec::new(),
        }
    }

    fn put(&mut self, path: &str, bytes: &[u8]) -> Result<(), ApiError> {
        self.zip
            .start_file(path, entry_options(bytes.len()))
            .map_err(zip_failed)?;
        self.zip.write_all(bytes).map_err(zip_failed)
    }

    /// A content file, listed in the manifest.
    fn add(&mut self, path: &str, bytes: &[u8]) -> Result<(), ApiError> {
        self.put(path, bytes)?;
        self.files.push(FileEntry {
            path: path.to_string(),
            size: bytes.len() as u64,
            sha256: manifest::sha256_hex(bytes),
        });
        Ok(())
    }

    fn add_json<T: Serialize + ?Sized>(&mut self, path: &str, value: &T) -> Result<(), ApiError> {
        let mut bytes = serde_json::to_vec_pretty(value).expect("records serialize");
        bytes.push(b'\n');
        self.add(path, &bytes)
    }

    fn finish(self) -> Result<Vec<u8>, ApiError> {
        Ok(self.zip.finish().map_err(zip_failed)?.into_inner())
    }
}

async fn rows<T>(
    db: &impl Sql,
    sql: &str,
    params: &[Value],
    map: fn(&[Value]) -> Option<T>,
) -> Result<Vec<T>, ApiError> {
    db.query(sql, &params_for(sql, params))
        .await?
        .iter()
        .map(|r| map(r).ok_or_else(records::unreadable))
        .collect()
}

/// Build and sign the pack of `subject`. Run it inside one read transaction
/// so every part sees the same state.
pub async fn build(
    db: &impl Sql,
    subject: &Resolved,
    meta: &PackMeta,
    signer: &ExportSigner,
) -> Result<Built, ApiError> {
    let params = subject.params();
    let mut pack = PackWriter::new();
    pack.add_json("record.json", &subject.record)?;

    let alerts = rows(
        db,
        &format!(
            "SELECT {} FROM alerts WHERE {} ORDER BY first_seen, id",
            records::ALERT_COLUMNS,
            subject.alerts_where()
        ),
        &params,
        records::alert,
    )
    .await?;
    pack.add_json("alerts.json", &alerts)?;

    let decisions_where = subject.decisions_where();
    let mut decisions = rows(
        db,
        &format!(
            "SELECT {} FROM decisions WHERE {decisions_where} ORDER BY created_at, id",
            records::DECISION_COLUMNS
        ),
        &params,
        records::decision,
    )
    .await?;
    let history = transitions(
        db,
        &format!("decision_id IN (SELECT id FROM decisions WHERE {decisions_where})"),
        &params,
    )
    .await?;
    // Both come sorted; transitions by decision id, so collect per decision.
    let mut by_decision: std::collections::BTreeMap<String, Vec<records::Transition>> =
        std::collections::BTreeMap::new();
    for t in history {
        by_decision
            .entry(t.decision_id.clone())
            .or_default()
            .push(t);
    }
    for d in &mut decisions {
        d.transitions = by_decision.remove(&d.id).unwrap_or_default();
    }
    pack.add_json("decisions.json", &decisions)?;

    let executions: Vec<Execution> = rows(
        db,
        &format!(
            "SELECT {} FROM playbook_executions WHERE {} ORDER BY started_at, id",
            records::EXECUTION_COLUMNS,
            subject.executions_where()
        ),
        &params,
        records::execution,
    )
    .await?;
    pack.add_json("playbook_executions.json", &executions)?;

    let audit = rows(
        db,
        &format!(
            "SELECT {} FROM audit_log WHERE {} ORDER BY id",
            records::AUDIT_COLUMNS,
            subject.audit_where()
        ),
        &params,
        records::audit,
    )
    .await?;
    pack.add_json("audit.json", &audit)?;

    // Events a page at a time, each written as it is read.
    let mut summary = EventSummary::default();
    let events_sql = format!(
        "SELECT {} FROM threat_events WHERE ({}) AND (observed_at, id) > (?4, ?5) \
         ORDER BY observed_at, id LIMIT ?6",
        records::EVENT_COLUMNS,
        subject.events_where()
    );
    let (mut after_ms, mut after_id) = (i64::MIN, String::new());
    let mut n: u64 = 0;
    loop {
        let mut page_params = params.clone();
        page_params.extend([
            Value::Integer(after_ms),
            Value::Text(after_id.clone()),
            Value::Integer(EVENT_PAGE),
        ]);
        let page = db.query(&events_sql, &page_params).await?;
        let full = page.len() as i64 == EVENT_PAGE;
        for row in &page {
            // The schema's constraints make every row readable; one that is
            // not fails the export rather than leave a silent gap in it.
            let event = records::event(row).ok_or_else(records::unreadable)?;
            n += 1;
            summary.add(&event);
            pack.add_json(&format!("events/{n:06}-{}.json", event.id), &event)?;
            (after_ms, after_id) = (event.observed_ms, event.id);
        }
        if !full {
            break;
        }
    }

    let report = report::render(&report::Input {
        subject,
        alerts: &alerts,
        decisions: &decisions,
        executions: &executions,
        audit: &audit,
        events: &summary,
    });
    pack.add("report.md", report.as_bytes())?;

    let manifest = Manifest {
        format: manifest::FORMAT.into(),
        pack_id: meta.pack_id.clone(),
        subject: PackSubject {
            kind: subject.kind.as_str().into(),
            id: subject.id.clone(),
        },
        created_at: rfc3339(meta.created_at),
        created_by: meta.created_by.clone(),
        vigil_version: meta.vigil_version.clone(),
        kid: signer.kid().into(),
        files: std::mem::take(&mut pack.files),
    };
    let manifest_bytes = manifest.to_bytes();
    pack.put(manifest::MANIFEST, &manifest_bytes)?;
    pack.put(manifest::SIGNATURE, signer.sign(&manifest_bytes).as_bytes())?;
    Ok(Built {
        bytes: pack.finish()?,
        manifest_sha256: manifest::sha256_hex(&manifest_bytes),
        manifest,
        events: n,
    })
}
