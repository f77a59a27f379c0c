//! The audit chain: each entry's hash covers the previous entry's hash and
//! the entry itself, so editing or deleting any row breaks every later link.

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::ApiError;
use crate::sql::{Sql, Value, opt_text, text};

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

/// Who makes a change, as the audit log records it: a user or key (by
/// subject), and where the request came from when there was one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    pub actor: String,
    pub request_id: Option<String>,
    pub client_addr: Option<String>,
}

impl Actor {
    /// A program acting on its own (a relay job, a CLI command): no request.
    pub fn program(name: &str) -> Actor {
        Actor {
            actor: name.into(),
            request_id: None,
            client_addr: None,
        }
    }

    /// An entry for `action` on a subject, with no before or after yet.
    pub fn entry(&self, action: &str, subject_kind: &str, subject_id: &str, at: i64) -> AuditEntry {
        AuditEntry {
            at,
            actor: self.actor.clone(),
            action: action.into(),
            subject_kind: Some(subject_kind.into()),
            subject_id: Some(subject_id.into()),
            request_id: self.request_id.clone(),
            client_addr: self.client_addr.clone(),
            before: None,
            after: None,
        }
    }
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

/// The first link of the chain that does not hold.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BrokenLink {
    /// The entry's id.
    pub id: i64,
    pub why: &'static str,
    /// What the chain says this link should be (the previous entry's hash,
    /// or the hash recomputed over the entry).
    pub expected: String,
    /// What the entry stores.
    pub actual: String,
}

/// Walks the chain entry by entry in id order, from the first entry, so
/// every reader (the CLI over libsql, the export component over Spin's
/// SQLite, paging through millions of rows) checks it by the same rule.
#[derive(Clone, Debug)]
pub struct ChainWalk {
    prev: String,
    entries: u64,
}

impl Default for ChainWalk {
    fn default() -> Self {
        ChainWalk {
            prev: GENESIS.to_string(),
            entries: 0,
        }
    }
}

impl ChainWalk {
    /// Check the next entry: it must name the previous entry's hash and hash
    /// to what it stores.
    pub fn next(
        &mut self,
        id: i64,
        entry: &AuditEntry,
        stored_prev: &str,
        stored_hash: &str,
    ) -> Result<(), BrokenLink> {
        if stored_prev != self.prev {
            return Err(BrokenLink {
                id,
                why: "its prev_hash is not the hash of the entry before it",
                expected: self.prev.clone(),
                actual: stored_prev.to_string(),
            });
        }
        let hash = chain_hash(&self.prev, entry);
        if hash != stored_hash {
            return Err(BrokenLink {
                id,
                why: "its contents do not match its hash",
                expected: hash,
                actual: stored_hash.to_string(),
            });
        }
        self.prev = hash;
        self.entries += 1;
        Ok(())
    }

    /// Entries checked so far.
    pub fn entries(&self) -> u64 {
        self.entries
    }

    /// The hash of the last entry checked (the genesis value before any).
    pub fn head(&self) -> &str {
        &self.prev
    }
}

/// Append `entry` to the chain and return its hash. Call it inside the write
/// transaction of the change it records, so both commit or neither does
/// (the write lock also keeps the chain's tail from moving meanwhile).
pub async fn append(db: &impl Sql, entry: &AuditEntry) -> Result<String, ApiError> {
    let rows = db
        .query("SELECT hash FROM audit_log ORDER BY id DESC LIMIT 1", &[])
        .await?;
    let prev = rows
        .first()
        .and_then(|r| text(r, 0))
        .unwrap_or_else(|| GENESIS.to_string());
    let hash = chain_hash(&prev, entry);
    db.query(
        "INSERT INTO audit_log (at, actor, action, subject_kind, subject_id, request_id,
                                client_addr, before, after, prev_hash, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        &[
            Value::Integer(entry.at),
            Value::Text(entry.actor.clone()),
            Value::Text(entry.action.clone()),
            opt_text(entry.subject_kind.as_deref()),
            opt_text(entry.subject_id.as_deref()),
            opt_text(entry.request_id.as_deref()),
            opt_text(entry.client_addr.as_deref()),
            opt_text(entry.before.as_deref()),
            opt_text(entry.after.as_deref()),
            Value::Text(prev),
            Value::Text(hash.clone()),
        ],
    )
    .await?;
    Ok(hash)
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
    fn a_walk_names_the_first_broken_link_with_both_hashes() {
        let (a, b) = (entry("a"), entry("b"));
        let ha = chain_hash(GENESIS, &a);
        let hb = chain_hash(&ha, &b);
        let mut walk = ChainWalk::default();
        walk.next(1, &a, GENESIS, &ha).unwrap();
        walk.next(2, &b, &ha, &hb).unwrap();
        assert_eq!((walk.entries(), walk.head()), (2, hb.as_str()));

        let mut edited = b.clone();
        edited.actor = "mallory".into();
        let mut walk = ChainWalk::default();
        walk.next(1, &a, GENESIS, &ha).unwrap();
        let broken = walk.next(2, &edited, &ha, &hb).unwrap_err();
        assert_eq!((broken.id, broken.actual.as_str()), (2, hb.as_str()));
        assert_eq!(broken.expected, chain_hash(&ha, &edited));

        let broken = ChainWalk::default().next(2, &b, &ha, &hb).unwrap_err();
        assert_eq!(
            (broken.expected.as_str(), broken.actual.as_str()),
            (GENESIS, ha.as_str())
        );
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
