//! The `vigil:platform/authz` import. The component is composed with the
//! `platform` component at build time (`cargo xtask build`), which verifies
//! tokens and keeps the permission table; this module finishes what needs
//! the database on the request's own connection (the token's session is
//! live; the API key exists, is not revoked, and its secret matches) and
//! converts to and from `vigil-core`.

use spin_sdk::sqlite::Value;
use vigil_core::{ApiError, Permission, Principal, api_key};

use crate::db;

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

/// A verified token's principal, if its session is live: not ended (logout,
/// reuse detection, a password change), not expired, and its user enabled.
fn live_session(principal: Principal) -> Result<Principal, ApiError> {
    let Some(session) = &principal.session else {
        return Ok(principal);
    };
    let rows = db::query(
        db::open()?,
        "SELECT 1 FROM sessions s JOIN users u ON u.id = s.user_id
         WHERE s.id = ?1 AND s.user_id = ?2 AND s.revoked_at IS NULL
           AND s.expires_at > ?3 AND u.disabled = 0",
        &[
            Value::Text(session.clone()),
            Value::Text(principal.subject.clone()),
            Value::Integer(vigil_core::time::now_millis()),
        ],
    )?;
    if rows.is_empty() {
        return Err(refusal(AuthError::SessionEnded));
    }
    Ok(principal)
}

/// The principal of an API key: looked up by prefix, compared by hash.
fn api_key_principal(key: &ApiKeyParts) -> Result<Principal, ApiError> {
    let rows = db::query(
        db::open()?,
        "SELECT id, secret_hash, scopes FROM api_keys WHERE prefix = ?1 AND revoked_at IS NULL",
        &[Value::Text(key.prefix.clone())],
    )?;
    rows.first()
        .and_then(|row| Some((db::text(row, 0)?, db::text(row, 1)?, db::text(row, 2)?)))
        .filter(|(_, hash, _)| api_key::secret_matches(&key.secret, hash))
        .and_then(|(id, _, scopes)| api_key::principal(&id, &scopes))
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
