//! The export component's variables. Only this component is given the
//! export signing key.

use vigil_api::ApiError;
use vigil_core::token::{Jwk, KeySet};
use vigil_evidence::signing::ExportSigner;

fn variable(name: &str) -> Option<String> {
    spin_sdk::variables::get(name).ok()
}

fn misconfigured(what: String) -> ApiError {
    vigil_api::log::line(
        serde_json::json!({"level": "error", "msg": "export signing is misconfigured", "why": what}),
    );
    ApiError::unavailable("evidence signing is not configured; see the server log")
}

/// `export_signing_key` (secret: base64url of the 32-byte Ed25519 seed) and
/// `export_signing_kid`. A missing or bad key is a 503, logged by name.
pub fn signer() -> Result<ExportSigner, ApiError> {
    let seed = variable("export_signing_key")
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| misconfigured("export_signing_key is not set".into()))?;
    let kid = variable("export_signing_kid").unwrap_or_default();
    ExportSigner::from_seed_b64(&kid, &seed)
        .map_err(|why| misconfigured(format!("export_signing_key/export_signing_kid: {why}")))
}

/// The public keys that verify packs and heads: the current key, then the
/// earlier ones of `export_public_keys` (a JWKS document, for packs signed
/// before a rotation), without repeating a `kid`.
pub fn public_keys() -> Result<Vec<Jwk>, ApiError> {
    let mut keys = vec![signer()?.public_jwk()];
    let extra = variable("export_public_keys").unwrap_or_default();
    if !extra.trim().is_empty() {
        let set = KeySet::from_jwks(&extra)
            .map_err(|why| misconfigured(format!("export_public_keys: {why}")))?;
        for jwk in set.jwks() {
            if keys.iter().all(|k| k.kid != jwk.kid) {
                keys.push(jwk);
            }
        }
    }
    Ok(keys)
}

/// `export_max_events` (default 100,000): larger exports are refused (413).
pub fn max_events() -> i64 {
    variable("export_max_events")
        .and_then(|v| v.trim().parse::<i64>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(100_000)
}

/// The refusal of an export over the limit.
pub fn too_large(what: &str, count: i64, limit: i64) -> ApiError {
    ApiError::new(413, "export-too-large", "Export too large").with_detail(format!(
        "this export holds {count} {what}; the limit is {limit} (export_max_events): narrow it down"
    ))
}
