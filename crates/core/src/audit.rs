//! The audit chain: each entry's hash covers the previous entry's hash and
//! the entry itself, so editing or deleting any row breaks every later link.

use serde::Serialize;
use sha2::{Digest, Sha256};

/// `prev_hash` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One audit entry as hashed (and as stored, minus `id` and `hash`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub subject_kind: Option<String>,
    pub subject_id: Option<String>,
    pub request_id: Option<String>,
    pub client_addr: Option<String>,
    /// JSON documents of the state before and after the change.
    pub before: Option<String>,
    pub after: Option<String>,
}

/// SHA-256 (hex) over `prev_hash`, a newline, and the entry's JSON (fields in
/// declaration order, so the form is canonical).
pub fn chain_hash(prev_hash: &str, entry: &AuditEntry) -> String {
    let mut h = Sha256::new();
    h.update(prev_hash.as_bytes());
    h.update(b"\n");
    h.update(serde_json::to_vec(entry).expect("audit entry serializes"));
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(action: &str) -> AuditEntry {
        AuditEntry {
            at: 1,
            actor: "system".into(),
            action: action.into(),
            subject_kind: Some("user".into()),
            subject_id: Some("u1".into()),
            request_id: None,
            client_addr: None,
            before: None,
            after: Some(r#"{"role":"admin"}"#.into()),
        }
    }

    #[test]
    fn each_link_depends_on_the_previous_and_on_every_field() {
        let first = chain_hash(GENESIS, &entry("user.created"));
        assert_eq!(first.len(), 64);
        assert_eq!(first, chain_hash(GENESIS, &entry("user.created")));
        assert_ne!(first, chain_hash(GENESIS, &entry("user.disabled")));
        assert_ne!(
            chain_hash(&first, &entry("x")),
            chain_hash(GENESIS, &entry("x"))
        );
    }
}
