//! The local development signing key (`.vigil/jwt-signing-key`), made on
//! first use. `cargo xtask up` gives its public half to the app as
//! `jwt_public_keys`; `cargo xtask token` signs tokens with it.

use std::fs;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use vigil_core::token::{ACCESS_TOKEN_TTL_SECS, Claims, TokenSigner, jwks_json};
use vigil_core::{Role, time::now_millis};

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

pub fn public_keys() -> Result<String> {
    Ok(jwks_json(&[signer()?.public_jwk()]))
}

/// `cargo xtask token --role admin [--sub <user id>] [--issuer vigil] [--audience vigil]`
pub fn token(args: &[String]) -> Result<()> {
    let mut role = None;
    let mut sub = "dev".to_string();
    let mut iss = "vigil".to_string();
    let mut aud = "vigil".to_string();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--role" => {
                role = Some(
                    Role::parse(value).context("--role is viewer, analyst, supervisor or admin")?,
                )
            }
            "--sub" => sub = value.clone(),
            "--issuer" => iss = value.clone(),
            "--audience" => aud = value.clone(),
            _ => bail!("unknown flag {flag}"),
        }
    }
    let role = role.context("--role is required")?;
    let now = now_millis() / 1000;
    let claims = Claims {
        iss,
        aud,
        sub,
        jti: vigil_core::id::new_id(),
        iat: now,
        exp: now + ACCESS_TOKEN_TTL_SECS,
        nbf: None,
        role: Some(role),
        scopes: vec![],
    };
    println!("{}", signer()?.sign(&claims));
    Ok(())
}
