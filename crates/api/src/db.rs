//! The `default` database through Spin's SQLite interface
//! (`fermyon:spin/sqlite@2.0.0`): a fresh connection per request, as Spin
//! gives each instance.

use spin_sdk::sqlite::{Connection, Value};
use vigil_core::ApiError;

/// Open the `default` database; failure is a 503 (the database is down or
/// unreachable), logged with the reason.
pub fn open() -> Result<Connection, ApiError> {
    Connection::open_default().map_err(|e| unavailable("open", &e))
}

/// Run one statement and return its rows.
pub fn query(conn: &Connection, sql: &str, params: &[Value]) -> Result<Vec<Vec<Value>>, ApiError> {
    let result = conn
        .execute(sql, params)
        .map_err(|e| unavailable(sql, &e))?;
    Ok(result.rows.into_iter().map(|r| r.values).collect())
}

/// The schema version the database is at (0 when unmigrated).
pub fn schema_version(conn: &Connection) -> Result<i64, ApiError> {
    let exists = query(
        conn,
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'",
        &[],
    )?;
    if matches!(
        exists.first().and_then(|r| r.first()),
        Some(Value::Integer(0))
    ) {
        return Ok(0);
    }
    let rows = query(
        conn,
        "SELECT coalesce(max(version), 0) FROM schema_migrations",
        &[],
    )?;
    match rows.first().and_then(|r| r.first()) {
        Some(Value::Integer(v)) => Ok(*v),
        _ => Ok(0),
    }
}

fn unavailable(what: &str, e: &spin_sdk::sqlite::Error) -> ApiError {
    eprintln!(
        "{}",
        serde_json::json!({"level": "error", "msg": "database error", "database": "default", "statement": what, "error": format!("{e:?}")})
    );
    ApiError::unavailable("the database is unavailable")
}

/// Run `body` in one `BEGIN IMMEDIATE … COMMIT` transaction: the write lock is
/// taken up front (no deadlock-prone upgrade from a read lock), and the state
/// change, its audit entry and its outbox event commit together or not at all.
pub fn transaction<T>(
    conn: &Connection,
    body: impl FnOnce(&Connection) -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    query(conn, "BEGIN IMMEDIATE", &[])?;
    match body(conn) {
        Ok(value) => {
            query(conn, "COMMIT", &[])?;
            Ok(value)
        }
        Err(err) => {
            // Best effort: a failed ROLLBACK leaves the connection to be dropped
            // with the instance, which rolls back too.
            let _ = conn.execute("ROLLBACK", &[]);
            Err(err)
        }
    }
}

/// Text or NULL.
pub fn opt_text(value: Option<&str>) -> Value {
    value.map_or(Value::Null, |s| Value::Text(s.to_string()))
}
