//! The `platform` component: exports `vigil:platform/authz`. Every API
//! component is composed with it at build time, so token verification and
//! the permission table run in one place, with the public keys (never a
//! private key) from this component's variables.
//!
//! Variables: `jwt_public_keys` (JWKS JSON), `jwt_issuer`, `jwt_audience`.

use vigil_core::token::{self, Expectations, KeySet, TokenError};

wit_bindgen::generate!({
    world: "platform",
    path: "../../wit",
});

use exports::vigil::platform::authz::{AuthError, Guest};

struct Platform;

fn variable(name: &str) -> Result<String, AuthError> {
    spin_sdk::variables::get(name)
        .map_err(|e| AuthError::Misconfigured(format!("variable {name} is not available: {e}")))
}

fn now_secs() -> i64 {
    vigil_core::time::now_millis() / 1000
}

impl Guest for Platform {
    fn authenticate(authorization: Option<String>) -> Result<wit_types::Principal, AuthError> {
        let token = token::bearer(authorization.as_deref()).map_err(auth_error)?;
        let keys = KeySet::from_jwks(&variable("jwt_public_keys")?)
            .map_err(|why| AuthError::Misconfigured(format!("jwt_public_keys: {why}")))?;
        let expect = Expectations {
            issuer: variable("jwt_issuer")?,
            audience: variable("jwt_audience")?,
        };
        let claims = token::verify(token, &keys, &expect, now_secs()).map_err(auth_error)?;
        let principal = claims.principal().map_err(auth_error)?;
        Ok(principal_to_wit(&principal))
    }

    fn authorize(who: wit_types::Principal, needed: wit_types::Permission) -> bool {
        principal_from_wit(who).may(permission_from_wit(needed))
    }
}

fn auth_error(e: TokenError) -> AuthError {
    match e {
        TokenError::Missing => AuthError::Missing,
        TokenError::Malformed(why) => AuthError::Malformed(why),
        TokenError::UnsupportedAlgorithm(alg) => AuthError::UnsupportedAlgorithm(alg),
        TokenError::UnknownKey => AuthError::UnknownKey,
        TokenError::BadSignature => AuthError::BadSignature,
        TokenError::Expired => AuthError::Expired,
        TokenError::InvalidClaims(why) => AuthError::InvalidClaims(why),
    }
}

vigil_core::wit_conversions!(exports::vigil::platform::types);

export!(Platform);
