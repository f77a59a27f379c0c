//! The statement-level database interface both halves of Vigil speak: the
//! components through Spin's SQLite interface (`vigil_api::db`), the relay
//! and the CLI through the `libsql` crate (`vigil_db`). What both must write
//! the same way (the audit chain, the outbox, ingestion) is written once
//! against [`Sql`], and each side supplies the connection.

use std::future::Future;

use crate::ApiError;

/// A parameter or a column value, as SQLite types them.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

/// One result row, its columns in the statement's order.
pub type Row = Vec<Value>;

/// A connection that runs one statement at a time. Transactions are the
/// caller's: it opens one (`BEGIN IMMEDIATE`) around the calls that must
/// commit together.
pub trait Sql {
    /// Run one statement with positional parameters (`?1`, `?2` … or `?`)
    /// and return its rows; a failure is a 503 problem, logged by the
    /// implementation with the statement.
    fn query(
        &self,
        sql: &str,
        params: &[Value],
    ) -> impl Future<Output = Result<Vec<Row>, ApiError>>;
}

/// Text or NULL.
pub fn opt_text(value: Option<&str>) -> Value {
    value.map_or(Value::Null, |s| Value::Text(s.to_string()))
}

/// An integer or NULL.
pub fn opt_int(value: Option<impl Into<i64>>) -> Value {
    value.map_or(Value::Null, |n| Value::Integer(n.into()))
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

/// Run `insert` (ending in `VALUES `) over `rows` (all of one width), as
/// many rows per statement as keep the parameter count far below SQLite's
/// and libSQL's limits: a batch costs a handful of statements, which matters
/// where every statement is a network round trip.
pub async fn insert_rows(db: &impl Sql, insert: &str, rows: Vec<Row>) -> Result<(), ApiError> {
    insert_rows_then(db, insert, rows, "").await
}

/// [`insert_rows`] with `tail` after the values of each statement (an
/// `ON CONFLICT … DO UPDATE` clause, for upserts).
pub async fn insert_rows_then(
    db: &impl Sql,
    insert: &str,
    rows: Vec<Row>,
    tail: &str,
) -> Result<(), ApiError> {
    const MAX_PARAMS: usize = 2400;
    let Some(width) = rows.first().map(Vec::len) else {
        return Ok(());
    };
    let tuple = format!("({})", vec!["?"; width].join(", "));
    for chunk in rows.chunks((MAX_PARAMS / width.max(1)).max(1)) {
        // Anonymous `?` marks number themselves in order.
        let sql = format!(
            "{insert}{}{tail}",
            vec![tuple.as_str(); chunk.len()].join(", ")
        );
        let params: Vec<Value> = chunk.iter().flatten().cloned().collect();
        db.query(&sql, &params).await?;
    }
    Ok(())
}
