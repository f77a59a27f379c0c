//! Two-factor authentication: enrolment (secret, `otpauth` URI, QR code;
//! the current password is needed, and a current code too when it replaces
//! an authenticator in use), confirmation with a first code (which returns
//! ten one-time recovery codes, stored hashed), disabling (password and
//! code; failures count towards the lockout), and the second step of a login
//! (a single-use challenge exchanged with a code or a recovery code).
//!
//! TOTP secrets are stored encrypted (`vigil_core::secret_box`, under the
//! `totp_encryption_key` variable, bound to the user's id); a secret stored
//! in plaintext before that is sealed the first time it accepts a code.

use crate::input;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use spin_sdk::http::Response;
use spin_sdk::sqlite::Connection;
use vigil_api::db::{Columns, Value};
use vigil_api::{ApiError, Ctx, db, response};
use vigil_core::login::{new_secret, secret_hash};
use vigil_core::time::now_millis;
use vigil_core::{Role, password, totp};

use crate::account::{Account, By, invalid_credentials, load_account};
use crate::lockout;
use crate::sessions::{self, Grant};
use crate::settings::{mfa_required, signing, totp_box};

/// How long a login's second step may take.
const CHALLENGE_MS: i64 = 5 * 60 * 1000;

/// The answer to a correct password when 2FA is on.
#[derive(Serialize, JsonSchema)]
pub struct Challenge {
    /// Always `true`.
    mfa_required: bool,
    /// Single use: `POST /api/auth/login/mfa` with a code.
    mfa_token: String,
    expires_in: i64,
}

/// Open a second-step challenge for a user whose password was right.
pub fn challenge(conn: &Connection, user_id: &str, now: i64) -> Result<Challenge, ApiError> {
    let token = new_secret();
    db::query(
        conn,
        "INSERT INTO mfa_challenges (token_hash, user_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
        &[
            Value::Text(secret_hash(&token)),
            Value::Text(user_id.into()),
            Value::Integer(now),
            Value::Integer(now + CHALLENGE_MS),
        ],
    )?;
    Ok(Challenge {
        mfa_required: true,
        mfa_token: token,
        expires_in: CHALLENGE_MS / 1000,
    })
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MfaLogin {
    #[schemars(length(max = 128))]
    mfa_token: String,
    /// The 6-digit code from the authenticator app…
    #[schemars(length(max = 16))]
    code: Option<String>,
    /// …or one of the recovery codes (each works once).
    #[schemars(length(max = 64))]
    recovery_code: Option<String>,
    /// `cookie`: the refresh token goes into an `HttpOnly` cookie (as at login).
    #[serde(default)]
    session: crate::cookie::SessionMode,
}

/// `POST /api/auth/login/mfa`: the second step. The challenge is spent by
/// any attempt; a wrong code counts towards the lockout like a wrong password.
pub fn login(ctx: &mut Ctx) -> Result<Response, ApiError> {
    let req: MfaLogin = input::json(ctx)?;
    if req.code.is_some() == req.recovery_code.is_some() {
        return Err(ApiError::invalid_field(
            "$",
            "give exactly one of code and recovery_code",
        ));
    }
    let now = now_millis();
    let signing = signing()?;
    let conn = db::open()?;
    let tokens = db::transaction(conn, |conn| {
        let spent = db::query(
            conn,
            "UPDATE mfa_challenges SET used_at = ?2 WHERE token_hash = ?1 AND used_at IS NULL AND expires_at > ?2
             RETURNING user_id",
            &[Value::Text(secret_hash(&req.mfa_token)), Value::Integer(now)],
        )?;
        let Some(user_id) = spent.first().and_then(|r| db::text(r, 0)) else {
            return Ok(None);
        };
        let Some(account) = load_account(conn, By::Id(&user_id), &lockout::client(ctx))? else {
            return Ok(None);
        };
        let mut entry = ctx.audit_entry("auth.login.failed", "user", &user_id, now);
        entry.actor = user_id.clone();
        if let Some(reason) = account.refusal(now) {
            entry.after = Some(serde_json::json!({"reason": reason, "step": "mfa"}).to_string());
            vigil_api::audit::append(conn, &entry)?;
            return Ok(None);
        }
        let second_factor = match (&req.code, &req.recovery_code) {
            (Some(code), _) => accept_code(conn, &user_id, Which::Active, code, now)?,
            (_, Some(recovery)) => {
                let used = db::query(
                    conn,
                    "UPDATE recovery_codes SET used_at = ?3 WHERE user_id = ?1 AND code_hash = ?2 AND used_at IS NULL RETURNING 1",
                    &[
                        Value::Text(user_id.clone()),
                        Value::Text(secret_hash(&totp::normalize_recovery_code(recovery))),
                        Value::Integer(now),
                    ],
                )?;
                if !used.is_empty() {
                    vigil_api::audit::append(
                        conn,
                        &ctx.audit_entry("auth.mfa.recovery_code_used", "user", &user_id, now),
                    )?;
                }
                !used.is_empty()
            }
            _ => false,
        };
        if !second_factor {
            entry.after = Some(
                serde_json::json!({"reason": "wrong_second_factor", "step": "mfa"}).to_string(),
            );
            vigil_api::audit::append(conn, &entry)?;
            lockout::count_failure(ctx, conn, &user_id, now)?;
            return Ok(None);
        }
        lockout::record_success(ctx, conn, &user_id, now)?;
        let tokens = sessions::start(
            ctx,
            conn,
            &signing,
            &Grant {
                user_id: &user_id,
                role: account.role,
                pending: account.pending()?,
            },
            now,
        )?;
        entry.action = "auth.login.succeeded".into();
        entry.after = Some(serde_json::json!({"session_id": tokens.session_id, "second_factor": if req.code.is_some() { "totp" } else { "recovery_code" }}).to_string());
        vigil_api::audit::append(conn, &entry)?;
        Ok(Some(tokens))
    })?;
    tokens
        .map(|t| crate::cookie::reply(t, req.session))
        .ok_or_else(invalid_credentials)
}

fn wrong_code() -> ApiError {
    ApiError::invalid_field("code", "is not the authenticator's current code")
}

/// Which stored secret a code is checked against.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Which {
    /// The authenticator in use.
    Active,
    /// The one being enrolled, until a code from it confirms it.
    Pending,
}

/// Accept a TOTP code once: it must match within ±1 step and be newer than
/// the last one accepted. A secret still stored in plaintext is sealed now.
fn accept_code(
    conn: &Connection,
    user_id: &str,
    which: Which,
    code: &str,
    now: i64,
) -> Result<bool, ApiError> {
    static ACTIVE: Columns = Columns::new("totp_secret AS secret, totp_last_step");
    static PENDING: Columns = Columns::new("totp_pending_secret AS secret, totp_last_step");
    let (columns, column) = match which {
        Which::Active => (&ACTIVE, "totp_secret"),
        Which::Pending => (&PENDING, "totp_pending_secret"),
    };
    let rows = db::query(
        conn,
        &format!("SELECT {columns} FROM credentials WHERE user_id = ?1 AND {column} IS NOT NULL"),
        &[Value::Text(user_id.into())],
    )?;
    let Some(row) = rows.first().map(|r| columns.row(r)) else {
        return Ok(false);
    };
    let sealer = totp_box()?;
    let Some(opened) = sealer.open(&row.text("secret").unwrap_or_default(), user_id) else {
        vigil_api::log::line(
            serde_json::json!({"level": "error", "msg": "a TOTP secret does not open under totp_encryption_key (was the key changed?)", "user_id": user_id}),
        );
        return Ok(false);
    };
    // A pending secret has had no code accepted yet: no step to be newer than.
    let last = (which == Which::Active)
        .then(|| row.int("totp_last_step"))
        .flatten();
    let Some(step) = totp::verify(&opened.secret, code, now / 1000, last) else {
        return Ok(false);
    };
    if opened.legacy {
        db::query(
            conn,
            &format!("UPDATE credentials SET {column} = ?2 WHERE user_id = ?1"),
            &[
                Value::Text(user_id.into()),
                Value::Text(sealer.seal(&opened.secret, user_id)),
            ],
        )?;
    }
    db::query(
        conn,
        "UPDATE credentials SET totp_last_step = ?2 WHERE user_id = ?1",
        &[Value::Text(user_id.into()), Value::Integer(step)],
    )?;
    Ok(true)
}

#[derive(Serialize, JsonSchema)]
pub struct Enrolment {
    /// Base32, for typing into an authenticator app.
    secret: String,
    otpauth_uri: String,
    /// The URI as a QR code, an SVG document.
    qr_svg: String,
}

fn user_of(ctx: &Ctx) -> Result<(String, Role), ApiError> {
    let who = ctx.principal();
    match who.role {
        Some(role) => Ok((who.subject.clone(), role)),
        None => Err(ApiError::bad_request("API keys have no second factor")),
    }
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Enroll {
    /// The account's current password.
    #[schemars(length(max = 4096), extend("format" = "password"))]
    password: String,
    /// A current code of the authenticator in use, when replacing it.
    #[schemars(length(max = 16))]
    code: Option<String>,
}

/// Check the current password (and, with 2FA on, a current code) of the
/// caller for a change of their second factor; a failure counts towards the
/// lockout of this address and is audited.
fn prove_owner(
    ctx: &Ctx,
    conn: &Connection,
    user_id: &str,
    password_given: &str,
    code: Option<&str>,
    now: i64,
) -> Result<Account, ApiError> {
    let account = load_account(conn, By::Id(user_id), &lockout::client(ctx))?
        .ok_or_else(ApiError::not_found)?;
    lockout::refuse_if_locked(ctx, conn, user_id, now)?;
    let password_ok = account.password_expires_at.is_none_or(|at| at > now)
        && password::verify(password_given, &account.password_hash);
    let failed = db::transaction(conn, |conn| {
        lockout::refuse_if_locked(ctx, conn, user_id, now)?;
        let failed = if !password_ok {
            Some(ApiError::invalid_field("password", "is not correct"))
        } else if account.mfa_enabled {
            match code {
                Some(code) if accept_code(conn, user_id, Which::Active, code, now)? => None,
                Some(_) => Some(wrong_code()),
                None => Some(ApiError::invalid_field(
                    "code",
                    "is required: give a current code of the authenticator in use",
                )),
            }
        } else {
            None
        };
        if failed.is_some() {
            let mut entry = ctx.audit_entry("auth.mfa.change_refused", "user", user_id, now);
            entry.after = Some(
                serde_json::json!({"reason": if password_ok { "wrong_second_factor" } else { "wrong_password" }}).to_string(),
            );
            vigil_api::audit::append(conn, &entry)?;
            lockout::count_failure(ctx, conn, user_id, now)?;
        }
        Ok(failed)
    })?;
    match failed {
        Some(refusal) => Err(refusal),
        None => Ok(account),
    }
}

/// `POST /api/auth/mfa/enroll`: a fresh secret, pending until a code from
/// it confirms it (replacing an unconfirmed one, or the authenticator in use
/// once confirmed). Needs the current password, and a current code when 2FA
/// is on.
pub fn enroll(ctx: &mut Ctx) -> Result<Response, ApiError> {
    let req: Enroll = input::json(ctx)?;
    let (user_id, _) = user_of(ctx)?;
    let now = now_millis();
    let conn = db::open()?;
    let sealer = totp_box()?;
    prove_owner(ctx, conn, &user_id, &req.password, req.code.as_deref(), now)?;
    let secret = totp::new_secret();
    let username = db::transaction(conn, |conn| {
        let rows = db::query(
            conn,
            "SELECT u.username FROM users u WHERE u.id = ?1",
            &[Value::Text(user_id.clone())],
        )?;
        let row = rows.first().ok_or_else(ApiError::not_found)?;
        db::query(
            conn,
            "UPDATE credentials SET totp_pending_secret = ?2 WHERE user_id = ?1",
            &[
                Value::Text(user_id.clone()),
                Value::Text(sealer.seal(&secret, &user_id)),
            ],
        )?;
        vigil_api::audit::append(
            conn,
            &ctx.audit_entry("auth.mfa.enrolment_started", "user", &user_id, now),
        )?;
        Ok(db::text(row, 0).unwrap_or_default())
    })?;
    let otpauth_uri = totp::otpauth_uri("Vigil", &username, &secret);
    let qr_svg = qrcode::QrCode::new(otpauth_uri.as_bytes())
        .map_err(|_| ApiError::internal())?
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(200, 200)
        .build();
    Ok(response::json(
        200,
        &Enrolment {
            secret,
            otpauth_uri,
            qr_svg,
        },
    ))
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Confirm {
    /// The authenticator's current 6-digit code.
    #[schemars(length(max = 16))]
    code: String,
}

#[derive(Serialize, JsonSchema)]
pub struct RecoveryCodes {
    /// Ten codes, each usable once instead of an authenticator code. Shown only now.
    recovery_codes: Vec<String>,
}

/// `POST /api/auth/mfa/confirm`: the first code of the pending secret turns
/// it on (replacing the authenticator in use, if any) with new recovery codes.
pub fn confirm(ctx: &mut Ctx) -> Result<Response, ApiError> {
    let req: Confirm = input::json(ctx)?;
    let (user_id, _) = user_of(ctx)?;
    let now = now_millis();
    let codes = totp::new_recovery_codes();
    let conn = db::open()?;
    db::transaction(conn, |conn| {
        static STATE: Columns = Columns::new("totp_confirmed_at, totp_pending_secret");
        let rows = db::query(
            conn,
            &format!("SELECT {STATE} FROM credentials WHERE user_id = ?1"),
            &[Value::Text(user_id.clone())],
        )?;
        let row = rows
            .first()
            .map(|r| STATE.row(r))
            .ok_or_else(ApiError::not_found)?;
        if row.text("totp_pending_secret").is_none() {
            return Err(ApiError::conflict("start with POST /api/auth/mfa/enroll"));
        }
        let replacing = row.int("totp_confirmed_at").is_some();
        if !accept_code(conn, &user_id, Which::Pending, &req.code, now)? {
            return Err(wrong_code());
        }
        db::query(
            conn,
            "UPDATE credentials SET totp_secret = totp_pending_secret, totp_pending_secret = NULL,
                    totp_confirmed_at = ?2 WHERE user_id = ?1",
            &[Value::Text(user_id.clone()), Value::Integer(now)],
        )?;
        db::query(
            conn,
            "DELETE FROM recovery_codes WHERE user_id = ?1",
            &[Value::Text(user_id.clone())],
        )?;
        for code in &codes {
            db::query(
                conn,
                "INSERT INTO recovery_codes (user_id, code_hash) VALUES (?1, ?2)",
                &[
                    Value::Text(user_id.clone()),
                    Value::Text(secret_hash(&totp::normalize_recovery_code(code))),
                ],
            )?;
        }
        vigil_api::audit::append(
            conn,
            &ctx.audit_entry(
                if replacing {
                    "auth.mfa.replaced"
                } else {
                    "auth.mfa.enabled"
                },
                "user",
                &user_id,
                now,
            ),
        )
    })?;
    Ok(response::json(
        200,
        &RecoveryCodes {
            recovery_codes: codes,
        },
    ))
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Disable {
    #[schemars(length(max = 4096), extend("format" = "password"))]
    password: String,
    #[schemars(length(max = 16))]
    code: String,
}

/// `POST /api/auth/mfa/disable`: needs the password and a current code
/// (failures count towards the lockout of this address); refused when the
/// user's role requires 2FA.
pub fn disable(ctx: &mut Ctx) -> Result<Response, ApiError> {
    let req: Disable = input::json(ctx)?;
    let (user_id, role) = user_of(ctx)?;
    if mfa_required(role)? {
        return Err(ApiError::new(409, "mfa-required", "2FA required")
            .with_detail("your role requires two-factor authentication"));
    }
    let now = now_millis();
    let conn = db::open()?;
    let account = load_account(conn, By::Id(&user_id), &lockout::client(ctx))?
        .ok_or_else(ApiError::not_found)?;
    if !account.mfa_enabled {
        return Err(ApiError::conflict("2FA is not enabled"));
    }
    prove_owner(ctx, conn, &user_id, &req.password, Some(&req.code), now)?;
    db::transaction(conn, |conn| {
        db::query(
            conn,
            "UPDATE credentials SET totp_secret = NULL, totp_pending_secret = NULL, totp_confirmed_at = NULL,
                    totp_last_step = NULL WHERE user_id = ?1",
            &[Value::Text(user_id.clone())],
        )?;
        db::query(
            conn,
            "DELETE FROM recovery_codes WHERE user_id = ?1",
            &[Value::Text(user_id.clone())],
        )?;
        vigil_api::audit::append(
            conn,
            &ctx.audit_entry("auth.mfa.disabled", "user", &user_id, now),
        )
    })?;
    Ok(Response::builder().status(204).build())
}
