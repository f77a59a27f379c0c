//! The local development signing key (`.vigil/jwt-signing-key`), made on
//! first use. `cargo xtask up` gives it to the app: the seed to `auth` as
//! `jwt_signing_key`, the public half to every component as `jwt_public_keys`.

use std::fs;
use std::path::PathBuf;

use anyhow::{Context, Result};
use vigil_core::token::{TokenSigner, jwks_json};

use crate::root;

const KID: &str = "dev-1";

fn key_path() -> PathBuf {
    root().join(".vigil/jwt-signing-key")
}

pub fn signer() -> Result<TokenSigner> {
    let path = key_path();
    if let Ok(seed) = fs::read_to_string(&path) {
        return TokenSigner::from_seed_b64(KID, &seed).map_err(anyhow::Error::msg);
    }
    let signer = TokenSigner::generate(KID);
    fs::create_dir_all(path.parent().unwrap())?;
    fs::write(&path, signer.seed_b64()).with_context(|| format!("writing {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600))?;
    }
    Ok(signer)
}

/// The app variables for the development key: it signs (in `auth`) and verifies.
pub fn variables() -> Result<Vec<(String, String)>> {
    let signer = signer()?;
    Ok(vec![
        (
            "SPIN_VARIABLE_JWT_PUBLIC_KEYS".into(),
            jwks_json(&[signer.public_jwk()]),
        ),
        ("SPIN_VARIABLE_JWT_SIGNING_KEY".into(), signer.seed_b64()),
        ("SPIN_VARIABLE_JWT_SIGNING_KID".into(), KID.into()),
    ])
}
