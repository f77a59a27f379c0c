//! Writing the audit log and the outbox from a component, inside the
//! transaction of the change they record (see [`crate::db::transaction`]).
//! The rules are `vigil-core`'s, shared with the relay: an audited change
//! is an [`Audited`] (entry with before and after, outbox event), written by
//! [`record`]; [`update`] is the whole "load the row before, write, load it
//! after, record both" shape of an edit.

use serde::Serialize;
use spin_sdk::sqlite::Connection;
use vigil_core::ApiError;
use vigil_core::audit::AuditEntry;
pub use vigil_core::audited::Audited;

use crate::db::{SpinSql, ready};

/// Append `entry` to the hash chain.
pub fn append(conn: &Connection, entry: &AuditEntry) -> Result<(), ApiError> {
    ready(vigil_core::audit::append(&SpinSql(conn), entry)).map(drop)
}

/// Append the audit entry and publish the event of one change.
pub fn record(conn: &Connection, audited: &Audited) -> Result<(), ApiError> {
    ready(vigil_core::audited::record(&SpinSql(conn), audited))
}

/// An audited edit of one row, inside the caller's transaction: `load` it
/// (a 404 stops here), `write` the change (which may refuse it, e.g. a stale
/// version), `load` it again, and record what `audit` makes of the row
/// before and after. The row after.
pub fn update<T: Serialize>(
    conn: &Connection,
    load: impl Fn(&Connection) -> Result<T, ApiError>,
    write: impl FnOnce(&Connection, &T) -> Result<(), ApiError>,
    audit: impl FnOnce(&T, &T) -> Audited,
) -> Result<T, ApiError> {
    let before = load(conn)?;
    write(conn, &before)?;
    let after = load(conn)?;
    record(conn, &audit(&before, &after))?;
    Ok(after)
}
