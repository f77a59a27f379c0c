//! `manifest.json` (what a pack holds: each file's size and SHA-256) and
//! `manifest.sig` (base64url of the Ed25519 signature over the manifest's
//! exact bytes), and verifying a pack offline against a JWKS document:
//! every listed file present with its size and hash, nothing unlisted, the
//! signature good.

use std::collections::BTreeSet;
use std::io::Read;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use vigil_core::token::KeySet;

/// The `format` of packs this crate writes.
pub const FORMAT: &str = "vigil-evidence-pack/1";
pub const MANIFEST: &str = "manifest.json";
pub const SIGNATURE: &str = "manifest.sig";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: String,
    pub pack_id: String,
    pub subject: PackSubject,
    pub created_at: String,
    /// The user (or key) who asked for the pack.
    pub created_by: String,
    pub vigil_version: String,
    /// The `kid` of the key that signed `manifest.sig`.
    pub kid: String,
    /// Every other file of the pack, in the order of the ZIP.
    pub files: Vec<FileEntry>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PackSubject {
    /// `alert`, `decision`, `threat` or `sensor`.
    pub kind: String,
    pub id: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    pub path: String,
    pub size: u64,
    /// Lowercase hex.
    pub sha256: String,
}

impl Manifest {
    /// The exact bytes that are signed and stored as `manifest.json`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(self).expect("manifest serializes");
        bytes.push(b'\n');
        bytes
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// What checking a pack found.
#[derive(Debug, Default)]
pub struct Verification {
    /// The manifest, when it could be read (signed or not: see `problems`).
    pub manifest: Option<Manifest>,
    /// Files whose size and hash matched.
    pub files_ok: usize,
    /// Every problem, each a sentence naming the file; empty when the pack is intact.
    pub problems: Vec<String>,
}

impl Verification {
    pub fn ok(&self) -> bool {
        self.problems.is_empty() && self.manifest.is_some()
    }
}

/// Check a pack (the ZIP's bytes) against `keys` (the JWKS of
/// `GET /api/export/keys`): the signature over `manifest.json`, then every
/// file's size and SHA-256, then that nothing is missing or extra.
pub fn verify_pack(zip_bytes: &[u8], keys: &KeySet) -> Verification {
    let mut v = Verification::default();
    let mut archive = match zip::ZipArchive::new(std::io::Cursor::new(zip_bytes)) {
        Ok(a) => a,
        Err(e) => {
            v.problems.push(format!("not a readable ZIP archive: {e}"));
            return v;
        }
    };
    // Read every entry once, by index: a name present twice is itself tampering.
    let mut entries: Vec<(String, Result<Vec<u8>, String>)> = Vec::new();
    for i in 0..archive.len() {
        let mut file = match archive.by_index(i) {
            Ok(f) => f,
            Err(e) => {
                v.problems.push(format!("entry {i} cannot be read: {e}"));
                continue;
            }
        };
        let name = match file.name() {
            Ok(name) => name.to_string(),
            Err(e) => {
                v.problems
                    .push(format!("entry {i} has an unreadable name: {e}"));
                continue;
            }
        };
        let mut bytes = Vec::new();
        let read = file
            .read_to_end(&mut bytes)
            .map(|_| bytes)
            .map_err(|e| format!("{name} cannot be read (damaged: {e})"));
        entries.push((name, read));
    }
    let mut seen = BTreeSet::new();
    for (name, _) in &entries {
        if !seen.insert(name.clone()) {
            v.problems.push(format!("{name} is in the archive twice"));
        }
    }
    let find = |name: &str| entries.iter().find(|(n, _)| n == name).map(|(_, r)| r);

    let manifest_bytes = match find(MANIFEST) {
        Some(Ok(b)) => b.clone(),
        Some(Err(e)) => {
            v.problems.push(e.clone());
            return v;
        }
        None => {
            v.problems.push(format!("{MANIFEST} is missing"));
            return v;
        }
    };
    let manifest: Manifest = match serde_json::from_slice(&manifest_bytes) {
        Ok(m) => m,
        Err(e) => {
            v.problems
                .push(format!("{MANIFEST} is not a Vigil manifest: {e}"));
            return v;
        }
    };
    match find(SIGNATURE) {
        Some(Ok(sig)) => match std::str::from_utf8(sig) {
            Ok(sig) => {
                if let Err(why) = crate::signing::verify(keys, &manifest.kid, &manifest_bytes, sig)
                {
                    v.problems.push(format!("{SIGNATURE}: {why}"));
                }
            }
            Err(_) => v.problems.push(format!("{SIGNATURE} is not text")),
        },
        Some(Err(e)) => v.problems.push(e.clone()),
        None => v.problems.push(format!("{SIGNATURE} is missing")),
    }
    let mut listed = BTreeSet::new();
    for file in &manifest.files {
        listed.insert(file.path.as_str());
        match find(&file.path) {
            None => v
                .problems
                .push(format!("{} is listed but missing", file.path)),
            Some(Err(e)) => v.problems.push(e.clone()),
            Some(Ok(bytes)) => {
                if bytes.len() as u64 != file.size {
                    v.problems.push(format!(
                        "{} has {} bytes, the manifest says {}",
                        file.path,
                        bytes.len(),
                        file.size
                    ));
                } else if sha256_hex(bytes) != file.sha256 {
                    v.problems.push(format!(
                        "{} does not match its SHA-256 in the manifest (modified)",
                        file.path
                    ));
                } else {
                    v.files_ok += 1;
                }
            }
        }
    }
    for (name, _) in &entries {
        if name != MANIFEST && name != SIGNATURE && !listed.contains(name.as_str()) {
            v.problems
                .push(format!("{name} is not listed in the manifest (added)"));
        }
    }
    v.manifest = Some(manifest);
    v
}
