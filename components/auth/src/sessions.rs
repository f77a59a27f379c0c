//! Sessions and their refresh tokens: creating one at login, rotating its
//! refresh token, ending one (or all of a user's), listing them.

use schemars::JsonSchema;
use serde::Serialize;
use spin_sdk::http::Response;
use spin_sdk::sqlite::Connection;
use vigil_api::db::{Columns, Value};
use vigil_api::{ApiError, Ctx, Permission, db, response};
use vigil_core::login::{REFRESH_IDLE_MS, SESSION_ABSOLUTE_MS, new_secret, secret_hash};
use vigil_core::time::{now_millis, rfc3339};
use vigil_core::token::{ACCESS_TOKEN_TTL_SECS, Claims};
use vigil_core::{Pending, Role, id::new_id};

use crate::settings::{Signing, max_sessions};

/// What a successful login or refresh returns.
#[derive(Serialize, JsonSchema)]
pub struct Tokens {
    /// EdDSA JWT, valid for `expires_in` seconds.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    pub expires_in: i64,
    /// Opaque, single use: `POST /api/auth/refresh` exchanges it for new tokens.
    /// Absent when the session keeps it in the `vigil_refresh` cookie
    /// (`"session": "cookie"` at login).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[schemars(extend("format" = "date-time"))]
    pub refresh_token_expires_at: String,
    /// Seconds until the refresh token expires (the cookie's `Max-Age`).
    #[serde(skip)]
    pub refresh_token_max_age_secs: i64,
    #[schemars(extend("format" = "uuid"))]
    pub session_id: String,
}

/// Who a session is for.
pub struct Grant<'a> {
    pub user_id: &'a str,
    pub role: Role,
    /// A step they owe before anything else.
    pub pending: Option<Pending>,
}

/// Mint an access token and a new refresh token for session `sid` (inside
/// the caller's transaction).
pub fn issue(
    conn: &Connection,
    signing: &Signing,
    who: &Grant,
    sid: &str,
    session_expires_at: i64,
    now: i64,
) -> Result<Tokens, ApiError> {
    let user_id = who.user_id;
    let refresh = new_secret();
    let refresh_expires = (now + REFRESH_IDLE_MS).min(session_expires_at);
    db::query(
        conn,
        "INSERT INTO refresh_tokens (id, family_id, user_id, token_hash, created_at, last_used_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6)",
        &[
            Value::Text(new_id()),
            Value::Text(sid.into()),
            Value::Text(user_id.into()),
            Value::Text(secret_hash(&refresh)),
            Value::Integer(now),
            Value::Integer(refresh_expires),
        ],
    )?;
    let mut claims = Claims::user_access(
        &signing.issuer,
        &signing.audience,
        user_id,
        who.role,
        sid,
        now / 1000,
    );
    claims.pending = who.pending;
    Ok(Tokens {
        access_token: signing.signer.sign(&claims),
        token_type: "Bearer",
        expires_in: ACCESS_TOKEN_TTL_SECS,
        refresh_token: Some(refresh),
        refresh_token_expires_at: rfc3339(refresh_expires),
        refresh_token_max_age_secs: (refresh_expires - now).max(0) / 1000,
        session_id: sid.into(),
    })
}

/// Start a session for a user who just proved who they are; beyond the cap,
/// the oldest live sessions end (reason `evicted`, audited).
pub fn start(
    ctx: &Ctx,
    conn: &Connection,
    signing: &Signing,
    who: &Grant,
    now: i64,
) -> Result<Tokens, ApiError> {
    let user_id = who.user_id;
    let live = db::query(
        conn,
        "SELECT id FROM sessions WHERE user_id = ?1 AND revoked_at IS NULL AND expires_at > ?2 ORDER BY created_at",
        &[Value::Text(user_id.into()), Value::Integer(now)],
    )?;
    let excess = (live.len() as i64 + 1 - max_sessions()?).max(0) as usize;
    for row in live.iter().take(excess) {
        let old = db::text(row, 0).unwrap_or_default();
        end(conn, &old, "evicted", now)?;
        let mut entry = ctx.audit_entry("auth.session.evicted", "session", &old, now);
        entry.actor = user_id.into();
        vigil_api::audit::append(conn, &entry)?;
    }
    let sid = new_id();
    let expires = now + SESSION_ABSOLUTE_MS;
    db::query(
        conn,
        "INSERT INTO sessions (id, user_id, created_at, last_used_at, expires_at, client_addr, user_agent)
         VALUES (?1, ?2, ?3, ?3, ?4, ?5, ?6)",
        &[
            Value::Text(sid.clone()),
            Value::Text(user_id.into()),
            Value::Integer(now),
            Value::Integer(expires),
            db::opt_text(ctx.client_addr().as_deref()),
            db::opt_text(ctx.user_agent()),
        ],
    )?;
    issue(conn, signing, who, &sid, expires, now)
}

/// End one session and kill its refresh tokens.
pub fn end(conn: &Connection, sid: &str, reason: &str, now: i64) -> Result<(), ApiError> {
    db::query(
        conn,
        "UPDATE sessions SET revoked_at = ?2, revoked_reason = ?3 WHERE id = ?1 AND revoked_at IS NULL",
        &[
            Value::Text(sid.into()),
            Value::Integer(now),
            Value::Text(reason.into()),
        ],
    )?;
    db::query(
        conn,
        "UPDATE refresh_tokens SET revoked_at = ?2 WHERE family_id = ?1 AND revoked_at IS NULL",
        &[Value::Text(sid.into()), Value::Integer(now)],
    )?;
    Ok(())
}

/// End every live session of a user, except `keep`.
pub fn end_all(
    conn: &Connection,
    user_id: &str,
    keep: Option<&str>,
    reason: &str,
    now: i64,
) -> Result<(), ApiError> {
    let live = db::query(
        conn,
        "SELECT id FROM sessions WHERE user_id = ?1 AND revoked_at IS NULL AND id IS NOT ?2",
        &[Value::Text(user_id.into()), db::opt_text(keep)],
    )?;
    for row in &live {
        end(conn, &db::text(row, 0).unwrap_or_default(), reason, now)?;
    }
    Ok(())
}

#[derive(Serialize, JsonSchema)]
pub struct Session {
    #[schemars(extend("format" = "uuid"))]
    id: String,
    #[schemars(extend("format" = "date-time"))]
    created_at: String,
    #[schemars(extend("format" = "date-time"))]
    last_used_at: String,
    #[schemars(extend("format" = "date-time"))]
    expires_at: String,
    client_addr: Option<String>,
    user_agent: Option<String>,
    /// Whether this is the session of the token that asked.
    current: bool,
}

#[derive(Serialize, JsonSchema)]
pub struct SessionList {
    sessions: Vec<Session>,
}

/// `GET /api/auth/sessions[?user_id=]`: live sessions, own (admins: anyone's).
pub fn list(ctx: &mut Ctx) -> Result<Response, ApiError> {
    let who = ctx.principal().clone();
    let requested = ctx.query_param("user_id");
    let user_id = match requested {
        Some(other) if other != who.subject => {
            if !vigil_api::authz::authorize(&who, Permission::UsersManage) {
                return Err(ApiError::forbidden(Permission::UsersManage.as_str()));
            }
            other
        }
        _ => who.subject.clone(),
    };
    let conn = db::open()?;
    static LISTED: Columns =
        Columns::new("id, created_at, last_used_at, expires_at, client_addr, user_agent");
    let rows = db::query(
        conn,
        &format!(
            "SELECT {LISTED} FROM sessions
             WHERE user_id = ?1 AND revoked_at IS NULL AND expires_at > ?2 ORDER BY created_at DESC"
        ),
        &[Value::Text(user_id), Value::Integer(now_millis())],
    )?;
    let sessions = rows
        .iter()
        .map(|row| {
            let r = LISTED.row(row);
            let id = r.text("id").unwrap_or_default();
            Session {
                current: who.session.as_deref() == Some(id.as_str()),
                id,
                created_at: rfc3339(r.int("created_at").unwrap_or(0)),
                last_used_at: rfc3339(r.int("last_used_at").unwrap_or(0)),
                expires_at: rfc3339(r.int("expires_at").unwrap_or(0)),
                client_addr: r.text("client_addr"),
                user_agent: r.text("user_agent"),
            }
        })
        .collect();
    Ok(response::json(200, &SessionList { sessions }))
}

/// `DELETE /api/auth/sessions/{id}`: end one of one's own sessions (admins: anyone's).
pub fn delete(ctx: &mut Ctx) -> Result<Response, ApiError> {
    let who = ctx.principal().clone();
    let sid = ctx.param("id").to_string();
    let admin = vigil_api::authz::authorize(&who, Permission::UsersManage);
    let now = now_millis();
    let conn = db::open()?;
    db::transaction(conn, |conn| {
        let rows = db::query(
            conn,
            "SELECT user_id FROM sessions WHERE id = ?1 AND revoked_at IS NULL",
            &[Value::Text(sid.clone())],
        )?;
        // Someone else's session is as invisible as a missing one.
        let owner = rows
            .first()
            .and_then(|r| db::text(r, 0))
            .filter(|owner| admin || *owner == who.subject);
        let Some(owner) = owner else {
            return Err(ApiError::not_found());
        };
        end(
            conn,
            &sid,
            if owner == who.subject {
                "logout"
            } else {
                "admin"
            },
            now,
        )?;
        let mut entry = ctx.audit_entry("auth.session.revoked", "session", &sid, now);
        entry.after = Some(serde_json::json!({"user_id": owner}).to_string());
        vigil_api::audit::append(conn, &entry)
    })?;
    Ok(Response::builder().status(204).build())
}
