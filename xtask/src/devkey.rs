//! The local development signing keys, made on first use:
//! `.vigil/jwt-signing-key` signs access tokens (`cargo xtask up` gives the
//! seed to `auth` as `jwt_signing_key`, the public half to every component
//! as `jwt_public_keys`), and `.vigil/export-signing-key` signs evidence
//! packs and audit heads (the seed to `export` only, as `export_signing_key`),
//! and `.vigil/totp-encryption-key` encrypts TOTP secrets at rest (to `auth`
//! only, as `totp_encryption_key`).

use std::fs;
use std::path::PathBuf;

use anyhow::{Context, Result};
use vigil_core::token::{TokenSigner, jwks_json};

use crate::root;

const KID: &str = "dev-1";
const EXPORT_KID: &str = "export-dev-1";

pub fn signer() -> Result<TokenSigner> {
    key(".vigil/jwt-signing-key", KID)
}

/// A key kept in `file` under the workspace, made on first use (mode 0600).
fn key(file: &str, kid: &str) -> Result<TokenSigner> {
    let path: PathBuf = root().join(file);
    if let Ok(seed) = fs::read_to_string(&path) {
        return TokenSigner::from_seed_b64(kid, &seed).map_err(anyhow::Error::msg);
    }
    let signer = TokenSigner::generate(kid);
    fs::create_dir_all(path.parent().unwrap())?;
    // Mode 0600 from its creation: never readable by others, even briefly.
    write_private(&path, &signer.seed_b64())?;
    Ok(signer)
}

/// The key that encrypts TOTP secrets, kept in `.vigil/totp-encryption-key`
/// (base64url of 32 random bytes), made on first use with mode 0600.
fn totp_key() -> Result<String> {
    let path: PathBuf = root().join(".vigil/totp-encryption-key");
    if let Ok(key) = fs::read_to_string(&path) {
        return Ok(key.trim().to_string());
    }
    let key = vigil_core::secret_box::SecretBox::generate_b64();
    fs::create_dir_all(path.parent().unwrap())?;
    write_private(&path, &key)?;
    Ok(key)
}

/// Write a secret file that only its owner can read, from its creation on.
pub fn write_private(path: &std::path::Path, contents: &str) -> Result<()> {
    use std::io::Write;
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
        .open(path)
        .and_then(|mut f| f.write_all(contents.as_bytes()))
        .with_context(|| format!("writing {}", path.display()))
}

/// The app variables for the development keys: the token key signs (in
/// `auth`) and verifies (everywhere); the export key signs in `export` only.
pub fn variables() -> Result<Vec<(String, String)>> {
    let signer = signer()?;
    let export = key(".vigil/export-signing-key", EXPORT_KID)?;
    Ok(vec![
        ("SPIN_VARIABLE_EXPORT_SIGNING_KEY".into(), export.seed_b64()),
        ("SPIN_VARIABLE_EXPORT_SIGNING_KID".into(), EXPORT_KID.into()),
        (
            "SPIN_VARIABLE_JWT_PUBLIC_KEYS".into(),
            jwks_json(&[signer.public_jwk()]),
        ),
        ("SPIN_VARIABLE_JWT_SIGNING_KEY".into(), signer.seed_b64()),
        ("SPIN_VARIABLE_JWT_SIGNING_KID".into(), KID.into()),
        ("SPIN_VARIABLE_TOTP_ENCRYPTION_KEY".into(), totp_key()?),
    ])
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    /// Key files are created owner-only, not made so after being written.
    #[test]
    fn secret_files_are_private_from_their_creation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        super::write_private(&path, "seed").unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "seed");
        // Never over an existing file (which may have other permissions).
        assert!(super::write_private(&path, "other").is_err());
    }
}
