//! Invitations instead of open sign-up: an admin invites someone to a role;
//! the invitation token (shown once, stored hashed) registers one account
//! before it expires.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use spin_sdk::http::Response;
use vigil_api::db::Value;
use vigil_api::{ApiError, Ctx, db, response};
use vigil_core::login::{new_secret, secret_hash};
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

/// `POST /api/auth/invitations` (admin).
pub fn create(ctx: &mut Ctx) -> Result<Response, ApiError> {
    let req: NewInvitation = ctx.json()?;
    let hours = req.expires_in_hours.unwrap_or(72);
    if !(1..=720).contains(&hours) {
        return Err(ApiError::invalid_field(
            "expires_in_hours",
            "must be between 1 and 720",
        ));
    }
    let (id, token, now) = (new_id(), new_secret(), now_millis());
    let expires = now + hours * HOUR_MS;
    let conn = db::open()?;
    db::transaction(conn, |conn| {
        db::query(
            conn,
            "INSERT INTO invitations (id, token_hash, role, created_by, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            &[
                Value::Text(id.clone()),
                Value::Text(secret_hash(&token)),
                Value::Text(req.role.as_str().into()),
                Value::Text(ctx.principal().subject.clone()),
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

/// `POST /api/auth/register`: create the invited account, once.
pub fn register(ctx: &mut Ctx) -> Result<Response, ApiError> {
    let req: Registration = ctx.json()?;
    crate::users::validate_account(&req.username, &req.display_name, &req.password)?;
    let hash = password::hash(&req.password);
    let (id, now) = (new_id(), now_millis());
    let conn = db::open()?;
    let created = db::transaction(conn, |conn| {
        let rows = db::query(
            conn,
            "SELECT id, role FROM invitations WHERE token_hash = ?1 AND used_at IS NULL AND expires_at > ?2",
            &[
                Value::Text(secret_hash(&req.invite_token)),
                Value::Integer(now),
            ],
        )?;
        let invalid = || {
            ApiError::new(401, "invalid-invitation", "Invalid invitation").with_detail(
                "the invitation is unknown, used or expired; ask an admin for a new one",
            )
        };
        let row = rows.first().ok_or_else(invalid)?;
        let (invitation, role) = (
            db::text(row, 0).unwrap_or_default(),
            db::text(row, 1)
                .and_then(|r| Role::parse(&r))
                .ok_or_else(invalid)?,
        );
        crate::users::insert_account(conn, &id, &req.username, &req.display_name, role, hash, now)?;
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
        entry.after = Some(serde_json::json!({"username": req.username, "role": role.as_str(), "invitation": invitation}).to_string());
        vigil_api::audit::append(conn, &entry)?;
        let record = serde_json::json!({"id": id, "username": req.username, "role": role.as_str()});
        vigil_api::audit::publish(conn, "user.created", &record, now)?;
        crate::users::load(conn, &id)
    })?;
    Ok(response::json(201, &created))
}
