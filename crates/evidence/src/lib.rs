//! Vigil's export rules, in plain Rust: they run natively in unit tests and
//! in the `vigil` CLI, and unchanged inside the `export` component. Reads go
//! through [`vigil_core::sql::Sql`], so the same code builds a pack over
//! Spin's SQLite interface or a libsql connection.
//!
//! - [`signing`]: the export signing key (Ed25519 with its `kid`), its public
//!   JWKS, raw signatures and compact JWS, and checking both.
//! - [`records`]: the JSON forms of stored rows (events, alerts, decisions with
//!   their transitions, playbook executions, sensors, audit entries).
//! - [`scope`]: which rows a pack about an alert, decision, threat or sensor
//!   holds, as SQL conditions.
//! - [`pack`]: building a pack page by page into a deterministic ZIP (fixed
//!   order, fixed timestamps), its `report.md`, manifest and signature.
//! - [`report`]: the readable account, `report.md`.
//! - [`manifest`]: `manifest.json`, and verifying a pack offline.
//! - [`audit_log`]: the audit log as JSONL, walking its chain page by page,
//!   the signed head and checking a saved one (anchoring).
//! - [`threat_export`]: threats as CSV (formula-safe), JSONL and a STIX 2.1 bundle.

pub mod audit_log;
pub mod manifest;
pub mod pack;
pub mod records;
pub mod report;
pub mod scope;
pub mod signing;
pub mod threat_export;

/// Only values up to the highest `?N` a statement names: SQLite refuses a
/// statement given more parameters than it has, and the scope's conditions
/// do not all use every value.
pub(crate) fn params_for(
    sql: &str,
    values: &[vigil_core::sql::Value],
) -> Vec<vigil_core::sql::Value> {
    let bytes = sql.as_bytes();
    let mut max = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'?' {
            let start = i + 1;
            let mut end = start;
            while end < bytes.len() && bytes[end].is_ascii_digit() {
                end += 1;
            }
            if let Ok(n) = sql[start..end].parse::<usize>() {
                max = max.max(n);
            }
            i = end;
        } else {
            i += 1;
        }
    }
    values[..max.min(values.len())].to_vec()
}

#[cfg(test)]
mod tests;
