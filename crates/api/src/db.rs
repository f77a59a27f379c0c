//! The `default` database through Spin's SQLite interface
//! (`fermyon:spin/sqlite@2.0.0`): one connection per request, opened on
//! first use and shared by everything the request does (authentication
//! included). Each connection costs the runtime a parse of the whole schema
//! on its first statement, and a round trip on a libSQL server.

use std::cell::OnceCell;

use spin_sdk::sqlite::{Connection, Value};
use vigil_core::ApiError;

thread_local! {
    /// This instance's connection. Spin makes a fresh instance for every
    /// request, so this is the request's connection; the runtime closes it
    /// when it drops the instance.
    static CONNECTION: OnceCell<&'static Connection> = const { OnceCell::new() };
}

/// The request's connection to the `default` database, opened on first use;
/// failure is a 503 (the database is down or unreachable), logged with the
/// reason, and the next call tries again.
pub fn open() -> Result<&'static Connection, ApiError> {
    CONNECTION.with(|cell| {
        if let Some(conn) = cell.get() {
            return Ok(*conn);
        }
        let conn = Connection::open_default().map_err(|e| unavailable("open", &e))?;
        Ok(*cell.get_or_init(|| Box::leak(Box::new(conn))))
    })
}

/// Run one statement and return its rows.
pub fn query(conn: &Connection, sql: &str, params: &[Value]) -> Result<Vec<Vec<Value>>, ApiError> {
    let result = conn
        .execute(sql, params)
        .map_err(|e| unavailable(sql, &e))?;
    Ok(result.rows.into_iter().map(|r| r.values).collect())
}

/// The schema version the database is at (0 when unmigrated). One
/// statement on the happy path: each costs a round trip on a libSQL server.
pub fn schema_version(conn: &Connection) -> Result<i64, ApiError> {
    match conn.execute("SELECT max(version) FROM schema_migrations", &[]) {
        Ok(result) => match result.rows.first().and_then(|r| r.values.first()) {
            Some(Value::Integer(v)) => Ok(*v),
            _ => Ok(0),
        },
        Err(spin_sdk::sqlite::Error::Io(msg)) if msg.contains("no such table") => Ok(0),
        Err(e) => Err(unavailable("schema version", &e)),
    }
}

fn unavailable(what: &str, e: &spin_sdk::sqlite::Error) -> ApiError {
    crate::log::line(
        serde_json::json!({"level": "error", "msg": "database error", "database": "default", "statement": what, "error": format!("{e:?}")}),
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

/// Column `i` of a row as text, if it is text.
pub fn text(row: &[Value], i: usize) -> Option<String> {
    match row.get(i) {
        Some(Value::Text(s)) => Some(s.clone()),
        _ => None,
    }
}

/// Column `i` of a row as an integer, if it is one.
pub fn int(row: &[Value], i: usize) -> Option<i64> {
    match row.get(i) {
        Some(Value::Integer(n)) => Some(*n),
        _ => None,
    }
}

/// Column `i` of a row as a float (SQLite may hand back a whole number as an integer).
pub fn real(row: &[Value], i: usize) -> Option<f64> {
    match row.get(i) {
        Some(Value::Real(x)) => Some(*x),
        Some(Value::Integer(n)) => Some(*n as f64),
        _ => None,
    }
}
