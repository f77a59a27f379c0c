//! An account as login, 2FA and password changes see it: the user, the
//! credentials and the lockout from this request's address, loaded in one
//! statement; and the one answer every refused login gets.

use spin_sdk::sqlite::Connection;
use vigil_api::db::Value;
use vigil_api::{ApiError, db};
use vigil_core::{Pending, Role};

use crate::lockout::{GUARD_COLUMNS, Guard, guard_from};
use crate::settings::mfa_required;

/// What a failed login answers, whatever the reason.
pub(crate) fn invalid_credentials() -> ApiError {
    ApiError::new(401, "invalid-credentials", "Invalid credentials")
        .with_detail("the username or password is wrong, or the account cannot log in now")
}

pub(crate) struct Account {
    pub id: String,
    pub role: Role,
    pub disabled: bool,
    pub password_hash: String,
    /// The lockout as seen from this request's address.
    pub guard: Guard,
    /// 2FA is confirmed: a password alone is not enough.
    pub mfa_enabled: bool,
    /// An admin reset the password: the user must choose a new one.
    pub must_change_password: bool,
    /// When the password stops working (an admin reset's one-time password).
    pub password_expires_at: Option<i64>,
}

impl Account {
    /// The step this user owes before anything else, if any.
    pub fn pending(&self) -> Result<Option<Pending>, ApiError> {
        owed_step(self.role, self.must_change_password, self.mfa_enabled)
    }

    /// Why this account cannot log in from here now, if it cannot.
    pub fn refusal(&self, now: i64) -> Option<&'static str> {
        if self.disabled {
            Some("disabled")
        } else if self.guard.pair.is_locked(now) {
            Some("locked")
        } else if self.password_expires_at.is_some_and(|at| at <= now) {
            Some("one_time_password_expired")
        } else {
            None
        }
    }
}

/// A new password comes first; then the 2FA enrolment a role may require.
pub(crate) fn owed_step(
    role: Role,
    must_change_password: bool,
    mfa_enabled: bool,
) -> Result<Option<Pending>, ApiError> {
    Ok(if must_change_password {
        Some(Pending::PasswordChange)
    } else if mfa_required(role)? && !mfa_enabled {
        Some(Pending::MfaEnrolment)
    } else {
        None
    })
}

/// Which column finds the account.
pub(crate) enum By<'a> {
    Username(&'a str),
    Id(&'a str),
}

/// The account with its lockout state as seen from `addr`.
pub(crate) fn load_account(
    conn: &Connection,
    by: By,
    addr: &str,
) -> Result<Option<Account>, ApiError> {
    let (column, value) = match by {
        By::Username(name) => ("username", name),
        By::Id(id) => ("id", id),
    };
    let rows = db::query(
        conn,
        &format!(
            "SELECT u.id, u.role, u.disabled, c.password_hash, c.totp_confirmed_at IS NOT NULL,
                    u.must_change_password, c.password_expires_at, {GUARD_COLUMNS}
             FROM users u JOIN credentials c ON c.user_id = u.id
                  LEFT JOIN login_failures f ON f.user_id = u.id AND f.client_addr = ?2
             WHERE u.{column} = ?1"
        ),
        &[Value::Text(value.into()), Value::Text(addr.into())],
    )?;
    Ok(rows.first().and_then(|r| {
        Some(Account {
            id: db::text(r, 0)?,
            role: Role::parse(&db::text(r, 1)?)?,
            disabled: db::int(r, 2)? != 0,
            password_hash: db::text(r, 3)?,
            mfa_enabled: db::int(r, 4)? != 0,
            must_change_password: db::int(r, 5)? != 0,
            password_expires_at: db::int(r, 6),
            guard: guard_from(r, 7),
        })
    }))
}
