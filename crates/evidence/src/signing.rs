//! The export signing key: an Ed25519 key with its `kid`, held only by the
//! `export` component (the `export_signing_key` variable, base64url of its
//! 32-byte seed). It signs pack manifests (raw signatures) and the audit
//! log's head (a compact JWS); anyone verifies both offline with the public
//! keys the component serves as a JWKS document.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ed25519_dalek::{Signature, Signer, SigningKey};
use serde::Serialize;
use vigil_core::token::{Jwk, KeySet};

/// A private signing key with its `kid`. Does not print its secret.
pub struct ExportSigner {
    kid: String,
    key: SigningKey,
}

impl std::fmt::Debug for ExportSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExportSigner")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl ExportSigner {
    /// From the 32-byte seed, base64url encoded (how the variable holds it).
    pub fn from_seed_b64(kid: &str, seed: &str) -> Result<ExportSigner, String> {
        if kid.trim().is_empty() {
            return Err("the signing key's kid is empty".into());
        }
        let raw = B64
            .decode(seed.trim())
            .map_err(|_| "the signing key is not base64url".to_string())?;
        let raw: [u8; 32] = raw
            .try_into()
            .map_err(|_| "the signing key is not 32 bytes".to_string())?;
        Ok(ExportSigner {
            kid: kid.trim().to_string(),
            key: SigningKey::from_bytes(&raw),
        })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public half as a JWKS entry.
    pub fn public_jwk(&self) -> Jwk {
        Jwk {
            kty: "OKP".into(),
            crv: "Ed25519".into(),
            kid: self.kid.clone(),
            x: B64.encode(self.key.verifying_key().to_bytes()),
            alg: Some("EdDSA".into()),
            use_: Some("sig".into()),
        }
    }

    /// base64url (no padding) of the 64-byte signature over `message`.
    pub fn sign(&self, message: &[u8]) -> String {
        B64.encode(self.key.sign(message).to_bytes())
    }

    /// A compact JWS (`alg: EdDSA`, this key's `kid`) over `payload`'s JSON.
    pub fn sign_jws<T: Serialize>(&self, payload: &T) -> String {
        let header =
            serde_json::json!({"alg": "EdDSA", "kid": self.kid, "typ": "vigil-audit-head+jwt"});
        let input = format!(
            "{}.{}",
            B64.encode(header.to_string()),
            B64.encode(serde_json::to_vec(payload).expect("payload serializes"))
        );
        let signature = self.key.sign(input.as_bytes());
        format!("{input}.{}", B64.encode(signature.to_bytes()))
    }
}

/// Check `signature` (base64url of 64 bytes) over `message` with the key
/// `kid` of `keys`; the error says what failed.
pub fn verify(keys: &KeySet, kid: &str, message: &[u8], signature: &str) -> Result<(), String> {
    let key = keys
        .get(kid)
        .ok_or_else(|| format!("no public key with kid {kid:?} in the key set"))?;
    let raw = B64
        .decode(signature.trim())
        .map_err(|_| "the signature is not base64url".to_string())?;
    let raw: [u8; 64] = raw
        .try_into()
        .map_err(|_| "the signature is not 64 bytes".to_string())?;
    key.verify_strict(message, &Signature::from_bytes(&raw))
        .map_err(|_| format!("the signature does not verify with key {kid:?}"))
}

/// Check a compact JWS made by [`ExportSigner::sign_jws`] and return its payload.
pub fn verify_jws(keys: &KeySet, jws: &str) -> Result<serde_json::Value, String> {
    let jws = jws.trim();
    let mut parts = jws.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("not a compact JWS (three dot-separated parts)".into());
    };
    let header: serde_json::Value = B64
        .decode(header)
        .ok()
        .and_then(|h| serde_json::from_slice(&h).ok())
        .ok_or("the JWS header is not base64url JSON")?;
    if header["alg"] != "EdDSA" {
        return Err(format!("the JWS alg is {}, not EdDSA", header["alg"]));
    }
    let kid = header["kid"]
        .as_str()
        .ok_or("the JWS header names no kid")?;
    let input_len = jws.len() - signature.len() - 1;
    verify(keys, kid, &jws.as_bytes()[..input_len], signature)?;
    B64.decode(payload)
        .ok()
        .and_then(|p| serde_json::from_slice(&p).ok())
        .ok_or_else(|| "the JWS payload is not base64url JSON".into())
}

#[cfg(test)]
pub(crate) fn test_signer() -> ExportSigner {
    ExportSigner::from_seed_b64("export-test", &B64.encode([7u8; 32])).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_core::token::jwks_json;

    #[test]
    fn signatures_and_jws_verify_with_the_published_key_only() {
        let signer = test_signer();
        let keys = KeySet::from_jwks(&jwks_json(&[signer.public_jwk()])).unwrap();
        let sig = signer.sign(b"manifest");
        verify(&keys, "export-test", b"manifest", &sig).unwrap();
        assert!(verify(&keys, "export-test", b"manifesT", &sig).is_err());
        assert!(
            verify(&keys, "other", b"manifest", &sig)
                .unwrap_err()
                .contains("no public key")
        );

        let jws = signer.sign_jws(&serde_json::json!({"id": 3}));
        assert_eq!(verify_jws(&keys, &jws).unwrap()["id"], 3);
        let mut forged = jws.clone();
        forged.replace_range(jws.len() - 3.., "AAA");
        assert!(verify_jws(&keys, &forged).is_err());
        let other = ExportSigner::from_seed_b64("export-test", &B64.encode([8u8; 32])).unwrap();
        assert!(verify_jws(&keys, &other.sign_jws(&serde_json::json!({"id": 3}))).is_err());
        assert!(ExportSigner::from_seed_b64("k", "short").is_err());
        assert!(format!("{signer:?}").contains("export-test"));
    }
}
