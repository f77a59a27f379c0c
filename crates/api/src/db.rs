//! The `default` database through Spin's SQLite interface
//! (`fermyon:spin/sqlite@2.0.0`): one connection per request, opened on
//! first use and shared by everything the request does (authentication
//! included). Each connection costs the runtime a parse of the whole schema
//! on its first statement, and a round trip on a libSQL server.

use std::cell::{Cell, OnceCell};
use std::future::Future;
use std::time::{Duration, Instant};

use spin_sdk::sqlite::{self as spin, Connection};
use vigil_core::ApiError;
pub use vigil_core::sql::{Columns, Named, Row, Value, int, opt_int, opt_text, real, text};

thread_local! {
    /// This instance's connection. Spin makes a fresh instance for every
    /// request, so this is the request's connection; the runtime closes it
    /// when it drops the instance.
    static CONNECTION: OnceCell<&'static Connection> = const { OnceCell::new() };
    /// Time this request spent waiting for the write lock (`BEGIN IMMEDIATE`).
    static LOCK_WAIT_US: Cell<u64> = const { Cell::new(0) };
    /// Time this request held the write lock (from `BEGIN IMMEDIATE` to the end).
    static LOCK_HELD_US: Cell<u64> = const { Cell::new(0) };
}

/// Microseconds this request waited for the write lock, for its request log.
pub fn lock_wait_us() -> u64 {
    LOCK_WAIT_US.with(Cell::get)
}

/// Microseconds this request held the write lock, for its request log: what
/// every other writer waits for.
pub fn lock_held_us() -> u64 {
    LOCK_HELD_US.with(Cell::get)
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
pub fn query(conn: &Connection, sql: &str, params: &[Value]) -> Result<Vec<Row>, ApiError> {
    let params: Vec<spin::Value> = params.iter().cloned().map(to_spin).collect();
    let result = conn
        .execute(sql, &params)
        .map_err(|e| unavailable(sql, &e))?;
    Ok(result
        .rows
        .into_iter()
        .map(|r| r.values.into_iter().map(from_spin).collect())
        .collect())
}

fn to_spin(value: Value) -> spin::Value {
    match value {
        Value::Null => spin::Value::Null,
        Value::Integer(n) => spin::Value::Integer(n),
        Value::Real(x) => spin::Value::Real(x),
        Value::Text(s) => spin::Value::Text(s),
        Value::Blob(b) => spin::Value::Blob(b),
    }
}

fn from_spin(value: spin::Value) -> Value {
    match value {
        spin::Value::Null => Value::Null,
        spin::Value::Integer(n) => Value::Integer(n),
        spin::Value::Real(x) => Value::Real(x),
        spin::Value::Text(s) => Value::Text(s),
        spin::Value::Blob(b) => Value::Blob(b),
    }
}

/// A connection as the shared code in the domain crates takes it
/// ([`vigil_core::sql::Sql`]); run what they return with [`ready`].
pub struct SpinSql<'a>(pub &'a Connection);

impl vigil_core::sql::Sql for SpinSql<'_> {
    async fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, ApiError> {
        query(self.0, sql, params)
    }
}

/// The result of shared code run on a [`SpinSql`]: Spin's SQLite calls
/// block, so its futures are complete when first polled.
pub fn ready<T>(work: impl Future<Output = T>) -> T {
    futures::executor::block_on(work)
}

/// The schema version the database is at (0 when unmigrated). One
/// statement on the happy path, and one that does not need the schema:
/// `vigil migrate` keeps the version in the file header (`user_version`), so
/// a health check costs the runtime no parse of the schema. A database last
/// migrated by an older `vigil` has 0 there; then the ledger is asked.
pub fn schema_version(conn: &Connection) -> Result<i64, ApiError> {
    let header = query(conn, "PRAGMA user_version", &[])?;
    if let Some(v) = header.first().and_then(|r| int(r, 0)).filter(|v| *v > 0) {
        return Ok(v);
    }
    match conn.execute("SELECT max(version) FROM schema_migrations", &[]) {
        Ok(result) => match result.rows.first().and_then(|r| r.values.first()) {
            Some(spin::Value::Integer(v)) => Ok(*v),
            _ => Ok(0),
        },
        Err(spin::Error::Io(msg)) if msg.contains("no such table") => Ok(0),
        Err(e) => Err(unavailable("schema version", &e)),
    }
}

fn unavailable(what: &str, e: &spin::Error) -> ApiError {
    let error = format!("{e:?}");
    crate::log::line(
        serde_json::json!({"level": "error", "msg": "database error", "database": "default", "statement": what, "error": error}),
    );
    // SQLite's "interrupted", or a libSQL server ending a transaction that
    // held the write lock past its timeout while others waited.
    if error.contains("interrupted") || error.contains("TRANSACTION_TIMEOUT") {
        return ApiError::unavailable(INTERRUPTED);
    }
    ApiError::unavailable("the database is unavailable")
}

/// The detail of a 503 for a statement the database interrupted (the
/// transaction is rolled back; trying it again may succeed).
const INTERRUPTED: &str = "the database interrupted the transaction";

fn interrupted(err: &ApiError) -> bool {
    err.status == 503 && err.detail.as_deref() == Some(INTERRUPTED)
}

/// Run `body` in one `BEGIN IMMEDIATE … COMMIT` transaction: the write lock is
/// taken up front (no deadlock-prone upgrade from a read lock), and the state
/// change, its audit entry and its outbox event commit together or not at all.
///
/// A libSQL server may interrupt a statement it did not mean to (sqld
/// 0.24's cursor endpoint cancels the next statement on a connection when a
/// client stops reading the previous answer early); the transaction is then
/// rolled back whole, so `body` is run again from the start, up to
/// [`TRIES`] times. `body` must therefore not keep what it did in a failed
/// try (start from its inputs each time).
pub fn transaction<T>(
    conn: &Connection,
    mut body: impl FnMut(&Connection) -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    let mut tries = 1;
    loop {
        match transaction_once(conn, &mut body) {
            Err(err) if interrupted(&err) && tries < TRIES => tries += 1,
            result => return result,
        }
    }
}

/// Most tries of a transaction the database interrupts.
const TRIES: u32 = 3;

fn transaction_once<T>(
    conn: &Connection,
    body: &mut impl FnMut(&Connection) -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    let waiting = Instant::now();
    begin_immediate(conn)?;
    let waited = waiting.elapsed().as_micros() as u64;
    LOCK_WAIT_US.with(|total| total.set(total.get() + waited));
    let holding = Instant::now();
    let result = match body(conn) {
        Ok(value) => query(conn, "COMMIT", &[]).map(|_| value),
        Err(err) => {
            // Best effort: a failed ROLLBACK leaves the connection to be dropped
            // with the instance, which rolls back too.
            let _ = conn.execute("ROLLBACK", &[]);
            Err(err)
        }
    };
    let held = holding.elapsed().as_micros() as u64;
    LOCK_HELD_US.with(|total| total.set(total.get() + held));
    result
}

/// How long a write waits for the write lock before its request fails (503).
const LOCK_TIMEOUT: Duration = Duration::from_secs(5);
/// The runtime's busy timeout (rusqlite's default), restored once the lock is held.
const BUSY_TIMEOUT_MS: u64 = 5000;

/// Take the write lock, waiting for it fairly. SQLite's own busy handler
/// sleeps ever longer between tries (up to 100 ms), so under load a writer
/// that has waited long loses to newcomers again and again (measured: p99
/// of 1.6 s waiting for the lock with 4 writers of 100 ms transactions).
/// Instead the busy handler is off while we ask, and we ask again every 1
/// to 3 ms (jittered, so waiters do not ask in step), so writers take the
/// lock in about the order they came; then the usual handler is back for
/// what follows. A libSQL server refuses the pragma and queues writers
/// itself: there the lock is simply asked for.
fn begin_immediate(conn: &Connection) -> Result<(), ApiError> {
    let handler_off = conn.execute("PRAGMA busy_timeout = 0", &[]).is_ok();
    let started = Instant::now();
    loop {
        match conn.execute("BEGIN IMMEDIATE", &[]) {
            Ok(_) => break,
            Err(e) if handler_off && is_busy(&e) && started.elapsed() < LOCK_TIMEOUT => {
                let jitter = u64::from(getrandom::u32().unwrap_or(0) % 2000);
                std::thread::sleep(Duration::from_micros(1000 + jitter));
            }
            Err(e) => return Err(unavailable("BEGIN IMMEDIATE", &e)),
        }
    }
    if handler_off
        && let Err(e) = query(
            conn,
            &format!("PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}"),
            &[],
        )
    {
        let _ = conn.execute("ROLLBACK", &[]);
        return Err(e);
    }
    Ok(())
}

/// Whether SQLite refused because another connection holds the lock.
fn is_busy(e: &spin::Error) -> bool {
    matches!(e, spin::Error::Io(msg) if msg.contains("locked") || msg.contains("busy"))
}
