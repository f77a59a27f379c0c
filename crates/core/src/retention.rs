//! Retention and cleanup: what Vigil deletes, and when. Threat events and
//! dead letters past the event retention, outbox rows past the outbox
//! retention, and the short-lived rows of authentication (expired
//! challenges, idempotency keys, rate-limit windows; sessions, refresh
//! tokens, invitations and onboarding tokens a day after they expired, so
//! their listings can still say "expired" for a while). The audit log is
//! never deleted: it is a hash chain. Decisions and alerts are kept (they
//! are the record of what people decided).
//!
//! Each statement deletes at most [`CHUNK`] rows, so a sweep is a series of
//! short write transactions that never hold the lock for long.

use crate::ApiError;
use crate::sql::{Sql, Value, int};

const HOUR_MS: i64 = 3600 * 1000;
const DAY_MS: i64 = 24 * HOUR_MS;

/// Rows one statement deletes at most.
pub const CHUNK: i64 = 5000;

/// How long expired rows that someone may still list are kept.
pub const EXPIRED_GRACE_MS: i64 = DAY_MS;

/// Rate-limit windows older than this are over (the longest window is an hour).
pub const RATE_LIMIT_KEEP_MS: i64 = DAY_MS;

/// How long things are kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    /// Threat events (by the time they were observed) and dead letters.
    pub events_ms: i64,
    /// Outbox rows: how far back a WebSocket client can resume.
    pub outbox_ms: i64,
}

/// What is deleted: a table, and a statement deleting at most `?2` rows
/// older than the cutoff `?1` (which [`cutoff`] gives).
const SWEEPS: &[(&str, &str)] = &[
    (
        "threat_events",
        "DELETE FROM threat_events WHERE rowid IN
           (SELECT rowid FROM threat_events WHERE observed_at < ?1 ORDER BY observed_at LIMIT ?2)",
    ),
    (
        "dead_letters",
        "DELETE FROM dead_letters WHERE id IN
           (SELECT id FROM dead_letters WHERE received_at < ?1 ORDER BY received_at LIMIT ?2)",
    ),
    // Outbox ids grow with time: only the oldest rows need looking at.
    (
        "events",
        "DELETE FROM events WHERE id IN (SELECT id FROM events ORDER BY id LIMIT ?2) AND created_at < ?1",
    ),
    (
        "idempotency_keys",
        "DELETE FROM idempotency_keys WHERE (scope, key) IN
           (SELECT scope, key FROM idempotency_keys WHERE expires_at < ?1 LIMIT ?2)",
    ),
    (
        "mfa_challenges",
        "DELETE FROM mfa_challenges WHERE token_hash IN
           (SELECT token_hash FROM mfa_challenges WHERE expires_at < ?1 LIMIT ?2)",
    ),
    (
        "rate_limits",
        "DELETE FROM rate_limits WHERE (bucket, key, window_start) IN
           (SELECT bucket, key, window_start FROM rate_limits WHERE window_start < ?1 LIMIT ?2)",
    ),
    (
        "refresh_tokens",
        "DELETE FROM refresh_tokens WHERE rowid IN
           (SELECT rowid FROM refresh_tokens WHERE expires_at < ?1 LIMIT ?2)",
    ),
    (
        "sessions",
        "DELETE FROM sessions WHERE rowid IN (SELECT rowid FROM sessions WHERE expires_at < ?1 LIMIT ?2)",
    ),
    (
        "invitations",
        "DELETE FROM invitations WHERE rowid IN
           (SELECT rowid FROM invitations WHERE expires_at < ?1 AND used_at IS NULL LIMIT ?2)",
    ),
    // A lockout row nothing has touched for 30 days: no lock, no failure in
    // a window, and an address the account no longer counts as known.
    (
        "login_failures",
        "DELETE FROM login_failures WHERE (user_id, client_addr) IN
           (SELECT user_id, client_addr FROM login_failures
             WHERE max(coalesce(locked_until, 0), coalesce(first_failure_at, 0), coalesce(last_success_at, 0)) < ?1
             LIMIT ?2)",
    ),
    (
        "sensor_onboarding_tokens",
        "DELETE FROM sensor_onboarding_tokens WHERE rowid IN
           (SELECT rowid FROM sensor_onboarding_tokens WHERE expires_at < ?1 AND used_at IS NULL LIMIT ?2)",
    ),
];

/// The time before which `table`'s rows go, at `now`.
fn cutoff(table: &str, policy: &Retention, now: i64) -> i64 {
    match table {
        "threat_events" | "dead_letters" => now - policy.events_ms,
        "events" => now - policy.outbox_ms,
        "idempotency_keys" | "mfa_challenges" => now,
        "rate_limits" => now - RATE_LIMIT_KEEP_MS,
        "login_failures" => now - crate::login::KNOWN_ADDRESS_MS,
        _ => now - EXPIRED_GRACE_MS,
    }
}

/// One round: at most [`CHUNK`] rows from each table, inside the caller's
/// write transaction. Returns the tables that lost rows, with how many; the
/// caller repeats (a transaction each) until it is empty.
pub async fn sweep(
    db: &impl Sql,
    policy: &Retention,
    now: i64,
) -> Result<Vec<(&'static str, u64)>, ApiError> {
    let mut deleted = Vec::new();
    for (table, statement) in SWEEPS {
        let params = [
            Value::Integer(cutoff(table, policy, now)),
            Value::Integer(CHUNK),
        ];
        db.query(statement, &params).await?;
        let changes = db.query("SELECT changes()", &[]).await?;
        let n = changes.first().and_then(|r| int(r, 0)).unwrap_or(0);
        if n > 0 {
            deleted.push((*table, n as u64));
        }
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_has_its_cutoff() {
        let policy = Retention {
            events_ms: 90 * DAY_MS,
            outbox_ms: 7 * DAY_MS,
        };
        let now = 1_000 * DAY_MS;
        assert_eq!(cutoff("threat_events", &policy, now), now - 90 * DAY_MS);
        assert_eq!(cutoff("dead_letters", &policy, now), now - 90 * DAY_MS);
        assert_eq!(cutoff("events", &policy, now), now - 7 * DAY_MS);
        assert_eq!(cutoff("mfa_challenges", &policy, now), now);
        assert_eq!(cutoff("rate_limits", &policy, now), now - DAY_MS);
        assert_eq!(cutoff("sessions", &policy, now), now - DAY_MS);
        assert_eq!(cutoff("login_failures", &policy, now), now - 30 * DAY_MS);
        // Every statement deletes by the cutoff and a bound.
        for (_, statement) in SWEEPS {
            assert!(statement.contains("?1") && statement.contains("?2"));
        }
    }
}
