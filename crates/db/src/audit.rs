//! Appending to the audit chain from native code. Call inside the write
//! transaction of the change being audited, so both commit or neither does.

use anyhow::Result;
use vigil_core::audit::{AuditEntry, GENESIS, chain_hash};

pub async fn append(conn: &libsql::Connection, entry: &AuditEntry) -> Result<String> {
    let mut rows = conn
        .query("SELECT hash FROM audit_log ORDER BY id DESC LIMIT 1", ())
        .await?;
    let prev = match rows.next().await? {
        Some(row) => row.get::<String>(0)?,
        None => GENESIS.to_string(),
    };
    let hash = chain_hash(&prev, entry);
    conn.execute(
        "INSERT INTO audit_log (at, actor, action, subject_kind, subject_id, request_id,
                                client_addr, before, after, prev_hash, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        libsql::params![
            entry.at,
            entry.actor.as_str(),
            entry.action.as_str(),
            entry.subject_kind.clone(),
            entry.subject_id.clone(),
            entry.request_id.clone(),
            entry.client_addr.clone(),
            entry.before.clone(),
            entry.after.clone(),
            prev,
            hash.as_str()
        ],
    )
    .await?;
    Ok(hash)
}
