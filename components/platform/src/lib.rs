//! The `platform` component: exports `vigil:platform/authz`. Every API
//! component is composed with it at build time, so authentication and the
//! permission table run in one place, with public keys only (never a
//! private key) from this component's variables.
//!
//! A user's access token is verified (EdDSA, `kid`, issuer, audience,
//! expiry) and its session checked in the database, so an ended session
//! stops its tokens at once; an API key is looked up by prefix and its
//! secret compared by hash. Either way: one statement per request.
//!
//! Variables: `jwt_public_keys` (JWKS JSON), `jwt_issuer`, `jwt_audience`.

use spin_sdk::sqlite::{Connection, Value};
use vigil_core::api_key;
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

fn now_millis() -> i64 {
    vigil_core::time::now_millis()
}

fn query(sql: &str, params: &[Value]) -> Result<Vec<Vec<Value>>, AuthError> {
    let unavailable = |e: spin_sdk::sqlite::Error| AuthError::Unavailable(format!("{e:?}"));
    let conn = Connection::open_default().map_err(unavailable)?;
    let result = conn.execute(sql, params).map_err(unavailable)?;
    Ok(result.rows.into_iter().map(|r| r.values).collect())
}

/// A user's token: signature and claims, then its session.
fn authenticate_token(token: &str) -> Result<vigil_core::Principal, AuthError> {
    let keys = KeySet::from_jwks(&variable("jwt_public_keys")?)
        .map_err(|why| AuthError::Misconfigured(format!("jwt_public_keys: {why}")))?;
    let expect = Expectations {
        issuer: variable("jwt_issuer")?,
        audience: variable("jwt_audience")?,
    };
    let claims = token::verify(token, &keys, &expect, now_millis() / 1000).map_err(auth_error)?;
    let principal = claims.principal().map_err(auth_error)?;
    if let Some(session) = &principal.session {
        let live = query(
            "SELECT 1 FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.id = ?1 AND s.user_id = ?2 AND s.revoked_at IS NULL
               AND s.expires_at > ?3 AND u.disabled = 0",
            &[
                Value::Text(session.clone()),
                Value::Text(principal.subject.clone()),
                Value::Integer(now_millis()),
            ],
        )?;
        if live.is_empty() {
            return Err(AuthError::SessionEnded);
        }
    }
    Ok(principal)
}

/// An API key: `vgk_<prefix>_<secret>`, looked up by prefix, compared by hash.
fn authenticate_api_key(presented: &str) -> Result<vigil_core::Principal, AuthError> {
    let (prefix, secret) = api_key::parse(presented).ok_or(AuthError::InvalidApiKey)?;
    let rows = query(
        "SELECT id, secret_hash, scopes FROM api_keys WHERE prefix = ?1 AND revoked_at IS NULL",
        &[Value::Text(prefix.to_string())],
    )?;
    let row = rows.first().ok_or(AuthError::InvalidApiKey)?;
    let (Some(Value::Text(id)), Some(Value::Text(hash)), Some(Value::Text(scopes))) =
        (row.first(), row.get(1), row.get(2))
    else {
        return Err(AuthError::InvalidApiKey);
    };
    if !api_key::secret_matches(secret, hash) {
        return Err(AuthError::InvalidApiKey);
    }
    api_key::principal(id, scopes).ok_or(AuthError::InvalidApiKey)
}

impl Guest for Platform {
    fn authenticate(authorization: Option<String>) -> Result<wit_types::Principal, AuthError> {
        let credential = token::bearer(authorization.as_deref()).map_err(auth_error)?;
        let principal = if api_key::looks_like(credential) {
            authenticate_api_key(credential)?
        } else {
            authenticate_token(credential)?
        };
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
