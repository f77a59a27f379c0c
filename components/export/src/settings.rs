//! The export component's variables. Only this component is given the
//! export signing key.

use vigil_api::ApiError;
use vigil_core::token::{Jwk, KeySet};
use vigil_evidence::signing::ExportSigner;

pub const EXPORT_SIGNING_KEY: &str = "export_signing_key";
pub const EXPORT_SIGNING_KID: &str = "export_signing_kid";
pub const EXPORT_PUBLIC_KEYS: &str = "export_public_keys";
pub const EXPORT_MAX_EVENTS: &str = "export_max_events";

/// The component's own variables (besides the shared ones, see the crate's `VARIABLES`).
pub const VARIABLES: &[&str] = &[
    EXPORT_SIGNING_KEY,
    EXPORT_SIGNING_KID,
    EXPORT_PUBLIC_KEYS,
    EXPORT_MAX_EVENTS,
];

fn variable(name: &str) -> Option<String> {
    debug_assert!(VARIABLES.contains(&name), "{name} is not on the list");
    spin_sdk::variables::get(name).ok()
}

/// A 503 naming the variable, logged with why (never with the value).
fn misconfigured(name: &str, why: String) -> ApiError {
    vigil_api::settings::refuse(name, &why)
}

/// `export_signing_key` (secret: base64url of the 32-byte Ed25519 seed) and
/// `export_signing_kid`. A missing or bad key is a 503, logged by name.
pub fn signer() -> Result<ExportSigner, ApiError> {
    let seed = variable(EXPORT_SIGNING_KEY)
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| misconfigured(EXPORT_SIGNING_KEY, "is not set".into()))?;
    let kid = variable(EXPORT_SIGNING_KID).unwrap_or_default();
    ExportSigner::from_seed_b64(&kid, &seed).map_err(|why| {
        misconfigured(
            EXPORT_SIGNING_KEY,
            format!("with export_signing_kid: {why}"),
        )
    })
}

/// The public keys that verify packs and heads: the current key, then the
/// earlier ones of `export_public_keys` (a JWKS document, for packs signed
/// before a rotation), without repeating a `kid`.
pub fn public_keys() -> Result<Vec<Jwk>, ApiError> {
    let mut keys = vec![signer()?.public_jwk()];
    let extra = variable(EXPORT_PUBLIC_KEYS).unwrap_or_default();
    if !extra.trim().is_empty() {
        let set = KeySet::from_jwks(&extra)
            .map_err(|why| misconfigured(EXPORT_PUBLIC_KEYS, why.to_string()))?;
        for jwk in set.jwks() {
            if keys.iter().all(|k| k.kid != jwk.kid) {
                keys.push(jwk);
            }
        }
    }
    Ok(keys)
}

/// `export_max_events` (default 100,000): larger exports are refused (413).
/// A value that is not a whole number from 1 to 100,000,000 is a 503 naming it.
pub fn max_events() -> Result<i64, ApiError> {
    let mut r = vigil_api::settings::Reader::new(VARIABLES);
    r.read(
        EXPORT_MAX_EVENTS,
        vigil_api::settings::number(1, 100_000_000),
    )
    .ok_or_else(|| r.refusal())
}

/// The refusal of an export over the limit.
pub fn too_large(what: &str, count: i64, limit: i64) -> ApiError {
    ApiError::new(413, "export-too-large", "Export too large").with_detail(format!(
        "this export holds {count} {what}; the limit is {limit} (export_max_events): narrow it down"
    ))
}
