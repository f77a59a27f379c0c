//! The `auth` component's variables: the private signing key (only this
//! component holds it), token issuer and audience, the session cap.

use vigil_api::ApiError;
use vigil_core::token::TokenSigner;

pub struct Signing {
    pub signer: TokenSigner,
    pub issuer: String,
    pub audience: String,
}

fn variable(name: &str) -> Result<String, ApiError> {
    spin_sdk::variables::get(name).map_err(|e| {
        vigil_api::log::line(serde_json::json!({"level": "error", "msg": "variable unavailable", "variable": name, "error": e.to_string()}));
        ApiError::internal()
    })
}

/// The signing key (`jwt_signing_key`, a base64url Ed25519 seed) with its `kid`.
pub fn signing() -> Result<Signing, ApiError> {
    let kid = variable("jwt_signing_kid")?;
    let signer = TokenSigner::from_seed_b64(&kid, &variable("jwt_signing_key")?).map_err(|why| {
        // `why` describes the shape of the value, never the value.
        vigil_api::log::line(serde_json::json!({"level": "error", "msg": "jwt_signing_key is invalid", "why": why}));
        ApiError::internal()
    })?;
    Ok(Signing {
        signer,
        issuer: variable("jwt_issuer")?,
        audience: variable("jwt_audience")?,
    })
}

/// At most this many live sessions per user (`max_sessions_per_user`, default 5).
pub fn max_sessions() -> i64 {
    variable("max_sessions_per_user")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .filter(|n| *n >= 1)
        .unwrap_or(5)
}

/// Whether `role` must use 2FA (`mfa_required_roles`: comma-separated roles, default none).
pub fn mfa_required(role: vigil_core::Role) -> bool {
    variable("mfa_required_roles")
        .map(|list| list.split(',').any(|r| r.trim() == role.as_str()))
        .unwrap_or(false)
}
