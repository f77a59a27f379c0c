//! Checking evidence offline, trusting nothing but the export public keys:
//!
//! - `vigil verify <pack.zip> --key keys.json | --jwks URL`: the pack's
//!   manifest signature and every file's size and SHA-256
//!   (`vigil_evidence::manifest::verify_pack`); any modified, missing or
//!   extra file or a bad signature fails.
//! - `vigil audit verify [--anchor head.jws [--key keys.json | --jwks URL]]`:
//!   the whole hash chain, and that a head saved earlier from
//!   `GET /api/export/audit/head` is still in it (`vigil_evidence::audit_log`).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use vigil_core::token::KeySet;
use vigil_db::Target;
use vigil_db::audit::Verdict;
use vigil_db::sql::LibsqlSql;
use vigil_evidence::audit_log;
use vigil_evidence::manifest::verify_pack;

/// Where the export public keys come from.
#[derive(Args)]
pub struct KeyArgs {
    /// The JWKS document saved from `GET /api/export/keys`.
    #[arg(long, value_name = "FILE", conflicts_with = "jwks")]
    key: Option<PathBuf>,
    /// Fetch the JWKS document from this URL (e.g. https://vigil.example/api/export/keys).
    #[arg(long, value_name = "URL")]
    jwks: Option<String>,
}

impl KeyArgs {
    /// The key set, if one was named.
    fn load(&self) -> Result<Option<KeySet>> {
        let document = match (&self.key, &self.jwks) {
            (Some(path), _) => std::fs::read_to_string(path)
                .with_context(|| format!("reading the key set {}", path.display()))?,
            (None, Some(url)) => ureq::get(url)
                .call()
                .with_context(|| format!("fetching the key set from {url}"))?
                .body_mut()
                .read_to_string()
                .with_context(|| format!("reading the key set from {url}"))?,
            (None, None) => return Ok(None),
        };
        KeySet::from_jwks(&document)
            .map(Some)
            .map_err(|why| anyhow::anyhow!("the key set is not usable: {why}"))
    }
}

/// `vigil verify <pack.zip>`: print the verdict; an error when the pack fails.
pub fn pack(path: &Path, keys: &KeyArgs) -> Result<()> {
    let Some(keys) = keys.load()? else {
        bail!("give the export public keys: --key keys.json (from /api/export/keys) or --jwks URL");
    };
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let v = verify_pack(&bytes, &keys);
    let name = path.display();
    if let Some(m) = &v.manifest {
        println!(
            "{name}: pack {} about {} {}, built {} by {} (Vigil {}, key {})",
            m.pack_id,
            m.subject.kind,
            m.subject.id,
            m.created_at,
            m.created_by,
            m.vigil_version,
            m.kid
        );
    }
    if v.ok() {
        let files = v.manifest.as_ref().map_or(0, |m| m.files.len());
        println!(
            "{name}: VERIFIED: the signature is good and all {files} files match the manifest"
        );
        return Ok(());
    }
    for problem in &v.problems {
        println!("  - {problem}");
    }
    bail!(
        "{name}: NOT VERIFIED: {} problem(s) found",
        v.problems.len()
    )
}

/// `vigil audit verify [--anchor FILE]`.
pub async fn audit(target: &Target, anchor: Option<&Path>, keys: &KeyArgs) -> Result<()> {
    let conn = target.connect().await?;
    let head = match vigil_db::audit::verify(&conn).await? {
        Verdict::Intact { entries, head } => {
            println!("{target:?}: the audit chain is intact ({entries} entries)");
            head
        }
        Verdict::Broken(b) => bail!(
            "the audit chain is broken at entry {}: {} (expected {}, found {})",
            b.id,
            b.why,
            b.expected,
            b.actual
        ),
    };
    let Some(anchor_path) = anchor else {
        return Ok(());
    };
    let jws = std::fs::read_to_string(anchor_path)
        .with_context(|| format!("reading the anchor {}", anchor_path.display()))?;
    let keys = keys.load()?;
    let saved = audit_log::read_anchor(&jws, keys.as_ref())
        .map_err(|why| anyhow::anyhow!("the anchor {}: {why}", anchor_path.display()))?;
    let stored = audit_log::hash_at(&LibsqlSql(&conn), saved.id).await?;
    audit_log::check_anchor(&saved, stored.as_deref()).map_err(|why| {
        anyhow::anyhow!("the anchor {} does not hold: {why}", anchor_path.display())
    })?;
    let signature = if keys.is_some() {
        "its signature is good"
    } else {
        "its signature was not checked (no --key or --jwks)"
    };
    let tip = head.map_or(0, |(id, _)| id);
    println!(
        "{target:?}: the anchor holds: entry {} ({}) is still in the chain with hash {}; {signature}; {} entries since",
        saved.id,
        saved.at,
        saved.hash,
        tip - saved.id
    );
    Ok(())
}
