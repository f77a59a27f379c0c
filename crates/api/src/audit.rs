//! Writing the audit log and the outbox from a component, inside the
//! transaction of the change they record (see [`crate::db::transaction`]).

use spin_sdk::sqlite::{Connection, Value};
use vigil_core::ApiError;
use vigil_core::audit::{AuditEntry, GENESIS, chain_hash};

use crate::db::{opt_text, query};

/// Append `entry` to the hash chain.
pub fn append(conn: &Connection, entry: &AuditEntry) -> Result<(), ApiError> {
    let rows = query(
        conn,
        "SELECT hash FROM audit_log ORDER BY id DESC LIMIT 1",
        &[],
    )?;
    let prev = match rows.first().and_then(|r| r.first()) {
        Some(Value::Text(h)) => h.clone(),
        _ => GENESIS.to_string(),
    };
    let hash = chain_hash(&prev, entry);
    query(
        conn,
        "INSERT INTO audit_log (at, actor, action, subject_kind, subject_id, request_id,
                                client_addr, before, after, prev_hash, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        &[
            Value::Integer(entry.at),
            Value::Text(entry.actor.clone()),
            Value::Text(entry.action.clone()),
            opt_text(entry.subject_kind.as_deref()),
            opt_text(entry.subject_id.as_deref()),
            opt_text(entry.request_id.as_deref()),
            opt_text(entry.client_addr.as_deref()),
            opt_text(entry.before.as_deref()),
            opt_text(entry.after.as_deref()),
            Value::Text(prev),
            Value::Text(hash),
        ],
    )?;
    Ok(())
}

/// Publish an event to the `events` outbox (the relay pushes it to subscribers).
pub fn publish(
    conn: &Connection,
    event_type: &str,
    payload: &serde_json::Value,
    at: i64,
) -> Result<(), ApiError> {
    query(
        conn,
        "INSERT INTO events (type, payload, created_at) VALUES (?1, ?2, ?3)",
        &[
            Value::Text(event_type.to_string()),
            Value::Text(payload.to_string()),
            Value::Integer(at),
        ],
    )?;
    Ok(())
}
