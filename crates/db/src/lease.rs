//! Leases of the relay's scheduled jobs (table `job_leases`): several relays
//! may run against one database, and a job runs only where its lease is held,
//! so it has one runner at a time. A lease is taken (or renewed) in one
//! statement, so two relays asking at once cannot both get it; a runner that
//! dies simply lets its lease expire.

use vigil_core::ApiError;
use vigil_core::sql::{Sql, Value, int};

/// Take or renew `job`'s lease for `holder` until `expires_at`: true when
/// `holder` now holds it (it was free, expired at `now`, or already its own).
pub async fn acquire(
    db: &impl Sql,
    job: &str,
    holder: &str,
    now: i64,
    expires_at: i64,
) -> Result<bool, ApiError> {
    let rows = db
        .query(
            "INSERT INTO job_leases (job, holder, expires_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (job) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
               WHERE job_leases.holder = excluded.holder OR job_leases.expires_at <= ?4
             RETURNING holder",
            &[
                Value::Text(job.into()),
                Value::Text(holder.into()),
                Value::Integer(expires_at),
                Value::Integer(now),
            ],
        )
        .await?;
    Ok(!rows.is_empty())
}

/// Give `job`'s lease up (at shutdown), if `holder` holds it.
pub async fn release(db: &impl Sql, job: &str, holder: &str) -> Result<(), ApiError> {
    db.query(
        "UPDATE job_leases SET expires_at = 0 WHERE job = ?1 AND holder = ?2",
        &[Value::Text(job.into()), Value::Text(holder.into())],
    )
    .await
    .map(drop)
}

/// Note what the last run of `job` did (JSON), for operators.
pub async fn record_run(
    db: &impl Sql,
    job: &str,
    at: i64,
    outcome: &serde_json::Value,
) -> Result<(), ApiError> {
    db.query(
        "UPDATE job_leases SET last_run_at = ?2, last_outcome = ?3 WHERE job = ?1",
        &[
            Value::Text(job.into()),
            Value::Integer(at),
            Value::Text(outcome.to_string()),
        ],
    )
    .await
    .map(drop)
}

/// When `job` last ran (anywhere); `None` before its first run.
pub async fn last_run(db: &impl Sql, job: &str) -> Result<Option<i64>, ApiError> {
    let rows = db
        .query(
            "SELECT last_run_at FROM job_leases WHERE job = ?1",
            &[Value::Text(job.into())],
        )
        .await?;
    Ok(rows.first().and_then(|r| int(r, 0)))
}

/// How far `job` has followed the outbox (0 before its first run).
pub async fn position(db: &impl Sql, job: &str) -> Result<i64, ApiError> {
    let rows = db
        .query(
            "SELECT position FROM job_leases WHERE job = ?1",
            &[Value::Text(job.into())],
        )
        .await?;
    Ok(rows.first().and_then(|r| int(r, 0)).unwrap_or(0))
}

/// `job` has handled the outbox through `id`: written in the transaction of
/// what it did, so a crash never skips or repeats an event.
pub async fn advance(db: &impl Sql, job: &str, id: i64) -> Result<(), ApiError> {
    db.query(
        "UPDATE job_leases SET position = max(position, ?2) WHERE job = ?1",
        &[Value::Text(job.into()), Value::Integer(id)],
    )
    .await
    .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Target;
    use crate::migrations::{embedded, migrate};
    use crate::sql::LibsqlSql;

    #[tokio::test]
    async fn one_holder_at_a_time_until_the_lease_expires() {
        let dir = tempfile::tempdir().unwrap();
        let target = Target::Local(dir.path().join("v.db"));
        migrate(&target, &embedded()).await.unwrap();
        let conn = target.connect().await.unwrap();
        let db = LibsqlSql(&conn);
        assert!(acquire(&db, "retention", "a", 1_000, 2_000).await.unwrap());
        // Held by a: b is refused, a renews.
        assert!(!acquire(&db, "retention", "b", 1_500, 2_500).await.unwrap());
        assert!(acquire(&db, "retention", "a", 1_500, 2_500).await.unwrap());
        // Another job's lease is its own.
        assert!(acquire(&db, "staleness", "b", 1_500, 2_500).await.unwrap());
        // Expired: b takes it over, and a no longer holds it.
        assert!(acquire(&db, "retention", "b", 2_500, 3_500).await.unwrap());
        assert!(!acquire(&db, "retention", "a", 2_600, 3_600).await.unwrap());
        // Released: anyone may take it at once.
        release(&db, "retention", "b").await.unwrap();
        assert!(acquire(&db, "retention", "a", 2_700, 3_700).await.unwrap());
        // The position only moves forward.
        assert_eq!(position(&db, "retention").await.unwrap(), 0);
        advance(&db, "retention", 42).await.unwrap();
        advance(&db, "retention", 7).await.unwrap();
        assert_eq!(position(&db, "retention").await.unwrap(), 42);
        assert_eq!(last_run(&db, "retention").await.unwrap(), None);
        record_run(&db, "retention", 2_800, &serde_json::json!({"changed": 0}))
            .await
            .unwrap();
        assert_eq!(last_run(&db, "retention").await.unwrap(), Some(2_800));
    }
}
