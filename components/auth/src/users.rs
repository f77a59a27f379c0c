//! Users: listing, creating, reading and updating them (admin), and the
//! caller's own record.

use crate::input;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use spin_sdk::http::Response;
use vigil_api::audit::{self, Audited};
use vigil_api::db::{Columns, Value};
use vigil_api::{ApiError, Ctx, Permission, db, response};
use vigil_core::{FieldError, Role, password, time::now_millis, user};

#[derive(Serialize, JsonSchema)]
pub struct Me {
    subject: String,
    /// `user` or `api_key`.
    kind: &'static str,
    role: Option<Role>,
    /// Every permission the caller holds, by wire name.
    permissions: Vec<&'static str>,
    /// The user record, for users that exist in the database.
    user: Option<User>,
}

pub fn me(ctx: &mut Ctx) -> Result<Response, ApiError> {
    let who = ctx.principal();
    let user = match who.role {
        Some(_) => find(db::open()?, &who.subject)?,
        None => None,
    };
    let permissions = Permission::ALL
        .iter()
        .filter(|p| who.may(**p))
        .map(|p| p.as_str())
        .collect();
    Ok(response::json(
        200,
        &Me {
            subject: who.subject.clone(),
            kind: if who.role.is_some() {
                "user"
            } else {
                "api_key"
            },
            role: who.role,
            permissions,
            user,
        },
    ))
}

#[derive(Serialize, JsonSchema)]
pub struct UserList {
    users: Vec<User>,
}

#[derive(Serialize, JsonSchema)]
pub struct User {
    #[schemars(extend("format" = "uuid"))]
    id: String,
    username: String,
    display_name: String,
    role: Role,
    disabled: bool,
    must_change_password: bool,
    #[schemars(extend("format" = "date-time"))]
    created_at: String,
}

static USER_COLUMNS: Columns =
    Columns::new("id, username, display_name, role, disabled, must_change_password, created_at");

fn user_from_row(row: &[Value]) -> Option<User> {
    let r = USER_COLUMNS.row(row);
    Some(User {
        id: r.text("id")?,
        username: r.text("username")?,
        display_name: r.text("display_name")?,
        role: Role::parse(&r.text("role")?)?,
        disabled: r.int("disabled")? != 0,
        must_change_password: r.int("must_change_password")? != 0,
        created_at: vigil_core::time::rfc3339(r.int("created_at")?),
    })
}

pub fn list(_ctx: &mut Ctx) -> Result<Response, ApiError> {
    let conn = db::open()?;
    let rows = db::query(
        conn,
        &format!("SELECT {USER_COLUMNS} FROM users ORDER BY username"),
        &[],
    )?;
    let users: Vec<User> = rows.iter().filter_map(|r| user_from_row(r)).collect();
    Ok(response::json(200, &UserList { users }))
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// 3-64 characters of a-z, 0-9, `.`, `_`, `-`, starting with a letter or digit.
    #[schemars(length(min = 3, max = 64), regex(pattern = r"^[a-z0-9][a-z0-9._-]*$"))]
    username: String,
    #[serde(default)]
    #[schemars(length(max = 128))]
    display_name: String,
    role: Role,
    /// 12-1024 bytes after NFKC normalisation; not a common password.
    #[schemars(length(min = 12), extend("format" = "password"))]
    password: String,
}

/// The rules for a new account, every violation naming its field.
pub(crate) fn validate_account(
    username: &str,
    display_name: &str,
    new_password: &str,
) -> Result<(), ApiError> {
    let errors: Vec<FieldError> = [
        (
            "username",
            user::check_username(username).map_err(String::from),
        ),
        (
            "display_name",
            user::check_display_name(display_name).map_err(String::from),
        ),
        (
            "password",
            password::check_policy(new_password)
                .map(drop)
                .map_err(|e| e.to_string()),
        ),
    ]
    .into_iter()
    .filter_map(|(field, result)| {
        result.err().map(|message| FieldError {
            field: field.into(),
            message,
        })
    })
    .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::validation(errors))
    }
}

/// Insert a user and their password hash (inside the caller's transaction).
/// A taken username is a 409.
pub(crate) fn insert_account(
    conn: &spin_sdk::sqlite::Connection,
    id: &str,
    username: &str,
    display_name: &str,
    role: Role,
    password_hash: String,
    now: i64,
) -> Result<(), ApiError> {
    if !db::query(
        conn,
        "SELECT 1 FROM users WHERE username = ?1",
        &[Value::Text(username.into())],
    )?
    .is_empty()
    {
        return Err(ApiError::conflict(format!(
            "a user named {username:?} already exists"
        )));
    }
    db::query(
        conn,
        "INSERT INTO users (id, username, display_name, role, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
        &[
            Value::Text(id.into()),
            Value::Text(username.into()),
            Value::Text(display_name.into()),
            Value::Text(role.as_str().into()),
            Value::Integer(now),
        ],
    )?;
    db::query(
        conn,
        "INSERT INTO credentials (user_id, password_hash, password_changed_at) VALUES (?1, ?2, ?3)",
        &[
            Value::Text(id.into()),
            Value::Text(password_hash),
            Value::Integer(now),
        ],
    )?;
    Ok(())
}

/// `POST /api/auth/users`: create a user; audited and announced in one transaction.
pub fn create(ctx: &mut Ctx) -> Result<Response, ApiError> {
    let new: NewUser = input::json(ctx)?;
    validate_account(&new.username, &new.display_name, &new.password)?;
    let hash = password::hash(&new.password);
    let id = vigil_core::id::new_id();
    let now = now_millis();
    let conn = db::open()?;
    let created = db::transaction(conn, |conn| {
        insert_account(
            conn,
            &id,
            &new.username,
            &new.display_name,
            new.role,
            hash.clone(),
            now,
        )?;
        let created = User {
            id: id.clone(),
            username: new.username.clone(),
            display_name: new.display_name.clone(),
            role: new.role,
            disabled: false,
            must_change_password: false,
            created_at: vigil_core::time::rfc3339(now),
        };
        let record = serde_json::to_value(&created).expect("user serializes");
        let audited = Audited::new(ctx.audit_entry("user.created", "user", &id, now))
            .after(&record)
            .publish("user.created", record);
        audit::record(conn, &audited)?;
        Ok(created)
    })?;
    let mut response = response::json(201, &created);
    response.set_header("location", format!("/api/auth/users/{}", created.id));
    Ok(response)
}

/// The user with `id`, if there is one.
fn find(conn: &spin_sdk::sqlite::Connection, id: &str) -> Result<Option<User>, ApiError> {
    let rows = db::query(
        conn,
        &format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1"),
        &[Value::Text(id.into())],
    )?;
    Ok(rows.first().and_then(|r| user_from_row(r)))
}

pub(crate) fn load(conn: &spin_sdk::sqlite::Connection, id: &str) -> Result<User, ApiError> {
    find(conn, id)?.ok_or_else(ApiError::not_found)
}

/// `GET /api/auth/users/{id}`.
pub fn get(ctx: &mut Ctx) -> Result<Response, ApiError> {
    let conn = db::open()?;
    Ok(response::json(200, &load(conn, ctx.param("id"))?))
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    role: Option<Role>,
    /// Disabling ends every session of the user at once.
    disabled: Option<bool>,
    #[schemars(length(max = 128))]
    display_name: Option<String>,
}

/// `PATCH /api/auth/users/{id}`: role, disabled, display name. The last
/// active admin can be neither demoted nor disabled.
pub fn patch(ctx: &mut Ctx) -> Result<Response, ApiError> {
    let change: UserPatch = input::json(ctx)?;
    if change.role.is_none() && change.disabled.is_none() && change.display_name.is_none() {
        return Err(ApiError::invalid_field(
            "$",
            "nothing to change: give role, disabled or display_name",
        ));
    }
    if let Some(Err(why)) = change.display_name.as_deref().map(user::check_display_name) {
        return Err(ApiError::invalid_field("display_name", why));
    }
    let id = ctx.param("id").to_string();
    let now = now_millis();
    let conn = db::open()?;
    let updated = db::transaction(conn, |conn| {
        audit::update(
            conn,
            |conn| load(conn, &id),
            |conn, before| {
                let role = change.role.unwrap_or(before.role);
                let disabled = change.disabled.unwrap_or(before.disabled);
                let leaves_admins = before.role == Role::Admin
                    && !before.disabled
                    && (role != Role::Admin || disabled);
                if leaves_admins {
                    let others = db::query(
                        conn,
                        "SELECT count(*) FROM users WHERE role = 'admin' AND disabled = 0 AND id != ?1",
                        &[Value::Text(id.clone())],
                    )?;
                    if others.first().and_then(|r| db::int(r, 0)) == Some(0) {
                        return Err(ApiError::new(409, "last-admin", "Last admin").with_detail(
                            "this is the last active admin: make another admin first",
                        ));
                    }
                }
                if id == ctx.principal().subject
                    && (role != before.role || (disabled && !before.disabled))
                {
                    return Err(own_account("change your own role or disable yourself"));
                }
                db::query(
                    conn,
                    "UPDATE users SET role = ?2, disabled = ?3, display_name = ?4, updated_at = ?5 WHERE id = ?1",
                    &[
                        Value::Text(id.clone()),
                        Value::Text(role.as_str().into()),
                        Value::Integer(disabled.into()),
                        Value::Text(
                            change
                                .display_name
                                .clone()
                                .unwrap_or_else(|| before.display_name.clone()),
                        ),
                        Value::Integer(now),
                    ],
                )?;
                if disabled && !before.disabled {
                    crate::sessions::end_all(conn, &id, None, "user_disabled", now)?;
                } else if role != before.role {
                    // Tokens carry the role: a demoted admin must not keep admin
                    // tokens for their remaining minutes.
                    crate::sessions::end_all(conn, &id, None, "role_changed", now)?;
                }
                Ok(())
            },
            |before, after| {
                let payload = serde_json::to_value(after).expect("user serializes");
                Audited::new(ctx.audit_entry("user.updated", "user", &id, now))
                    .before(before)
                    .after(after)
                    .publish("user.updated", payload)
            },
        )
    })?;
    Ok(response::json(200, &updated))
}

#[derive(Serialize, JsonSchema)]
pub struct OneTimePassword {
    /// Give this to the user: it logs in once, and then only a new password
    /// can be chosen. Shown once.
    one_time_password: String,
    /// It stops working then (`password_reset_ttl_hours` after the reset).
    #[schemars(extend("format" = "date-time"))]
    expires_at: String,
}

/// Admins cannot lock themselves out: another admin must do it.
fn own_account(what: &str) -> ApiError {
    ApiError::new(409, "own-account", "Own account")
        .with_detail(format!("an admin cannot {what}; another admin can"))
}

/// `POST /api/auth/users/{id}/reset-password`: a one-time password that
/// expires, every session of the user ended, every lockout lifted; at their
/// next login the user can do nothing but choose a new password.
pub fn reset_password(ctx: &mut Ctx) -> Result<Response, ApiError> {
    let id = ctx.param("id").to_string();
    let ttl = crate::settings::settings()?.password_reset_ttl_ms;
    let raw = vigil_core::totp::base32(&{
        let mut bytes = [0u8; 10];
        getrandom::fill(&mut bytes).map_err(|_| ApiError::internal())?;
        bytes
    })
    .to_lowercase();
    let one_time = format!(
        "{}-{}-{}-{}",
        &raw[0..4],
        &raw[4..8],
        &raw[8..12],
        &raw[12..16]
    );
    if id == ctx.principal().subject {
        return Err(own_account(
            "reset your own password here; change it with POST /api/auth/password",
        ));
    }
    let hash = password::hash(&one_time);
    let now = now_millis();
    let expires = now + ttl;
    let conn = db::open()?;
    db::transaction(conn, |conn| {
        load(conn, &id)?;
        db::query(
            conn,
            "UPDATE credentials SET password_hash = ?2, password_changed_at = ?3, password_expires_at = ?4
              WHERE user_id = ?1",
            &[
                Value::Text(id.clone()),
                Value::Text(hash.clone()),
                Value::Integer(now),
                Value::Integer(expires),
            ],
        )?;
        let unlocked = crate::lockout::unlock(conn, &id, now)?;
        db::query(
            conn,
            "UPDATE users SET must_change_password = 1, updated_at = ?2 WHERE id = ?1",
            &[Value::Text(id.clone()), Value::Integer(now)],
        )?;
        crate::sessions::end_all(conn, &id, None, "password_reset", now)?;
        let mut entry = ctx.audit_entry("user.password_reset", "user", &id, now);
        entry.after = Some(
            serde_json::json!({"expires_at": expires, "addresses_unlocked": unlocked}).to_string(),
        );
        vigil_api::audit::append(conn, &entry)
    })?;
    Ok(response::json(
        200,
        &OneTimePassword {
            one_time_password: one_time,
            expires_at: vigil_core::time::rfc3339(expires),
        },
    ))
}

/// `POST /api/auth/users/{id}/unlock`: lift every lockout of the user (from
/// every address) and forget the account's failures; audited.
pub fn unlock(ctx: &mut Ctx) -> Result<Response, ApiError> {
    let id = ctx.param("id").to_string();
    let now = now_millis();
    let conn = db::open()?;
    db::transaction(conn, |conn| {
        load(conn, &id)?;
        let unlocked = crate::lockout::unlock(conn, &id, now)?;
        let mut entry = ctx.audit_entry("user.unlocked", "user", &id, now);
        entry.after = Some(serde_json::json!({"addresses_unlocked": unlocked}).to_string());
        vigil_api::audit::append(conn, &entry)
    })?;
    Ok(Response::builder().status(204).build())
}
