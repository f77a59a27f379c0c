//! Two-factor authentication: enrolment (secret, `otpauth` URI, QR code),
//! confirmation with a first code (which returns ten one-time recovery
//! codes, stored hashed), disabling (password and code), and the second step
//! of a login (a single-use challenge exchanged with a code or a recovery code).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use spin_sdk::http::Response;
use spin_sdk::sqlite::Connection;
use vigil_api::db::Value;
use vigil_api::{ApiError, Ctx, db, response};
use vigil_core::login::{new_secret, secret_hash};
use vigil_core::time::now_millis;
use vigil_core::{Role, password, totp};

use crate::login::{By, count_failure, invalid_credentials, load_account, save_failures};
use crate::sessions::{self, Grant};
use crate::settings::{mfa_required, signing};

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
    #[schemars(length(max = 32))]
    recovery_code: Option<String>,
}

/// `POST /api/auth/login/mfa`: the second step. The challenge is spent by
/// any attempt; a wrong code counts towards the lockout like a wrong password.
pub fn login(ctx: &mut Ctx) -> Result<Response, ApiError> {
    let req: MfaLogin = ctx.json()?;
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
        let Some(account) = load_account(conn, By::Id(&user_id))? else {
            return Ok(None);
        };
        let mut entry = ctx.audit_entry("auth.login.failed", "user", &user_id, now);
        entry.actor = user_id.clone();
        if account.disabled || account.failures.is_locked(now) {
            entry.after = Some(serde_json::json!({"reason": if account.disabled { "disabled" } else { "locked" }, "step": "mfa"}).to_string());
            vigil_api::audit::append(conn, &entry)?;
            return Ok(None);
        }
        let second_factor = match (&req.code, &req.recovery_code) {
            (Some(code), _) => accept_code(conn, &user_id, code, now)?,
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
            count_failure(ctx, conn, &user_id, now)?;
            return Ok(None);
        }
        save_failures(conn, &user_id, account.failures.after_success())?;
        let tokens = sessions::start(
            ctx,
            conn,
            &signing,
            &Grant {
                user_id: &user_id,
                role: account.role,
                pending: account.pending(),
            },
            now,
        )?;
        entry.action = "auth.login.succeeded".into();
        entry.after = Some(serde_json::json!({"session_id": tokens.session_id, "second_factor": if req.code.is_some() { "totp" } else { "recovery_code" }}).to_string());
        vigil_api::audit::append(conn, &entry)?;
        Ok(Some(tokens))
    })?;
    tokens
        .map(|t| response::json(200, &t))
        .ok_or_else(invalid_credentials)
}

fn already_enabled() -> ApiError {
    ApiError::new(409, "mfa-already-enabled", "2FA already enabled")
        .with_detail("disable it first to enrol a new authenticator")
}

fn wrong_code() -> ApiError {
    ApiError::invalid_field("code", "is not the authenticator's current code")
}

/// Accept a TOTP code once: it must match within ±1 step and be newer than
/// the last one accepted.
fn accept_code(conn: &Connection, user_id: &str, code: &str, now: i64) -> Result<bool, ApiError> {
    let rows = db::query(
        conn,
        "SELECT totp_secret, totp_last_step FROM credentials WHERE user_id = ?1 AND totp_secret IS NOT NULL",
        &[Value::Text(user_id.into())],
    )?;
    let Some(row) = rows.first() else {
        return Ok(false);
    };
    let secret = db::text(row, 0).unwrap_or_default();
    let Some(step) = totp::verify(&secret, code, now / 1000, db::int(row, 1)) else {
        return Ok(false);
    };
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

/// `POST /api/auth/mfa/enroll`: a fresh secret (replacing an unconfirmed one).
pub fn enroll(ctx: &mut Ctx) -> Result<Response, ApiError> {
    let (user_id, _) = user_of(ctx)?;
    let now = now_millis();
    let conn = db::open()?;
    let secret = totp::new_secret();
    let username = db::transaction(conn, |conn| {
        let rows = db::query(
            conn,
            "SELECT u.username, c.totp_confirmed_at FROM users u JOIN credentials c ON c.user_id = u.id WHERE u.id = ?1",
            &[Value::Text(user_id.clone())],
        )?;
        let row = rows.first().ok_or_else(ApiError::not_found)?;
        if db::int(row, 1).is_some() {
            return Err(already_enabled());
        }
        db::query(
            conn,
            "UPDATE credentials SET totp_secret = ?2, totp_last_step = NULL WHERE user_id = ?1",
            &[Value::Text(user_id.clone()), Value::Text(secret.clone())],
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

/// `POST /api/auth/mfa/confirm`: the first code turns 2FA on.
pub fn confirm(ctx: &mut Ctx) -> Result<Response, ApiError> {
    let req: Confirm = ctx.json()?;
    let (user_id, _) = user_of(ctx)?;
    let now = now_millis();
    let codes = totp::new_recovery_codes();
    let conn = db::open()?;
    db::transaction(conn, |conn| {
        let rows = db::query(
            conn,
            "SELECT totp_confirmed_at, totp_secret FROM credentials WHERE user_id = ?1",
            &[Value::Text(user_id.clone())],
        )?;
        let row = rows.first().ok_or_else(ApiError::not_found)?;
        if db::int(row, 0).is_some() {
            return Err(already_enabled());
        }
        if db::text(row, 1).is_none() {
            return Err(ApiError::conflict("start with POST /api/auth/mfa/enroll"));
        }
        if !accept_code(conn, &user_id, &req.code, now)? {
            return Err(wrong_code());
        }
        db::query(
            conn,
            "UPDATE credentials SET totp_confirmed_at = ?2 WHERE user_id = ?1",
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
            &ctx.audit_entry("auth.mfa.enabled", "user", &user_id, now),
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

/// `POST /api/auth/mfa/disable`: needs the password and a current code;
/// refused when the user's role requires 2FA.
pub fn disable(ctx: &mut Ctx) -> Result<Response, ApiError> {
    let req: Disable = ctx.json()?;
    let (user_id, role) = user_of(ctx)?;
    if mfa_required(role) {
        return Err(ApiError::new(409, "mfa-required", "2FA required")
            .with_detail("your role requires two-factor authentication"));
    }
    let now = now_millis();
    let conn = db::open()?;
    let account = load_account(conn, By::Id(&user_id))?.ok_or_else(ApiError::not_found)?;
    if !account.mfa_enabled {
        return Err(ApiError::conflict("2FA is not enabled"));
    }
    if !password::verify(&req.password, &account.password_hash) {
        return Err(ApiError::invalid_field("password", "is not correct"));
    }
    db::transaction(conn, |conn| {
        if !accept_code(conn, &user_id, &req.code, now)? {
            return Err(wrong_code());
        }
        db::query(
            conn,
            "UPDATE credentials SET totp_secret = NULL, totp_confirmed_at = NULL, totp_last_step = NULL WHERE user_id = ?1",
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
