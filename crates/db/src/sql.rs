//! [`vigil_core::sql::Sql`] over a `libsql` connection (or transaction), so
//! the relay and the CLI run the same shared writes as the components.

use libsql::Connection;
use vigil_core::ApiError;
use vigil_core::sql::{Row, Sql, Value};

/// A libSQL connection as the shared code takes it.
pub struct LibsqlSql<'a>(pub &'a Connection);

impl Sql for LibsqlSql<'_> {
    async fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, ApiError> {
        let params: Vec<libsql::Value> = params.iter().cloned().map(to_libsql).collect();
        let failed = |e: libsql::Error| {
            eprintln!(
                "{}",
                serde_json::json!({"level": "error", "msg": "database error", "statement": sql, "error": e.to_string()})
            );
            ApiError::unavailable("the database is unavailable")
        };
        let mut rows = self.0.query(sql, params).await.map_err(failed)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().await.map_err(failed)? {
            let columns = row.column_count();
            let mut values = Vec::with_capacity(columns as usize);
            for i in 0..columns {
                values.push(from_libsql(row.get_value(i).map_err(failed)?));
            }
            out.push(values);
        }
        Ok(out)
    }
}

fn to_libsql(value: Value) -> libsql::Value {
    match value {
        Value::Null => libsql::Value::Null,
        Value::Integer(n) => libsql::Value::Integer(n),
        Value::Real(x) => libsql::Value::Real(x),
        Value::Text(s) => libsql::Value::Text(s),
        Value::Blob(b) => libsql::Value::Blob(b),
    }
}

fn from_libsql(value: libsql::Value) -> Value {
    match value {
        libsql::Value::Null => Value::Null,
        libsql::Value::Integer(n) => Value::Integer(n),
        libsql::Value::Real(x) => Value::Real(x),
        libsql::Value::Text(s) => Value::Text(s),
        libsql::Value::Blob(b) => Value::Blob(b),
    }
}

/// Open a write transaction: `BEGIN IMMEDIATE` takes the write lock at once,
/// so the statements after it never fail half-way on a lock.
pub async fn begin_immediate(conn: &Connection) -> Result<(), ApiError> {
    LibsqlSql(conn)
        .query("BEGIN IMMEDIATE", &[])
        .await
        .map(drop)
}

/// End the transaction [`begin_immediate`] opened: commit what was
/// `written`, or roll back on its error (which is returned).
pub async fn finish<T>(conn: &Connection, written: Result<T, ApiError>) -> Result<T, ApiError> {
    match written {
        Ok(value) => {
            LibsqlSql(conn).query("COMMIT", &[]).await?;
            Ok(value)
        }
        Err(e) => {
            let _ = conn.execute("ROLLBACK", ()).await;
            Err(e)
        }
    }
}
