//! Login rules: the lockout, throttles, session lifetimes, refresh-token secrets.
//!
//! The lockout counts failures per (account, client address), so a stranger
//! guessing at an account locks out only their own address, never the owner:
//! [`MAX_FAILURES`] failures within [`FAILURE_WINDOW_MS`] lock that pair for
//! [`BASE_LOCK_MS`], doubling with each repeat up to [`MAX_LOCK_MS`], until a
//! successful login from that address (or an admin's unlock or reset).
//!
//! Across addresses the account keeps one window of failures. Past
//! [`ACCOUNT_CEILING`] failures in it (a distributed guess), the account is
//! *slowed*: an address it has not logged in from within
//! [`KNOWN_ADDRESS_MS`] gets one failure, not five, before its lock. The owner
//! at a known address is not affected; a botnet gets one guess per address
//! per lock period. The state lives in the database (`login_failures`, and the
//! account's window in `credentials`): a fresh instance serves every request.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use sha2::{Digest, Sha256};

use crate::ApiError;
use crate::sql::{Sql, Value};

/// Failures of one (account, address) within the window that lock the pair.
pub const MAX_FAILURES: i64 = 5;
/// The same, for an address the account has not logged in from, while the account is slowed.
pub const SLOWED_MAX_FAILURES: i64 = 1;
pub const FAILURE_WINDOW_MS: i64 = 15 * 60 * 1000;
pub const BASE_LOCK_MS: i64 = 15 * 60 * 1000;
/// The longest lock, however often it repeats (one day).
pub const MAX_LOCK_MS: i64 = 24 * 60 * 60 * 1000;
/// Failures of an account from all addresses within the window past which it is slowed.
pub const ACCOUNT_CEILING: i64 = 20;
/// An address the account logged in from this recently is known to it.
pub const KNOWN_ADDRESS_MS: i64 = 30 * 24 * 60 * 60 * 1000;

/// A session ends 30 days after login, however active.
pub const SESSION_ABSOLUTE_MS: i64 = 30 * 24 * 60 * 60 * 1000;
/// A refresh token unused for 7 days dies (and with it, its session's future).
pub const REFRESH_IDLE_MS: i64 = 7 * 24 * 60 * 60 * 1000;
/// Login attempts allowed per client address per minute.
pub const LOGIN_ATTEMPTS_PER_ADDRESS_PER_MINUTE: i64 = 30;
/// Registrations (with an invitation) allowed per client address per minute.
pub const REGISTER_ATTEMPTS_PER_ADDRESS_PER_MINUTE: i64 = 30;

/// The start of the fixed one-minute throttle window `now` falls in.
pub fn throttle_window(now: i64) -> i64 {
    now - now.rem_euclid(60_000)
}

/// Whether the `count`th attempt in a window is refused under `limit`.
pub fn over_limit(count: i64, limit: i64) -> bool {
    count > limit
}

/// The lockout state of one (account, client address): a `login_failures` row.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PairState {
    pub failures: i64,
    pub first_failure_at: Option<i64>,
    pub locked_until: Option<i64>,
    pub lockouts: i64,
    /// The last successful login of the account from this address.
    pub last_success_at: Option<i64>,
}

/// The account's failures from every address: its window in `credentials`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AccountWindow {
    pub failures: i64,
    pub first_failure_at: Option<i64>,
}

impl AccountWindow {
    fn in_window(&self, now: i64) -> bool {
        self.first_failure_at
            .is_some_and(|first| now - first < FAILURE_WINDOW_MS)
    }

    /// Whether a distributed guess has pushed the account past the ceiling.
    pub fn is_slowed(&self, now: i64) -> bool {
        self.in_window(now) && self.failures >= ACCOUNT_CEILING
    }

    pub fn after_failure(self, now: i64) -> AccountWindow {
        if self.in_window(now) {
            AccountWindow {
                failures: self.failures + 1,
                ..self
            }
        } else {
            AccountWindow {
                failures: 1,
                first_failure_at: Some(now),
            }
        }
    }
}

impl PairState {
    pub fn is_locked(&self, now: i64) -> bool {
        self.locked_until.is_some_and(|until| now < until)
    }

    /// Whether the account logged in from this address recently.
    pub fn is_known(&self, now: i64) -> bool {
        self.last_success_at
            .is_some_and(|at| now - at < KNOWN_ADDRESS_MS)
    }

    /// How many failures lock this pair while the account is as `account` says.
    pub fn threshold(&self, account: &AccountWindow, now: i64) -> i64 {
        if account.is_slowed(now) && !self.is_known(now) {
            SLOWED_MAX_FAILURES
        } else {
            MAX_FAILURES
        }
    }

    /// The state after a failed attempt at `now` (password or second
    /// factor), with the account's window as it was before this failure.
    pub fn after_failure(self, account: &AccountWindow, now: i64) -> PairState {
        let threshold = self.threshold(&account.after_failure(now), now);
        let in_window = self
            .first_failure_at
            .is_some_and(|first| now - first < FAILURE_WINDOW_MS);
        let (failed, first) = if in_window {
            (self.failures + 1, self.first_failure_at)
        } else {
            (1, Some(now))
        };
        if failed >= threshold {
            let lock = BASE_LOCK_MS
                .saturating_mul(1 << self.lockouts.clamp(0, 20))
                .min(MAX_LOCK_MS);
            PairState {
                failures: 0,
                first_failure_at: None,
                locked_until: Some(now + lock),
                lockouts: self.lockouts + 1,
                last_success_at: self.last_success_at,
            }
        } else {
            PairState {
                failures: failed,
                first_failure_at: first,
                ..self
            }
        }
    }

    /// The state after a successful login from this address: its failures
    /// forgiven, the address known to the account.
    pub fn after_success(self, now: i64) -> PairState {
        PairState {
            last_success_at: Some(now),
            ..PairState::default()
        }
    }
}

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

/// A fresh opaque secret: 256 random bits, base64url.
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

    fn fail_n(mut s: PairState, n: i64, at: i64) -> PairState {
        for i in 0..n {
            s = s.after_failure(&AccountWindow::default(), at + i);
        }
        s
    }

    #[test]
    fn five_failures_in_the_window_lock_the_pair_for_fifteen_minutes() {
        let s = fail_n(PairState::default(), 4, T0);
        assert!(!s.is_locked(T0 + 10));
        let s = s.after_failure(&AccountWindow::default(), T0 + 10);
        assert!(s.is_locked(T0 + 11));
        assert!(s.is_locked(T0 + 10 + BASE_LOCK_MS - 1));
        assert!(!s.is_locked(T0 + 10 + BASE_LOCK_MS));
    }

    #[test]
    fn failures_outside_the_window_start_over() {
        let s = fail_n(PairState::default(), 4, T0);
        let s = s.after_failure(&AccountWindow::default(), T0 + FAILURE_WINDOW_MS + 1);
        assert_eq!(s.failures, 1);
        assert!(!s.is_locked(T0 + FAILURE_WINDOW_MS + 2));
    }

    #[test]
    fn repeated_lockouts_double_up_to_a_day_and_success_forgives() {
        let first = fail_n(PairState::default(), 5, T0);
        let after = first.locked_until.unwrap();
        let second = fail_n(first, 5, after);
        assert_eq!(second.locked_until.unwrap() - (after + 4), 2 * BASE_LOCK_MS);
        let mut s = second;
        for _ in 0..10 {
            let at = s.locked_until.unwrap();
            s = fail_n(s, 5, at);
            assert!(s.locked_until.unwrap() - (at + 4) <= MAX_LOCK_MS);
        }
        let at = s.locked_until.unwrap();
        assert_eq!(
            fail_n(s, 5, at).locked_until.unwrap() - (at + 4),
            MAX_LOCK_MS
        );
        let forgiven = s.after_success(T0);
        assert!(!forgiven.is_locked(T0) && forgiven.lockouts == 0 && forgiven.failures == 0);
        assert!(forgiven.is_known(T0 + 1));
        assert!(!forgiven.is_known(T0 + KNOWN_ADDRESS_MS));
    }

    #[test]
    fn the_account_window_slows_past_the_ceiling_and_ends() {
        let mut w = AccountWindow::default();
        for i in 0..ACCOUNT_CEILING - 1 {
            w = w.after_failure(T0 + i);
        }
        assert!(!w.is_slowed(T0 + 100));
        w = w.after_failure(T0 + 100);
        assert!(w.is_slowed(T0 + 101));
        assert!(!w.is_slowed(T0 + FAILURE_WINDOW_MS));
        let restarted = w.after_failure(T0 + FAILURE_WINDOW_MS);
        assert_eq!(restarted.failures, 1);
    }

    #[test]
    fn a_slowed_account_locks_unknown_addresses_at_the_first_failure_only() {
        let slowed = AccountWindow {
            failures: ACCOUNT_CEILING,
            first_failure_at: Some(T0),
        };
        let stranger = PairState::default().after_failure(&slowed, T0 + 1);
        assert!(stranger.is_locked(T0 + 2), "one guess per unknown address");
        let owner = PairState::default().after_success(T0 - 1000);
        let owner = owner.after_failure(&slowed, T0 + 1);
        assert!(
            !owner.is_locked(T0 + 2),
            "the owner's known address keeps five"
        );
        assert_eq!(owner.threshold(&slowed, T0 + 2), MAX_FAILURES);
        // The failure that crosses the ceiling already counts as slowed.
        let almost = AccountWindow {
            failures: ACCOUNT_CEILING - 1,
            first_failure_at: Some(T0),
        };
        assert!(
            PairState::default()
                .after_failure(&almost, T0 + 1)
                .is_locked(T0 + 2)
        );
    }

    #[test]
    fn throttle_windows_are_whole_minutes() {
        assert_eq!(throttle_window(120_001), 120_000);
        assert!(!over_limit(30, 30) && over_limit(31, 30));
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
