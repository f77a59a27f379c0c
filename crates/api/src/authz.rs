//! The `vigil:platform/authz` import. The component is composed with the
//! `platform` component at build time (`cargo xtask build`), which supplies
//! the implementation; this module only converts to and from `vigil-core`.

use vigil_core::{ApiError, Permission, Principal};

wit_bindgen::generate!({
    world: "api",
    path: "../../wit",
});

use vigil::platform::authz::{self, AuthError};

/// Authenticate an `Authorization` header value; a failure is a ready 401
/// problem (or 500 when the key set is misconfigured).
pub fn authenticate(header: Option<&str>) -> Result<Principal, ApiError> {
    match authz::authenticate(header) {
        Ok(p) => Ok(principal_from_wit(p)),
        Err(AuthError::Unavailable(why)) => {
            eprintln!(
                "{}",
                serde_json::json!({"level": "error", "msg": "database error", "database": "default", "during": "authentication", "error": why})
            );
            Err(ApiError::unavailable("the database is unavailable"))
        }
        Err(AuthError::Misconfigured(why)) => {
            eprintln!(
                "{}",
                serde_json::json!({"level": "error", "msg": "authz misconfigured", "why": why})
            );
            Err(ApiError::internal())
        }
        Err(e) => Err(ApiError::unauthenticated(describe(&e))),
    }
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
        AuthError::Misconfigured(_) | AuthError::Unavailable(_) => {
            "authentication is unavailable".into()
        }
    }
}

vigil_core::wit_conversions!(vigil::platform::types);
