//! The `auth` component (`/api/auth/...`): identities and tokens.
//!
//! - [`cookie`]: browser sessions, the refresh token in an `HttpOnly` cookie.
//! - [`login`]: login (throttle, identical failures), refresh with
//!   rotation and reuse detection, logout, password change.
//! - [`lockout`]: failures per (account, address), the account-wide
//!   slowdown, the per-address throttles, unlocking.
//! - [`input`]: request bodies held to their documented limits.
//! - [`sessions`]: sessions and refresh tokens; listing and ending them.
//! - [`users`]: the caller's identity; users for admins (last-admin rule).
//! - [`keys`]: API keys for sensors and services.
//! - [`settings`]: this component's variables (the signing key lives here only).
//!
//! - [`mfa`]: TOTP 2FA: enrolment, confirmation, recovery codes, the login's second step.
//!
//! - [`invitations`]: invitations to a role, and registering with one.

mod account;
mod cookie;
mod input;
mod invitations;
mod keys;
mod lockout;
mod login;
mod mfa;
mod sessions;
mod settings;
mod users;

use sessions::Tokens;
pub use settings::VARIABLES;
use spin_sdk::http::Response;
use vigil_api::router::{DEFAULT_BODY_LIMIT, Reply, schema_of};
use vigil_api::{Access, ApiError, Component, Ctx, Permission, Route, health};
use vigil_core::Pending;
use vigil_core::token::{JwksDocument, KeySet, jwks_json};

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
        Route::new("POST", "/api/auth/login", Access::Public, login::login)
            .summary("Log in with username and password; a failure never says why")
            .request(schema_of::<login::LoginRequest>)
            .replies(&[Reply::json(
                200,
                "Tokens for a new session",
                schema_of::<Tokens>,
            )])
            .errors(&[401, 429, 503]),
        Route::new("POST", "/api/auth/login/mfa", Access::Public, mfa::login)
            .summary(
                "The second step of a login with 2FA: the challenge and a code or recovery code",
            )
            .request(schema_of::<mfa::MfaLogin>)
            .replies(&[Reply::json(
                200,
                "Tokens for a new session",
                schema_of::<Tokens>,
            )])
            .errors(&[401, 503]),
        Route::new(
            "POST",
            "/api/auth/mfa/enroll",
            Access::Authenticated,
            mfa::enroll,
        )
        .summary("Start 2FA enrolment, or replace the authenticator: needs the current password (and a current code when 2FA is on); a new secret, its otpauth URI and QR code")
        .request(schema_of::<mfa::Enroll>)
        .replies(&[Reply::json(
            200,
            "The secret to enter in an authenticator app",
            schema_of::<mfa::Enrolment>,
        )])
        .errors(&[400, 404, 409, 429, 503])
        .open_while(&[Pending::MfaEnrolment]),
        Route::new(
            "POST",
            "/api/auth/mfa/confirm",
            Access::Authenticated,
            mfa::confirm,
        )
        .summary("Turn 2FA on with the authenticator's first code; returns recovery codes")
        .request(schema_of::<mfa::Confirm>)
        .replies(&[Reply::json(
            200,
            "Ten one-time recovery codes, shown once",
            schema_of::<mfa::RecoveryCodes>,
        )])
        .errors(&[400, 404, 409, 503])
        .open_while(&[Pending::MfaEnrolment]),
        Route::new(
            "POST",
            "/api/auth/mfa/disable",
            Access::Authenticated,
            mfa::disable,
        )
        .summary("Turn 2FA off with the password and a current code; failures count towards the lockout")
        .request(schema_of::<mfa::Disable>)
        .replies(&[NO_CONTENT])
        .errors(&[400, 404, 409, 429, 503]),
        Route::new("POST", "/api/auth/refresh", Access::Public, login::refresh)
            .summary("Exchange a refresh token (or, without one, the `vigil_refresh` cookie with the `X-Vigil-CSRF` header) for new tokens; reuse ends the session")
            .request(schema_of::<login::RefreshRequest>)
            .replies(&[Reply::json(
                200,
                "New tokens; the old refresh token is dead",
                schema_of::<Tokens>,
            )])
            .errors(&[401, 403, 503]),
        Route::new(
            "POST",
            "/api/auth/logout",
            Access::Authenticated,
            login::logout,
        )
        .summary("End the session of this access token")
        .replies(&[NO_CONTENT])
        .errors(&[400, 503])
        .open_while(&Pending::ALL),
        Route::new(
            "POST",
            "/api/auth/password",
            Access::Authenticated,
            login::change_password,
        )
        .summary("Change one's own password; every other session ends; a wrong current password counts towards the lockout")
        .request(schema_of::<login::PasswordChange>)
        .replies(&[NO_CONTENT])
        .errors(&[400, 404, 429, 503])
        .open_while(&[Pending::PasswordChange]),
        Route::new("GET", "/api/auth/me", Access::Authenticated, users::me)
            .summary("The caller's identity, role, permissions and user record")
            .replies(&[Reply::json(
                200,
                "Who the access token belongs to",
                schema_of::<users::Me>,
            )])
            .errors(&[503])
            .open_while(&Pending::ALL),
        Route::new(
            "GET",
            "/api/auth/sessions",
            Access::Authenticated,
            sessions::list,
        )
        .summary("Live sessions: one's own, or with `user_id` (admin) anyone's")
        .replies(&[Reply::json(
            200,
            "Newest first",
            schema_of::<sessions::SessionList>,
        )])
        .errors(&[403, 503]),
        Route::new(
            "DELETE",
            "/api/auth/sessions/{id}",
            Access::Authenticated,
            sessions::delete,
        )
        .summary("End a session: one's own, or (admin) anyone's")
        .replies(&[NO_CONTENT])
        .errors(&[404, 503]),
        Route::new(
            "GET",
            "/api/auth/users",
            Access::Needs(Permission::UsersManage),
            users::list,
        )
        .summary("List users")
        .replies(&[Reply::json(
            200,
            "All users, by username",
            schema_of::<users::UserList>,
        )])
        .errors(&[503]),
        Route::new(
            "POST",
            "/api/auth/users",
            Access::Needs(Permission::UsersManage),
            users::create,
        )
        .summary("Create a user; audited (`user.created`) and published in one transaction")
        .request(schema_of::<users::NewUser>)
        .replies(&[Reply::json(
            201,
            "Created; `Location` names the user",
            schema_of::<users::User>,
        )])
        .errors(&[409, 503]),
        Route::new(
            "GET",
            "/api/auth/users/{id}",
            Access::Needs(Permission::UsersManage),
            users::get,
        )
        .summary("One user")
        .replies(&[Reply::json(200, "The user", schema_of::<users::User>)])
        .errors(&[404, 503]),
        Route::new(
            "PATCH",
            "/api/auth/users/{id}",
            Access::Needs(Permission::UsersManage),
            users::patch,
        )
        .summary(
            "Change a user's role, disabled flag or display name; disabling ends their sessions",
        )
        .request(schema_of::<users::UserPatch>)
        .replies(&[Reply::json(
            200,
            "The user as changed",
            schema_of::<users::User>,
        )])
        .errors(&[404, 409, 503]),
        Route::new(
            "POST",
            "/api/auth/api-keys",
            Access::Needs(Permission::ApiKeysManage),
            keys::create,
        )
        .summary("Create an API key for a sensor or service, its scopes limited by kind, optionally expiring; the secret is shown once")
        .request(schema_of::<keys::NewKey>)
        .replies(&[Reply::json(
            201,
            "The key, with its secret",
            schema_of::<keys::CreatedKey>,
        )])
        .errors(&[503]),
        Route::new(
            "GET",
            "/api/auth/api-keys",
            Access::Needs(Permission::ApiKeysManage),
            keys::list,
        )
        .summary("Live API keys, without secrets")
        .replies(&[Reply::json(200, "The keys", schema_of::<keys::KeyList>)])
        .errors(&[503]),
        Route::new(
            "DELETE",
            "/api/auth/api-keys/{id}",
            Access::Needs(Permission::ApiKeysManage),
            keys::revoke,
        )
        .summary("Revoke an API key; it stops working at once")
        .replies(&[NO_CONTENT])
        .errors(&[404, 503]),
        Route::new(
            "POST",
            "/api/auth/users/{id}/reset-password",
            Access::Needs(Permission::UsersManage),
            users::reset_password,
        )
        .summary("Reset a user's password: a one-time password that expires, sessions ended, lockouts lifted, a new password forced at next login")
        .replies(&[Reply::json(200, "The one-time password, shown once", schema_of::<users::OneTimePassword>)])
        .errors(&[404, 409, 503]),
        Route::new(
            "POST",
            "/api/auth/users/{id}/unlock",
            Access::Needs(Permission::UsersManage),
            users::unlock,
        )
        .summary("Lift every lockout of a user, from every address")
        .replies(&[NO_CONTENT])
        .errors(&[404, 503]),
        Route::new(
            "POST",
            "/api/auth/invitations",
            Access::Needs(Permission::UsersManage),
            invitations::create,
        )
        .summary("Invite someone to a role; the token is shown once and registers one account")
        .request(schema_of::<invitations::NewInvitation>)
        .replies(&[Reply::json(
            201,
            "The invitation, with its token",
            schema_of::<invitations::Invitation>,
        )])
        .errors(&[503]),
        Route::new(
            "GET",
            "/api/auth/invitations",
            Access::Needs(Permission::UsersManage),
            invitations::list,
        )
        .summary("The latest 200 invitations with their state, never their tokens")
        .replies(&[Reply::json(
            200,
            "Newest first",
            schema_of::<invitations::InvitationList>,
        )])
        .errors(&[503]),
        Route::new(
            "DELETE",
            "/api/auth/invitations/{id}",
            Access::Needs(Permission::UsersManage),
            invitations::revoke,
        )
        .summary("Revoke an unused invitation (a used one is 409)")
        .replies(&[NO_CONTENT])
        .errors(&[404, 409, 503]),
        Route::new(
            "POST",
            "/api/auth/register",
            Access::Public,
            invitations::register,
        )
        .summary("Create the invited account (the invitation is then used up); throttled per address")
        .request(schema_of::<invitations::Registration>)
        .replies(&[Reply::json(201, "The new user", schema_of::<users::User>)])
        .errors(&[401, 409, 429, 503]),
    ],
    body_limit: DEFAULT_BODY_LIMIT,
};

const NO_CONTENT: Reply = Reply {
    status: 204,
    description: "Done",
    content_type: "",
    schema: None,
};

#[cfg(target_arch = "wasm32")]
#[spin_sdk::http_component]
async fn handle(req: spin_sdk::http::IncomingRequest, out: spin_sdk::http::ResponseOutparam) {
    vigil_api::send(vigil_api::serve(&COMPONENT, req).await, out).await
}

/// The configured public keys, re-serialized so only public fields leave.
fn jwks(_ctx: &mut Ctx) -> Result<Response, ApiError> {
    let raw = spin_sdk::variables::get("jwt_public_keys").map_err(|_| ApiError::internal())?;
    let keys = KeySet::from_jwks(&raw).map_err(|why| {
        vigil_api::log::line(
            serde_json::json!({"level": "error", "msg": "jwt_public_keys is invalid", "why": why}),
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
