//! The `events` outbox: every change publishes its event in the transaction
//! that makes it, and the relay tails the table by id to push it to
//! subscribers. A row is (type, payload JSON, created_at in ms).

use crate::ApiError;
use crate::sql::{Row, Sql, Value, insert_rows};

/// The multi-row insert [`rows`](row) go to.
const INSERT: &str = "INSERT INTO events (type, payload, created_at) VALUES ";

/// An outbox row for [`publish_all`].
pub fn row(event_type: &str, payload: &serde_json::Value, at: i64) -> Row {
    vec![
        Value::Text(event_type.into()),
        Value::Text(payload.to_string()),
        Value::Integer(at),
    ]
}

/// Publish one event.
pub async fn publish(
    db: &impl Sql,
    event_type: &str,
    payload: &serde_json::Value,
    at: i64,
) -> Result<(), ApiError> {
    publish_all(db, vec![row(event_type, payload, at)]).await
}

/// Publish many events, in order, in a handful of statements.
pub async fn publish_all(db: &impl Sql, rows: Vec<Row>) -> Result<(), ApiError> {
    insert_rows(db, INSERT, rows).await
}
