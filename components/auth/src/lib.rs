//! The `auth` component (`/api/auth/...`): identities and tokens.
//!
//! Foundation scope: health, the public-key set (JWKS) that verifies access
//! tokens, the caller's own identity, and listing and creating users (admin).
//! Login, refresh, 2FA and the rest of user management build on this.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use spin_sdk::http::Response;
use spin_sdk::sqlite::Value;
use vigil_api::router::{DEFAULT_BODY_LIMIT, Reply, schema_of};
use vigil_api::{Access, ApiError, Component, Ctx, Permission, Route, db, health, response};
use vigil_core::token::{JwksDocument, KeySet, jwks_json};
use vigil_core::{FieldError, Role, password, time::now_millis, user};

pub static COMPONENT: Component = Component {
    name: "auth",
    version: env!("CARGO_PKG_VERSION"),
    routes: &[
        health::route("/api/auth/health"),
        Route::new("GET", "/api/auth/jwks.json", Access::Public, jwks)
            .summary("The public keys that verify access tokens (JWKS)")
            .replies(&[Reply {
                status: 200,
                description: "The key set: current key and, during a rotation, the previous one",
                content_type: "application/jwk-set+json",
                schema: Some(schema_of::<JwksDocument>),
            }]),
        Route::new("GET", "/api/auth/me", Access::Authenticated, me)
            .summary("The caller's identity, role, permissions and user record")
            .replies(&[Reply::json(
                200,
                "Who the access token belongs to",
                schema_of::<Me>,
            )])
            .errors(&[503]),
        Route::new(
            "GET",
            "/api/auth/users",
            Access::Needs(Permission::UsersManage),
            list_users,
        )
        .summary("List users")
        .replies(&[Reply::json(
            200,
            "All users, by username",
            schema_of::<UserList>,
        )])
        .errors(&[503]),
        Route::new(
            "POST",
            "/api/auth/users",
            Access::Needs(Permission::UsersManage),
            create_user,
        )
        .summary("Create a user; audited (`user.created`) and published in one transaction")
        .request(schema_of::<NewUser>)
        .replies(&[Reply::json(
            201,
            "Created; `Location` names the user",
            schema_of::<User>,
        )])
        .errors(&[409, 503]),
    ],
    body_limit: DEFAULT_BODY_LIMIT,
};

#[cfg(target_arch = "wasm32")]
#[spin_sdk::http_component]
async fn handle(req: spin_sdk::http::IncomingRequest) -> Response {
    vigil_api::serve(&COMPONENT, req).await
}

/// The configured public keys, re-serialized so only public fields leave.
fn jwks(_ctx: &mut Ctx) -> Result<Response, ApiError> {
    let raw = spin_sdk::variables::get("jwt_public_keys").map_err(|_| ApiError::internal())?;
    let keys = KeySet::from_jwks(&raw).map_err(|why| {
        eprintln!(
            "{}",
            serde_json::json!({"level": "error", "msg": "jwt_public_keys is invalid", "why": why})
        );
        ApiError::internal()
    })?;
    let body = jwks_json(&keys.jwks());
    Ok(Response::builder()
        .status(200)
        .header("content-type", "application/jwk-set+json")
        .header("cache-control", "public, max-age=300")
        .body(body)
        .build())
}

#[derive(Serialize, JsonSchema)]
struct Me {
    subject: String,
    /// `user` or `api_key`.
    kind: &'static str,
    role: Option<Role>,
    /// Every permission the caller holds, by wire name.
    permissions: Vec<&'static str>,
    /// The user record, for users that exist in the database.
    user: Option<User>,
}

#[derive(Serialize, JsonSchema)]
struct UserList {
    users: Vec<User>,
}

#[derive(Serialize, JsonSchema)]
struct User {
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

const USER_COLUMNS: &str =
    "id, username, display_name, role, disabled, must_change_password, created_at";

fn user_from_row(row: &[Value]) -> Option<User> {
    let text = |i: usize| match row.get(i) {
        Some(Value::Text(s)) => Some(s.clone()),
        _ => None,
    };
    let int = |i: usize| match row.get(i) {
        Some(Value::Integer(n)) => Some(*n),
        _ => None,
    };
    Some(User {
        id: text(0)?,
        username: text(1)?,
        display_name: text(2)?,
        role: Role::parse(&text(3)?)?,
        disabled: int(4)? != 0,
        must_change_password: int(5)? != 0,
        created_at: vigil_core::time::rfc3339(int(6)?),
    })
}

fn me(ctx: &mut Ctx) -> Result<Response, ApiError> {
    let who = ctx.principal();
    let user = match who.role {
        Some(_) => {
            let conn = db::open()?;
            let rows = db::query(
                &conn,
                &format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1"),
                &[Value::Text(who.subject.clone())],
            )?;
            rows.first().and_then(|r| user_from_row(r))
        }
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

fn list_users(_ctx: &mut Ctx) -> Result<Response, ApiError> {
    let conn = db::open()?;
    let rows = db::query(
        &conn,
        &format!("SELECT {USER_COLUMNS} FROM users ORDER BY username"),
        &[],
    )?;
    let users: Vec<User> = rows.iter().filter_map(|r| user_from_row(r)).collect();
    Ok(response::json(200, &UserList { users }))
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct NewUser {
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

impl NewUser {
    /// Every violated rule, each naming its field.
    fn validate(&self) -> Result<(), ApiError> {
        let mut errors = Vec::new();
        let mut check = |field: &str, result: Result<(), String>| {
            if let Err(message) = result {
                errors.push(FieldError {
                    field: field.into(),
                    message,
                });
            }
        };
        check(
            "username",
            user::check_username(&self.username).map_err(String::from),
        );
        check(
            "display_name",
            user::check_display_name(&self.display_name).map_err(String::from),
        );
        check(
            "password",
            password::check_policy(&self.password)
                .map(drop)
                .map_err(|e| e.to_string()),
        );
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::validation(errors))
        }
    }
}

/// `POST /api/auth/users`: create a user; audited and announced in one transaction.
fn create_user(ctx: &mut Ctx) -> Result<Response, ApiError> {
    let new: NewUser = ctx.json()?;
    new.validate()?;
    let hash = password::hash(&new.password);
    let id = vigil_core::id::new_id();
    let now = now_millis();
    let conn = db::open()?;
    let created = db::transaction(&conn, |conn| {
        let taken = db::query(
            conn,
            "SELECT 1 FROM users WHERE username = ?1",
            &[Value::Text(new.username.clone())],
        )?;
        if !taken.is_empty() {
            return Err(ApiError::conflict(format!(
                "a user named {:?} already exists",
                new.username
            )));
        }
        db::query(
            conn,
            "INSERT INTO users (id, username, display_name, role, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
            &[
                Value::Text(id.clone()),
                Value::Text(new.username.clone()),
                Value::Text(new.display_name.clone()),
                Value::Text(new.role.as_str().into()),
                Value::Integer(now),
            ],
        )?;
        db::query(
            conn,
            "INSERT INTO credentials (user_id, password_hash, password_changed_at) VALUES (?1, ?2, ?3)",
            &[
                Value::Text(id.clone()),
                Value::Text(hash),
                Value::Integer(now),
            ],
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
        let mut entry = ctx.audit_entry("user.created", "user", &id, now);
        entry.after = Some(record.to_string());
        vigil_api::audit::append(conn, &entry)?;
        vigil_api::audit::publish(conn, "user.created", &record, now)?;
        Ok(created)
    })?;
    let mut response = response::json(201, &created);
    response.set_header("location", format!("/api/auth/users/{}", created.id));
    Ok(response)
}
