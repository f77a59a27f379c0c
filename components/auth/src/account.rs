//! An account as login, 2FA and password changes see it: the user, the
//! credentials and the lockout from this request's address, loaded in one
//! statement; and the one answer every refused login gets.

use spin_sdk::sqlite::Connection;
use vigil_api::db::{Columns, Value};
use vigil_api::{ApiError, db};
use vigil_core::{Pending, Role};

use crate::lockout::{Guard, guard_columns, guard_from};
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
    static ACCOUNT: Columns = Columns::new(concat!(
        "u.id, u.role, u.disabled, c.password_hash, c.totp_confirmed_at IS NOT NULL AS mfa_enabled, \
         u.must_change_password, c.password_expires_at, ",
        guard_columns!()
    ));
    let rows = db::query(
        conn,
        &format!(
            "SELECT {ACCOUNT}
             FROM users u JOIN credentials c ON c.user_id = u.id
                  LEFT JOIN login_failures f ON f.user_id = u.id AND f.client_addr = ?2
             WHERE u.{column} = ?1"
        ),
        &[Value::Text(value.into()), Value::Text(addr.into())],
    )?;
    Ok(rows.first().and_then(|r| {
        let r = ACCOUNT.row(r);
        Some(Account {
            id: r.text("u.id")?,
            role: Role::parse(&r.text("u.role")?)?,
            disabled: r.int("u.disabled")? != 0,
            password_hash: r.text("c.password_hash")?,
            mfa_enabled: r.int("mfa_enabled")? != 0,
            must_change_password: r.int("u.must_change_password")? != 0,
            password_expires_at: r.int("c.password_expires_at"),
            guard: guard_from(r),
        })
    }))
}
