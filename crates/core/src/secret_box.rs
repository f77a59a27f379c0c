//! Secrets encrypted at rest (TOTP secrets): XChaCha20-Poly1305 under a
//! 256-bit key that only the component using them holds (a secret Spin
//! variable). Each value gets a random 192-bit nonce, and the row it belongs
//! to (the user id) is the associated data, so a ciphertext copied onto
//! another user's row does not decrypt.
//!
//! Stored form: `v1.` + base64url(nonce ‖ ciphertext ‖ tag). A value without
//! the `v1.` prefix is a secret stored before encryption (legacy plaintext):
//! [`SecretBox::open`] returns it as it is, flagged, so the caller re-seals it.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

const VERSION: &str = "v1.";
const NONCE_BYTES: usize = 24;

/// A key that seals and opens secrets.
pub struct SecretBox {
    cipher: XChaCha20Poly1305,
}

/// What a stored value held.
#[derive(Debug, PartialEq, Eq)]
pub struct Opened {
    pub secret: String,
    /// It was stored in plaintext (before encryption): seal it again.
    pub legacy: bool,
}

impl SecretBox {
    /// A key from base64url (with or without padding) of 32 bytes. The error
    /// describes the shape, never the value.
    pub fn from_b64(text: &str) -> Result<SecretBox, &'static str> {
        let bytes = B64
            .decode(text.trim().trim_end_matches('='))
            .map_err(|_| "must be base64url of 32 random bytes")?;
        if bytes.len() != 32 {
            return Err("must be base64url of exactly 32 bytes");
        }
        Ok(SecretBox {
            cipher: XChaCha20Poly1305::new_from_slice(&bytes).expect("32-byte key"),
        })
    }

    /// A new random key, base64url (for `cargo xtask up` and the tests).
    pub fn generate_b64() -> String {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).expect("the platform has a random source");
        B64.encode(key)
    }

    /// Encrypt `secret` for the row `bound_to`.
    pub fn seal(&self, secret: &str, bound_to: &str) -> String {
        let mut nonce = [0u8; NONCE_BYTES];
        getrandom::fill(&mut nonce).expect("the platform has a random source");
        let sealed = self
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: secret.as_bytes(),
                    aad: bound_to.as_bytes(),
                },
            )
            .expect("encryption of a short secret cannot fail");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        format!("{VERSION}{}", B64.encode(out))
    }

    /// Decrypt a stored value of the row `bound_to`; `None` when it was
    /// sealed under another key, for another row, or altered.
    pub fn open(&self, stored: &str, bound_to: &str) -> Option<Opened> {
        let Some(body) = stored.strip_prefix(VERSION) else {
            return Some(Opened {
                secret: stored.to_string(),
                legacy: true,
            });
        };
        let raw = B64.decode(body).ok()?;
        if raw.len() < NONCE_BYTES {
            return None;
        }
        let (nonce, sealed) = raw.split_at(NONCE_BYTES);
        let plain = self
            .cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: bound_to.as_bytes(),
                },
            )
            .ok()?;
        Some(Opened {
            secret: String::from_utf8(plain).ok()?,
            legacy: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secrets_open_only_for_their_row_and_key() {
        let key = SecretBox::from_b64(&SecretBox::generate_b64()).unwrap();
        let sealed = key.seal("JBSWY3DPEHPK3PXP", "user-1");
        assert!(sealed.starts_with("v1.") && !sealed.contains("JBSWY3DPEHPK3PXP"));
        assert_ne!(
            sealed,
            key.seal("JBSWY3DPEHPK3PXP", "user-1"),
            "fresh nonce"
        );
        assert_eq!(
            key.open(&sealed, "user-1"),
            Some(Opened {
                secret: "JBSWY3DPEHPK3PXP".into(),
                legacy: false
            })
        );
        assert_eq!(key.open(&sealed, "user-2"), None, "bound to its row");
        let other = SecretBox::from_b64(&SecretBox::generate_b64()).unwrap();
        assert_eq!(other.open(&sealed, "user-1"), None, "another key");
        let mut tampered = sealed.clone();
        tampered.replace_range(10..11, if &sealed[10..11] == "A" { "B" } else { "A" });
        assert_eq!(key.open(&tampered, "user-1"), None);
        assert_eq!(key.open("v1.", "user-1"), None);
    }

    #[test]
    fn legacy_plaintext_is_flagged_and_bad_keys_are_refused() {
        let key = SecretBox::from_b64(&SecretBox::generate_b64()).unwrap();
        assert_eq!(
            key.open("JBSWY3DPEHPK3PXP", "u"),
            Some(Opened {
                secret: "JBSWY3DPEHPK3PXP".into(),
                legacy: true
            })
        );
        assert!(SecretBox::from_b64("short").is_err());
        assert!(SecretBox::from_b64("not base64 at all!").is_err());
        assert!(SecretBox::from_b64(&B64.encode([0u8; 31])).is_err());
    }
}
