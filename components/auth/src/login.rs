//! Logging in, refreshing, logging out, changing one's password.
//!
//! A failed login looks the same to the caller whatever the reason (unknown
//! user, wrong password, locked or disabled account): same status, same
//! body, and the same argon2 work. The reason goes to the audit log only.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use spin_sdk::http::Response;
use vigil_api::db::{Columns, Value};
use vigil_api::{ApiError, Ctx, db, response};
use vigil_core::Role;
use vigil_core::login::{LOGIN_ATTEMPTS_PER_ADDRESS_PER_MINUTE, secret_hash};
use vigil_core::password;
use vigil_core::time::now_millis;

use crate::account::{By, invalid_credentials, load_account, owed_step};
use crate::cookie::{self, SessionMode};
use crate::input;
use crate::lockout;
use crate::sessions::{self, Grant, Tokens};
use crate::settings::signing;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    #[schemars(length(max = 64))]
    username: String,
    #[schemars(length(max = 4096), extend("format" = "password"))]
    password: String,
    /// `cookie`: the refresh token goes into an `HttpOnly` cookie, not the
    /// body (browser logins; carried over to the 2FA step's answer there).
    #[serde(default)]
    session: SessionMode,
}

/// What a correct password gets: tokens, or (with 2FA on) a challenge.
#[derive(Serialize, JsonSchema)]
#[serde(untagged)]
pub enum LoginOutcome {
    Tokens(Tokens),
    Mfa(crate::mfa::Challenge),
}

/// `POST /api/auth/login`.
pub fn login(ctx: &mut Ctx) -> Result<Response, ApiError> {
    let req: LoginRequest = input::json(ctx)?;
    let now = now_millis();
    let addr = lockout::client(ctx);
    let conn = db::open()?;
    lockout::throttle(
        conn,
        "login:addr",
        &addr,
        LOGIN_ATTEMPTS_PER_ADDRESS_PER_MINUTE,
        now,
    )?;
    let signing = signing()?;

    // The slow part (argon2) runs before the write transaction, so logins do
    // not queue behind each other for the write lock.
    let account = load_account(conn, By::Username(&req.username), &addr)?;
    let verified = match account.as_ref().filter(|a| a.refusal(now).is_none()) {
        Some(a) => password::verify(&req.password, &a.password_hash),
        None => {
            password::dummy_verify(&req.password);
            false
        }
    };

    let tokens = db::transaction(conn, |conn| {
        let mut entry = ctx.audit_entry("auth.login.failed", "user", "", now);
        entry.actor = account
            .as_ref()
            .map_or_else(|| "anonymous".into(), |a| a.id.clone());
        entry.subject_id = account.as_ref().map(|a| a.id.clone());
        // Judged again under the write lock: a guess that raced the failures
        // that locked this address is refused like any other.
        let Some(account) = account
            .as_ref()
            .map(|a| load_account(conn, By::Id(&a.id), &addr))
            .transpose()?
            .flatten()
        else {
            // Never the name itself: it is often a password typed into the
            // wrong field. Its hash still answers "was this name tried?".
            entry.after = Some(
                serde_json::json!({"reason": "unknown_user", "username_sha256": secret_hash(&req.username.to_lowercase())})
                    .to_string(),
            );
            vigil_api::audit::append(conn, &entry)?;
            return Ok(None);
        };
        let refusal = account.refusal(now);
        if verified && refusal.is_none() && account.mfa_enabled {
            let challenge = crate::mfa::challenge(conn, &account.id, now)?;
            entry.action = "auth.login.mfa_challenged".into();
            vigil_api::audit::append(conn, &entry)?;
            return Ok(Some(LoginOutcome::Mfa(challenge)));
        }
        if verified && refusal.is_none() {
            lockout::record_success(ctx, conn, &account.id, now)?;
            let grant = Grant {
                user_id: &account.id,
                role: account.role,
                pending: account.pending()?,
            };
            let tokens = sessions::start(ctx, conn, &signing, &grant, now)?;
            entry.action = "auth.login.succeeded".into();
            entry.after = Some(serde_json::json!({"session_id": tokens.session_id}).to_string());
            vigil_api::audit::append(conn, &entry)?;
            return Ok(Some(LoginOutcome::Tokens(tokens)));
        }
        let reason = refusal.unwrap_or("wrong_password");
        entry.after = Some(serde_json::json!({"reason": reason}).to_string());
        vigil_api::audit::append(conn, &entry)?;
        if reason == "wrong_password" {
            lockout::count_failure(ctx, conn, &account.id, now)?;
        }
        Ok(None)
    })?;
    match tokens {
        Some(LoginOutcome::Tokens(tokens)) => Ok(cookie::reply(tokens, req.session)),
        Some(LoginOutcome::Mfa(challenge)) => Ok(response::json(200, &challenge)),
        None => Err(invalid_credentials()),
    }
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// Absent: the `vigil_refresh` cookie's token (with the `X-Vigil-CSRF`
    /// header), and the new one goes into the cookie too.
    #[schemars(length(max = 128))]
    refresh_token: Option<String>,
}

fn invalid_refresh() -> ApiError {
    ApiError::new(401, "invalid-refresh-token", "Invalid refresh token").with_detail(
        "the refresh token is unknown, used, expired or its session has ended; log in again",
    )
}

/// `POST /api/auth/refresh`: rotate. A refresh token already used is proof
/// that it leaked: its whole session ends, audited as reuse.
pub fn refresh(ctx: &mut Ctx) -> Result<Response, ApiError> {
    let req: RefreshRequest = input::json(ctx)?;
    let (presented, mode) = match req.refresh_token {
        Some(token) => (token, SessionMode::Body),
        None => (
            cookie::refresh_token(ctx)?.ok_or_else(invalid_refresh)?,
            SessionMode::Cookie,
        ),
    };
    let now = now_millis();
    let signing = signing()?;
    let conn = db::open()?;
    let tokens = db::transaction(conn, |conn| {
        static PRESENTED: Columns = Columns::new(
            "t.id, t.family_id, t.user_id, t.expires_at, t.revoked_at, \
             s.revoked_at AS session_revoked_at, s.expires_at AS session_expires_at, u.role, u.disabled, \
             c.totp_confirmed_at IS NOT NULL AS mfa_enabled, u.must_change_password",
        );
        let rows = db::query(
            conn,
            &format!(
                "SELECT {PRESENTED}
                 FROM refresh_tokens t JOIN sessions s ON s.id = t.family_id JOIN users u ON u.id = t.user_id
                      JOIN credentials c ON c.user_id = t.user_id
                 WHERE t.token_hash = ?1"
            ),
            &[Value::Text(secret_hash(&presented))],
        )?;
        let Some(r) = rows.first().map(|r| PRESENTED.row(r)) else {
            return Ok(None);
        };
        let (token_id, sid, user_id) = (
            r.text("t.id").unwrap_or_default(),
            r.text("t.family_id").unwrap_or_default(),
            r.text("t.user_id").unwrap_or_default(),
        );
        let session_expires_at = r.int("session_expires_at");
        let session_live = r.int("session_revoked_at").is_none()
            && session_expires_at.is_some_and(|exp| exp > now);
        if r.int("t.revoked_at").is_some() {
            if session_live {
                sessions::end(conn, &sid, "refresh_reuse", now)?;
                let mut entry = ctx.audit_entry("auth.refresh.reused", "session", &sid, now);
                entry.actor = user_id.clone();
                vigil_api::audit::append(conn, &entry)?;
            }
            return Ok(None);
        }
        let role = r.text("u.role").and_then(|r| Role::parse(&r));
        let usable = session_live
            && r.int("t.expires_at").is_some_and(|exp| exp > now)
            && r.int("u.disabled") == Some(0);
        let (true, Some(role)) = (usable, role) else {
            return Ok(None);
        };
        db::query(
            conn,
            "UPDATE refresh_tokens SET revoked_at = ?2, last_used_at = ?2 WHERE id = ?1",
            &[Value::Text(token_id.clone()), Value::Integer(now)],
        )?;
        db::query(
            conn,
            "UPDATE sessions SET last_used_at = ?2 WHERE id = ?1",
            &[Value::Text(sid.clone()), Value::Integer(now)],
        )?;
        let grant = Grant {
            user_id: &user_id,
            role,
            pending: owed_step(
                role,
                r.int("u.must_change_password") == Some(1),
                r.int("mfa_enabled") == Some(1),
            )?,
        };
        let tokens = sessions::issue(
            conn,
            &signing,
            &grant,
            &sid,
            session_expires_at.unwrap_or(now),
            now,
        )?;
        db::query(
            conn,
            "UPDATE refresh_tokens SET replaced_by = (SELECT id FROM refresh_tokens WHERE token_hash = ?2) WHERE id = ?1",
            &[
                Value::Text(token_id),
                Value::Text(secret_hash(
                    tokens.refresh_token.as_deref().unwrap_or_default(),
                )),
            ],
        )?;
        let mut entry = ctx.audit_entry("auth.token.refreshed", "session", &sid, now);
        entry.actor = user_id;
        vigil_api::audit::append(conn, &entry)?;
        Ok(Some(tokens))
    })?;
    tokens
        .map(|t| cookie::reply(t, mode))
        .ok_or_else(invalid_refresh)
}

/// `POST /api/auth/logout`: end the session of the token that asks.
pub fn logout(ctx: &mut Ctx) -> Result<Response, ApiError> {
    let who = ctx.principal().clone();
    let Some(sid) = who.session.clone() else {
        return Err(ApiError::bad_request(
            "API keys have no session to log out of",
        ));
    };
    let now = now_millis();
    let conn = db::open()?;
    db::transaction(conn, |conn| {
        sessions::end(conn, &sid, "logout", now)?;
        vigil_api::audit::append(conn, &ctx.audit_entry("auth.logout", "session", &sid, now))
    })?;
    // A browser's refresh cookie goes with the session (harmless otherwise).
    Ok(Response::builder()
        .status(204)
        .header("set-cookie", cookie::cleared())
        .build())
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    #[schemars(length(max = 4096), extend("format" = "password"))]
    current_password: String,
    /// 12-1024 bytes after NFKC normalisation; not a common password.
    #[schemars(length(min = 12), extend("format" = "password"))]
    new_password: String,
}

/// `POST /api/auth/password`: change one's own password; every other
/// session ends. A wrong current password counts towards the lockout of this
/// address, as at login (a stolen token must not become a password oracle).
pub fn change_password(ctx: &mut Ctx) -> Result<Response, ApiError> {
    let req: PasswordChange = input::json(ctx)?;
    let who = ctx.principal().clone();
    if who.role.is_none() {
        return Err(ApiError::bad_request("API keys have no password"));
    }
    if let Err(why) = password::check_policy(&req.new_password) {
        return Err(ApiError::invalid_field("new_password", why.to_string()));
    }
    let now = now_millis();
    let conn = db::open()?;
    let addr = lockout::client(ctx);
    let account =
        load_account(conn, By::Id(&who.subject), &addr)?.ok_or_else(ApiError::not_found)?;
    lockout::refuse_if_locked(ctx, conn, &who.subject, now)?;
    if account.password_expires_at.is_some_and(|at| at <= now)
        || !password::verify(&req.current_password, &account.password_hash)
    {
        db::transaction(conn, |conn| {
            let mut entry =
                ctx.audit_entry("user.password_change_failed", "user", &who.subject, now);
            entry.after = Some(serde_json::json!({"reason": "wrong_password"}).to_string());
            vigil_api::audit::append(conn, &entry)?;
            lockout::count_failure(ctx, conn, &who.subject, now)
        })?;
        return Err(ApiError::invalid_field(
            "current_password",
            "is not correct",
        ));
    }
    let hash = password::hash(&req.new_password);
    db::transaction(conn, |conn| {
        lockout::refuse_if_locked(ctx, conn, &who.subject, now)?;
        db::query(
            conn,
            "UPDATE credentials SET password_hash = ?2, password_changed_at = ?3, password_expires_at = NULL
              WHERE user_id = ?1",
            &[
                Value::Text(who.subject.clone()),
                Value::Text(hash.clone()),
                Value::Integer(now),
            ],
        )?;
        db::query(
            conn,
            "UPDATE users SET must_change_password = 0, updated_at = ?2 WHERE id = ?1",
            &[Value::Text(who.subject.clone()), Value::Integer(now)],
        )?;
        sessions::end_all(
            conn,
            &who.subject,
            who.session.as_deref(),
            "password_changed",
            now,
        )?;
        vigil_api::audit::append(
            conn,
            &ctx.audit_entry("user.password_changed", "user", &who.subject, now),
        )
    })?;
    Ok(Response::builder().status(204).build())
}
