//! The `platform` component: exports `vigil:platform/authz`. Every API
//! component is composed with it at build time, so token verification and
//! the permission table run in one place, with public keys only (never a
//! private key) from this component's variables.
//!
//! A user's access token is verified here (EdDSA, `kid`, issuer, audience,
//! expiry); an API key is parsed. What needs the database (the token's
//! session is live, the key exists and its secret matches) the caller checks
//! on the request's own connection (`vigil_api::authz`), so a request opens
//! one connection, not two.
//!
//! Variables: `jwt_public_keys` (JWKS JSON), `jwt_issuer`, `jwt_audience`.

use vigil_core::api_key;
use vigil_core::token::{self, Expectations, KeySet, TokenError};

wit_bindgen::generate!({
    world: "platform",
    path: "../../wit",
});

use exports::vigil::platform::authz::{ApiKeyParts, AuthError, Credential, Guest};

struct Platform;

fn variable(name: &str) -> Result<String, AuthError> {
    spin_sdk::variables::get(name)
        .map_err(|e| AuthError::Misconfigured(format!("variable {name} is not available: {e}")))
}

/// A user's token: algorithm, key, signature and claims.
fn verify_token(token: &str) -> Result<vigil_core::Principal, AuthError> {
    let keys = KeySet::from_jwks(&variable("jwt_public_keys")?)
        .map_err(|why| AuthError::Misconfigured(format!("jwt_public_keys: {why}")))?;
    let expect = Expectations {
        issuer: variable("jwt_issuer")?,
        audience: variable("jwt_audience")?,
    };
    let now = vigil_core::time::now_millis() / 1000;
    let claims = token::verify(token, &keys, &expect, now).map_err(auth_error)?;
    claims.principal().map_err(auth_error)
}

impl Guest for Platform {
    fn authenticate(authorization: Option<String>) -> Result<Credential, AuthError> {
        let credential = token::bearer(authorization.as_deref()).map_err(auth_error)?;
        if api_key::looks_like(credential) {
            let (prefix, secret) = api_key::parse(credential).ok_or(AuthError::InvalidApiKey)?;
            return Ok(Credential::ApiKey(ApiKeyParts {
                prefix: prefix.to_string(),
                secret: secret.to_string(),
            }));
        }
        Ok(Credential::Token(principal_to_wit(&verify_token(
            credential,
        )?)))
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
