//! Writing the audit log and the outbox from a component, inside the
//! transaction of the change they record (see [`crate::db::transaction`]).
//! The rules are `vigil-core`'s, shared with the relay.

use spin_sdk::sqlite::Connection;
use vigil_core::ApiError;
use vigil_core::audit::AuditEntry;

use crate::db::{SpinSql, ready};

/// Append `entry` to the hash chain.
pub fn append(conn: &Connection, entry: &AuditEntry) -> Result<(), ApiError> {
    ready(vigil_core::audit::append(&SpinSql(conn), entry)).map(drop)
}

/// Publish an event to the `events` outbox (the relay pushes it to subscribers).
pub fn publish(
    conn: &Connection,
    event_type: &str,
    payload: &serde_json::Value,
    at: i64,
) -> Result<(), ApiError> {
    ready(vigil_core::outbox::publish(
        &SpinSql(conn),
        event_type,
        payload,
        at,
    ))
}
