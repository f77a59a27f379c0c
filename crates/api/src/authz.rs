//! The `vigil:platform/authz` import. The component is composed with the
//! `platform` component at build time (`cargo xtask build`), which verifies
//! tokens and keeps the permission table; this module finishes what needs
//! the database on the request's own connection (the token's session is
//! live; the API key exists, is not revoked, and its secret matches) and
//! converts to and from `vigil-core`.

use vigil_core::{ApiError, Permission, Principal, api_key, login};

use crate::db::{self, SpinSql, ready};

wit_bindgen::generate!({
    world: "api",
    path: "../../wit",
});

use vigil::platform::authz::{self, ApiKeyParts, AuthError, Credential};

/// Authenticate an `Authorization` header value; a failure is a ready 401
/// problem (503 when the database cannot be asked, 500 when the key set is
/// misconfigured). One statement on the happy path.
pub fn authenticate(header: Option<&str>) -> Result<Principal, ApiError> {
    match authz::authenticate(header).map_err(refusal)? {
        Credential::Token(p) => live_session(principal_from_wit(p)),
        Credential::ApiKey(key) => api_key_principal(&key),
    }
}

/// The problem for a credential that is refused.
fn refusal(e: AuthError) -> ApiError {
    match e {
        AuthError::Misconfigured(why) => {
            crate::log::line(
                serde_json::json!({"level": "error", "msg": "authz misconfigured", "why": why}),
            );
            ApiError::internal()
        }
        e => ApiError::unauthenticated(describe(&e)),
    }
}

/// A verified token's principal, if its session is live. A token that
/// names no session (`sid`) is refused: it could not be ended by logout,
/// a password change or a role change.
fn live_session(principal: Principal) -> Result<Principal, ApiError> {
    let Some(session) = &principal.session else {
        return Err(refusal(AuthError::InvalidClaims(
            "it names no session (sid); log in again".into(),
        )));
    };
    let now = vigil_core::time::now_millis();
    let db = SpinSql(db::open()?);
    if !ready(login::session_is_live(
        &db,
        session,
        &principal.subject,
        now,
    ))? {
        return Err(refusal(AuthError::SessionEnded));
    }
    Ok(principal)
}

/// The principal of an API key: looked up by prefix, compared by hash.
fn api_key_principal(key: &ApiKeyParts) -> Result<Principal, ApiError> {
    let db = SpinSql(db::open()?);
    ready(api_key::authenticate(&db, &key.prefix, &key.secret))?
        .ok_or_else(|| refusal(AuthError::InvalidApiKey))
}

/// Ask `platform` whether the principal holds the permission.
pub fn authorize(who: &Principal, needed: Permission) -> bool {
    authz::authorize(&principal_to_wit(who), permission_to_wit(needed))
}

fn describe(e: &AuthError) -> String {
    match e {
        AuthError::Missing => "send an access token as `Authorization: Bearer <token>`".into(),
        AuthError::Malformed(why) => format!("the access token is malformed: {why}"),
        AuthError::UnsupportedAlgorithm(alg) => {
            format!("the access token's algorithm {alg:?} is not accepted")
        }
        AuthError::UnknownKey => "the access token was signed by an unknown key".into(),
        AuthError::BadSignature => "the access token's signature is invalid".into(),
        AuthError::Expired => "the access token has expired".into(),
        AuthError::InvalidClaims(why) => format!("the access token's claims are invalid: {why}"),
        AuthError::SessionEnded => {
            "the session of this access token has ended; log in again".into()
        }
        AuthError::InvalidApiKey => "the API key is unknown, malformed or revoked".into(),
        AuthError::Misconfigured(_) => "authentication is unavailable".into(),
    }
}

vigil_core::wit_conversions!(vigil::platform::types);
