//! The lockout and the per-address throttles as rows: reading and writing
//! what `vigil_core::login` decides. Failures count per (account, client
//! address) in `login_failures`; the account's window across addresses is
//! in `credentials`. Every write happens inside the caller's write
//! transaction, after re-reading the state there, so concurrent failures
//! all count and a guess that raced a lock is judged by the lock.

use spin_sdk::sqlite::Connection;
use vigil_api::db::{Columns, Named, Value};
use vigil_api::{ApiError, Ctx, db};
use vigil_core::login::{AccountWindow, PairState, over_limit, throttle_window};

/// The address failures are counted against (the runtime's peer, or the
/// client behind a trusted proxy).
pub(crate) fn client(ctx: &Ctx) -> String {
    ctx.client_addr().unwrap_or_else(|| "unknown".into())
}

/// Count this attempt in `bucket` against the client address (its own
/// statement, so the count stands whatever the outcome); over `limit` a
/// minute → 429.
pub(crate) fn throttle(
    conn: &Connection,
    bucket: &str,
    addr: &str,
    limit: i64,
    now: i64,
) -> Result<(), ApiError> {
    let rows = db::query(
        conn,
        "INSERT INTO rate_limits (bucket, key, window_start, count) VALUES (?1, ?2, ?3, 1)
         ON CONFLICT (bucket, key, window_start) DO UPDATE SET count = count + 1
         RETURNING count",
        &[
            Value::Text(bucket.into()),
            Value::Text(addr.into()),
            Value::Integer(throttle_window(now)),
        ],
    )?;
    if over_limit(rows.first().and_then(|r| db::int(r, 0)).unwrap_or(0), limit) {
        return Err(ApiError::too_many_requests(
            "too many attempts from this address; wait a minute",
        ));
    }
    Ok(())
}

/// The lockout state of `user_id` as seen from `addr`.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Guard {
    pub pair: PairState,
    pub account: AccountWindow,
}

/// The columns [`guard_from`] reads, for a query joining `credentials c`
/// with `login_failures f` (on the user and the address). A macro, so that
/// a longer select list can take them in with `concat!`.
macro_rules! guard_columns {
    () => {
        "c.failed_logins, c.first_failure_at, f.failures, f.first_failure_at, f.locked_until, f.lockouts, \
         f.last_success_at"
    };
}
pub(crate) use guard_columns;

static GUARD: Columns = Columns::new(guard_columns!());

/// A [`Guard`] from a row whose select list includes [`guard_columns`].
pub(crate) fn guard_from(r: Named) -> Guard {
    Guard {
        account: AccountWindow {
            failures: r.int("c.failed_logins").unwrap_or(0),
            first_failure_at: r.int("c.first_failure_at"),
        },
        pair: PairState {
            failures: r.int("f.failures").unwrap_or(0),
            first_failure_at: r.int("f.first_failure_at"),
            locked_until: r.int("f.locked_until"),
            lockouts: r.int("f.lockouts").unwrap_or(0),
            last_success_at: r.int("f.last_success_at"),
        },
    }
}

/// The state of `user_id` from `addr`, now.
pub(crate) fn load(conn: &Connection, user_id: &str, addr: &str) -> Result<Guard, ApiError> {
    let rows = db::query(
        conn,
        &format!(
            "SELECT {GUARD} FROM credentials c
               LEFT JOIN login_failures f ON f.user_id = c.user_id AND f.client_addr = ?2
              WHERE c.user_id = ?1"
        ),
        &[Value::Text(user_id.into()), Value::Text(addr.into())],
    )?;
    Ok(rows
        .first()
        .map(|r| guard_from(GUARD.row(r)))
        .unwrap_or_default())
}

fn save_pair(conn: &Connection, user_id: &str, addr: &str, s: PairState) -> Result<(), ApiError> {
    db::query(
        conn,
        "INSERT INTO login_failures (user_id, client_addr, failures, first_failure_at, locked_until, lockouts, last_success_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (user_id, client_addr) DO UPDATE SET failures = ?3, first_failure_at = ?4,
             locked_until = ?5, lockouts = ?6, last_success_at = ?7",
        &[
            Value::Text(user_id.into()),
            Value::Text(addr.into()),
            Value::Integer(s.failures),
            s.first_failure_at.map_or(Value::Null, Value::Integer),
            s.locked_until.map_or(Value::Null, Value::Integer),
            Value::Integer(s.lockouts),
            s.last_success_at.map_or(Value::Null, Value::Integer),
        ],
    )?;
    Ok(())
}

/// Count a failed attempt (a password, a second factor) of `user_id` from
/// this request's address, inside the caller's write transaction. Audits a
/// lock of the pair, and the account becoming slowed.
pub(crate) fn count_failure(
    ctx: &Ctx,
    conn: &Connection,
    user_id: &str,
    now: i64,
) -> Result<(), ApiError> {
    let addr = client(ctx);
    let Guard { pair, account } = load(conn, user_id, &addr)?;
    let next_pair = pair.after_failure(&account, now);
    let next_account = account.after_failure(now);
    save_pair(conn, user_id, &addr, next_pair)?;
    db::query(
        conn,
        "UPDATE credentials SET failed_logins = ?2, first_failure_at = ?3 WHERE user_id = ?1",
        &[
            Value::Text(user_id.into()),
            Value::Integer(next_account.failures),
            next_account
                .first_failure_at
                .map_or(Value::Null, Value::Integer),
        ],
    )?;
    if next_pair.is_locked(now) && !pair.is_locked(now) {
        let mut lock = ctx.audit_entry("auth.lockout", "user", user_id, now);
        lock.actor = "system".into();
        lock.after = Some(
            serde_json::json!({"client_addr": addr, "locked_until": next_pair.locked_until, "lockouts": next_pair.lockouts})
                .to_string(),
        );
        vigil_api::audit::append(conn, &lock)?;
    }
    if next_account.is_slowed(now) && !account.is_slowed(now) {
        let mut slowed = ctx.audit_entry("auth.account_slowed", "user", user_id, now);
        slowed.actor = "system".into();
        slowed.after = Some(
            serde_json::json!({"failures": next_account.failures, "since": next_account.first_failure_at})
                .to_string(),
        );
        vigil_api::audit::append(conn, &slowed)?;
    }
    Ok(())
}

/// A successful login of `user_id` from this request's address: its
/// failures there are forgiven, and the address is known to the account.
pub(crate) fn record_success(
    ctx: &Ctx,
    conn: &Connection,
    user_id: &str,
    now: i64,
) -> Result<(), ApiError> {
    save_pair(
        conn,
        user_id,
        &client(ctx),
        PairState::default().after_success(now),
    )
}

/// Refuse an authenticated step (password change, disabling 2FA) while
/// this address is locked out of the account.
pub(crate) fn refuse_if_locked(
    ctx: &Ctx,
    conn: &Connection,
    user_id: &str,
    now: i64,
) -> Result<(), ApiError> {
    if load(conn, user_id, &client(ctx))?.pair.is_locked(now) {
        return Err(ApiError::too_many_requests(
            "too many wrong passwords or codes from this address; try again later",
        ));
    }
    Ok(())
}

/// Clear every lock and failure of `user_id` (admin unlock, admin reset);
/// the addresses stay known. Returns how many addresses were locked.
pub(crate) fn unlock(conn: &Connection, user_id: &str, now: i64) -> Result<i64, ApiError> {
    let locked = db::query(
        conn,
        "SELECT count(*) FROM login_failures WHERE user_id = ?1 AND locked_until > ?2",
        &[Value::Text(user_id.into()), Value::Integer(now)],
    )?;
    db::query(
        conn,
        "UPDATE login_failures SET failures = 0, first_failure_at = NULL, locked_until = NULL, lockouts = 0
          WHERE user_id = ?1",
        &[Value::Text(user_id.into())],
    )?;
    db::query(
        conn,
        "UPDATE credentials SET failed_logins = 0, first_failure_at = NULL WHERE user_id = ?1",
        &[Value::Text(user_id.into())],
    )?;
    Ok(locked.first().and_then(|r| db::int(r, 0)).unwrap_or(0))
}
