//! Login rules: account lockout, session lifetimes, refresh-token secrets.
//!
//! Lockout: 5 failures within 15 minutes lock the account for 15 minutes,
//! doubling with each repeated lockout until a successful login. The state
//! lives in the `credentials` row (a fresh instance serves every request).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use sha2::{Digest, Sha256};

use crate::ApiError;
use crate::sql::{Sql, Value};

pub const MAX_FAILURES: i64 = 5;
pub const FAILURE_WINDOW_MS: i64 = 15 * 60 * 1000;
pub const BASE_LOCK_MS: i64 = 15 * 60 * 1000;
/// The longest lock, however often it repeats (one day).
pub const MAX_LOCK_MS: i64 = 24 * 60 * 60 * 1000;

/// A session ends 30 days after login, however active.
pub const SESSION_ABSOLUTE_MS: i64 = 30 * 24 * 60 * 60 * 1000;
/// A refresh token unused for 7 days dies (and with it, its session's future).
pub const REFRESH_IDLE_MS: i64 = 7 * 24 * 60 * 60 * 1000;
/// Login attempts allowed per client address per minute.
pub const LOGIN_ATTEMPTS_PER_ADDRESS_PER_MINUTE: i64 = 30;

/// The lockout columns of a `credentials` row.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FailureState {
    pub failed_logins: i64,
    pub first_failure_at: Option<i64>,
    pub locked_until: Option<i64>,
    pub lockouts: i64,
}

impl FailureState {
    pub fn is_locked(&self, now: i64) -> bool {
        self.locked_until.is_some_and(|until| now < until)
    }

    /// The state after a failed attempt at `now`.
    pub fn after_failure(self, now: i64) -> FailureState {
        let in_window = self
            .first_failure_at
            .is_some_and(|first| now - first < FAILURE_WINDOW_MS);
        let (failed, first) = if in_window {
            (self.failed_logins + 1, self.first_failure_at)
        } else {
            (1, Some(now))
        };
        if failed >= MAX_FAILURES {
            let lock = BASE_LOCK_MS
                .saturating_mul(1 << self.lockouts.clamp(0, 20))
                .min(MAX_LOCK_MS);
            FailureState {
                failed_logins: 0,
                first_failure_at: None,
                locked_until: Some(now + lock),
                lockouts: self.lockouts + 1,
            }
        } else {
            FailureState {
                failed_logins: failed,
                first_failure_at: first,
                ..self
            }
        }
    }

    /// The state after a successful login: everything forgiven.
    pub fn after_success(self) -> FailureState {
        FailureState::default()
    }
}

/// A fresh opaque secret: 256 random bits, base64url.
/// Whether a verified token's session is live: not ended (logout, reuse
/// detection, a password change), not expired, and its user enabled. One
/// statement, asked by the components and the relay alike.
pub async fn session_is_live(
    db: &impl Sql,
    session_id: &str,
    user_id: &str,
    now: i64,
) -> Result<bool, ApiError> {
    let rows = db
        .query(
            "SELECT 1 FROM sessions s JOIN users u ON u.id = s.user_id
              WHERE s.id = ?1 AND s.user_id = ?2 AND s.revoked_at IS NULL
                AND s.expires_at > ?3 AND u.disabled = 0",
            &[
                Value::Text(session_id.into()),
                Value::Text(user_id.into()),
                Value::Integer(now),
            ],
        )
        .await?;
    Ok(!rows.is_empty())
}

pub fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the platform has a random source");
    B64.encode(bytes)
}

/// How secrets (refresh tokens, API-key secrets) are stored: SHA-256, hex.
/// They are 256-bit random, so a fast hash is enough; no password is ever hashed this way.
pub fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_800_000_000_000;

    fn fail_n(mut s: FailureState, n: i64, at: i64) -> FailureState {
        for i in 0..n {
            s = s.after_failure(at + i);
        }
        s
    }

    #[test]
    fn five_failures_in_the_window_lock_for_fifteen_minutes() {
        let s = fail_n(FailureState::default(), 4, T0);
        assert!(!s.is_locked(T0 + 10));
        let s = s.after_failure(T0 + 10);
        assert!(s.is_locked(T0 + 11));
        assert!(s.is_locked(T0 + 10 + BASE_LOCK_MS - 1));
        assert!(!s.is_locked(T0 + 10 + BASE_LOCK_MS));
    }

    #[test]
    fn failures_outside_the_window_start_over() {
        let s = fail_n(FailureState::default(), 4, T0);
        let s = s.after_failure(T0 + FAILURE_WINDOW_MS + 1);
        assert_eq!(s.failed_logins, 1);
        assert!(!s.is_locked(T0 + FAILURE_WINDOW_MS + 2));
    }

    #[test]
    fn repeated_lockouts_double_up_to_a_day() {
        let first = fail_n(FailureState::default(), 5, T0);
        let after = first.locked_until.unwrap();
        let second = fail_n(first, 5, after);
        assert_eq!(second.locked_until.unwrap() - (after + 4), 2 * BASE_LOCK_MS);
        let mut s = second;
        for _ in 0..10 {
            let at = s.locked_until.unwrap();
            s = fail_n(s, 5, at);
        }
        assert_eq!(
            s.locked_until.unwrap() - (s.locked_until.unwrap() - MAX_LOCK_MS),
            MAX_LOCK_MS
        );
        assert!(s.after_success() == FailureState::default());
    }

    #[test]
    fn secrets_are_long_random_and_hash_stably() {
        let a = new_secret();
        assert_eq!(a.len(), 43);
        assert_ne!(a, new_secret());
        assert_eq!(secret_hash(&a), secret_hash(&a));
        assert_eq!(secret_hash(&a).len(), 64);
    }
}
