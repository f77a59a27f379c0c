//! Invitations instead of open sign-up: an admin invites someone to a role;
//! the invitation token (shown once, stored hashed) registers one account
//! before it expires.

use crate::input;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use spin_sdk::http::Response;
use vigil_api::audit::Audited;
use vigil_api::db::{Columns, Value};
use vigil_api::{ApiError, Ctx, db, response};
use vigil_core::login::{REGISTER_ATTEMPTS_PER_ADDRESS_PER_MINUTE, new_secret, secret_hash};
use vigil_core::time::{now_millis, rfc3339};
use vigil_core::{Role, id::new_id, password};

const HOUR_MS: i64 = 3600 * 1000;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewInvitation {
    role: Role,
    /// Hours until the invitation expires (1 to 720; default 72).
    #[schemars(range(min = 1, max = 720))]
    expires_in_hours: Option<i64>,
}

#[derive(Serialize, JsonSchema)]
pub struct Invitation {
    #[schemars(extend("format" = "uuid"))]
    id: String,
    role: Role,
    #[schemars(extend("format" = "date-time"))]
    expires_at: String,
    /// Give this to the invitee; shown once, stored only as a hash.
    invite_token: String,
}

/// Whether the admin `user_id` has 2FA on.
fn has_mfa(conn: &spin_sdk::sqlite::Connection, user_id: &str) -> Result<bool, ApiError> {
    Ok(!db::query(
        conn,
        "SELECT 1 FROM credentials WHERE user_id = ?1 AND totp_confirmed_at IS NOT NULL",
        &[Value::Text(user_id.into())],
    )?
    .is_empty())
}

/// `POST /api/auth/invitations` (admin). An invitation to `admin` is a new
/// admin: when any role must use 2FA, only an admin with 2FA on may issue it.
pub fn create(ctx: &mut Ctx) -> Result<Response, ApiError> {
    let req: NewInvitation = input::json(ctx)?;
    let hours = req.expires_in_hours.unwrap_or(72);
    let (id, token, now) = (new_id(), new_secret(), now_millis());
    let expires = now + hours * HOUR_MS;
    let mfa_policy = !crate::settings::settings()?.mfa_required_roles.is_empty();
    let conn = db::open()?;
    db::transaction(conn, |conn| {
        let issuer = ctx.principal().subject.clone();
        if req.role == Role::Admin && mfa_policy && !has_mfa(conn, &issuer)? {
            return Err(ApiError::new(403, "mfa-required", "2FA required").with_detail(
                "an invitation to admin needs an admin with 2FA on: enrol at /api/auth/mfa/enroll first",
            ));
        }
        db::query(
            conn,
            "INSERT INTO invitations (id, token_hash, role, created_by, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            &[
                Value::Text(id.clone()),
                Value::Text(secret_hash(&token)),
                Value::Text(req.role.as_str().into()),
                Value::Text(issuer),
                Value::Integer(now),
                Value::Integer(expires),
            ],
        )?;
        let mut entry = ctx.audit_entry("invitation.created", "invitation", &id, now);
        entry.after =
            Some(serde_json::json!({"role": req.role.as_str(), "expires_at": expires}).to_string());
        vigil_api::audit::append(conn, &entry)
    })?;
    let invitation = Invitation {
        id,
        role: req.role,
        expires_at: rfc3339(expires),
        invite_token: token,
    };
    Ok(response::json(201, &invitation))
}

/// An invitation as listed: never its token.
#[derive(Serialize, JsonSchema)]
pub struct ListedInvitation {
    #[schemars(extend("format" = "uuid"))]
    id: String,
    role: Role,
    /// `unused`, `used`, `expired` or `revoked`.
    state: &'static str,
    created_by: Option<String>,
    #[schemars(extend("format" = "date-time"))]
    created_at: String,
    #[schemars(extend("format" = "date-time"))]
    expires_at: String,
    /// The account it registered, once used.
    used_by: Option<String>,
}

#[derive(Serialize, JsonSchema)]
pub struct InvitationList {
    invitations: Vec<ListedInvitation>,
}

/// `GET /api/auth/invitations` (admin): the latest 200, newest first.
pub fn list(_ctx: &mut Ctx) -> Result<Response, ApiError> {
    let now = now_millis();
    let conn = db::open()?;
    static LISTED: Columns =
        Columns::new("id, role, created_by, created_at, expires_at, used_at, used_by, revoked_at");
    let rows = db::query(
        conn,
        &format!("SELECT {LISTED} FROM invitations ORDER BY created_at DESC LIMIT 200"),
        &[],
    )?;
    let invitations = rows
        .iter()
        .filter_map(|row| {
            let r = LISTED.row(row);
            let expires = r.int("expires_at")?;
            Some(ListedInvitation {
                id: r.text("id")?,
                role: Role::parse(&r.text("role")?)?,
                state: if r.int("used_at").is_some() {
                    "used"
                } else if r.int("revoked_at").is_some() {
                    "revoked"
                } else if expires <= now {
                    "expired"
                } else {
                    "unused"
                },
                created_by: r.text("created_by"),
                created_at: rfc3339(r.int("created_at")?),
                expires_at: rfc3339(expires),
                used_by: r.text("used_by"),
            })
        })
        .collect();
    Ok(response::json(200, &InvitationList { invitations }))
}

/// `DELETE /api/auth/invitations/{id}` (admin): revoke an unused
/// invitation; a used one is 409 (disable the account instead).
pub fn revoke(ctx: &mut Ctx) -> Result<Response, ApiError> {
    let id = ctx.param("id").to_string();
    let now = now_millis();
    let conn = db::open()?;
    db::transaction(conn, |conn| {
        let rows = db::query(
            conn,
            "SELECT used_at FROM invitations WHERE id = ?1",
            &[Value::Text(id.clone())],
        )?;
        let row = rows.first().ok_or_else(ApiError::not_found)?;
        if db::int(row, 0).is_some() {
            return Err(ApiError::conflict(
                "the invitation was used: disable the account it registered instead",
            ));
        }
        db::query(
            conn,
            "UPDATE invitations SET revoked_at = coalesce(revoked_at, ?2), revoked_by = coalesce(revoked_by, ?3) WHERE id = ?1",
            &[
                Value::Text(id.clone()),
                Value::Integer(now),
                Value::Text(ctx.principal().subject.clone()),
            ],
        )?;
        vigil_api::audit::append(
            conn,
            &ctx.audit_entry("invitation.revoked", "invitation", &id, now),
        )
    })?;
    Ok(Response::builder().status(204).build())
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Registration {
    #[schemars(length(max = 128))]
    invite_token: String,
    #[schemars(length(min = 3, max = 64), regex(pattern = r"^[a-z0-9][a-z0-9._-]*$"))]
    username: String,
    #[serde(default)]
    #[schemars(length(max = 128))]
    display_name: String,
    /// 12-1024 bytes after NFKC normalisation; not a common password.
    #[schemars(length(min = 12), extend("format" = "password"))]
    password: String,
}

fn invalid_invitation() -> ApiError {
    ApiError::new(401, "invalid-invitation", "Invalid invitation").with_detail(
        "the invitation is unknown, used, revoked or expired; ask an admin for a new one",
    )
}

/// The live invitation a token names: `(id, role)`.
fn live_invitation(
    conn: &spin_sdk::sqlite::Connection,
    token: &str,
    now: i64,
) -> Result<Option<(String, Role)>, ApiError> {
    static LIVE: Columns = Columns::new("id, role");
    let rows = db::query(
        conn,
        &format!(
            "SELECT {LIVE} FROM invitations
              WHERE token_hash = ?1 AND used_at IS NULL AND revoked_at IS NULL AND expires_at > ?2"
        ),
        &[Value::Text(secret_hash(token)), Value::Integer(now)],
    )?;
    Ok(rows
        .first()
        .map(|r| LIVE.row(r))
        .and_then(|r| Some((r.text("id")?, Role::parse(&r.text("role")?)?))))
}

/// `POST /api/auth/register`: create the invited account, once. Throttled
/// per address like login, and the invitation is checked before any argon2
/// work, so a stranger without one costs a lookup, not a hash.
pub fn register(ctx: &mut Ctx) -> Result<Response, ApiError> {
    let req: Registration = input::json(ctx)?;
    let now = now_millis();
    let conn = db::open()?;
    crate::lockout::throttle(
        conn,
        "register:addr",
        &crate::lockout::client(ctx),
        REGISTER_ATTEMPTS_PER_ADDRESS_PER_MINUTE,
        now,
    )?;
    if live_invitation(conn, &req.invite_token, now)?.is_none() {
        return Err(invalid_invitation());
    }
    crate::users::validate_account(&req.username, &req.display_name, &req.password)?;
    let hash = password::hash(&req.password);
    let id = new_id();
    let created = db::transaction(conn, |conn| {
        // Again under the write lock: it may have been used or revoked meanwhile.
        let (invitation, role) =
            live_invitation(conn, &req.invite_token, now)?.ok_or_else(invalid_invitation)?;
        crate::users::insert_account(
            conn,
            &id,
            &req.username,
            &req.display_name,
            role,
            hash.clone(),
            now,
        )?;
        db::query(
            conn,
            "UPDATE invitations SET used_at = ?2, used_by = ?3 WHERE id = ?1",
            &[
                Value::Text(invitation.clone()),
                Value::Integer(now),
                Value::Text(id.clone()),
            ],
        )?;
        let mut entry = ctx.audit_entry("user.registered", "user", &id, now);
        entry.actor = id.clone();
        let record = serde_json::json!({"id": id, "username": req.username, "role": role.as_str()});
        let audited = Audited::new(entry)
            .after(&serde_json::json!({"username": req.username, "role": role.as_str(), "invitation": invitation}))
            .publish("user.created", record);
        vigil_api::audit::record(conn, &audited)?;
        crate::users::load(conn, &id)
    })?;
    Ok(response::json(201, &created))
}
