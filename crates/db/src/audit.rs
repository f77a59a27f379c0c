//! Appending to the audit chain from native code. Call inside the write
//! transaction of the change being audited, so both commit or neither does.

use anyhow::Result;
use vigil_core::audit::{AuditEntry, BrokenLink, ChainWalk};

use crate::sql::LibsqlSql;

pub async fn append(conn: &libsql::Connection, entry: &AuditEntry) -> Result<String> {
    Ok(vigil_core::audit::append(&LibsqlSql(conn), entry).await?)
}

/// The outcome of checking the audit chain.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every entry links to the one before and hashes to what it stores;
    /// `head` is the last entry's id and hash (none on an empty log).
    Intact {
        entries: u64,
        head: Option<(i64, String)>,
    },
    /// The first entry that does not: edited, deleted before, or inserted out of chain.
    Broken(BrokenLink),
}

/// Walk the chain from the first entry and recompute every link
/// ([`ChainWalk`], the rule the export component's verify endpoint uses too).
pub async fn verify(conn: &libsql::Connection) -> Result<Verdict> {
    let mut rows = conn
        .query(
            "SELECT id, at, actor, action, subject_kind, subject_id, request_id, client_addr,
                    before, after, prev_hash, hash
             FROM audit_log ORDER BY id",
            (),
        )
        .await?;
    let mut walk = ChainWalk::default();
    let mut last = None;
    while let Some(row) = rows.next().await? {
        let id: i64 = row.get(0)?;
        let entry = AuditEntry {
            at: row.get(1)?,
            actor: row.get(2)?,
            action: row.get(3)?,
            subject_kind: row.get(4)?,
            subject_id: row.get(5)?,
            request_id: row.get(6)?,
            client_addr: row.get(7)?,
            before: row.get(8)?,
            after: row.get(9)?,
        };
        let (stored_prev, stored_hash): (String, String) = (row.get(10)?, row.get(11)?);
        if let Err(broken) = walk.next(id, &entry, &stored_prev, &stored_hash) {
            return Ok(Verdict::Broken(broken));
        }
        last = Some(id);
    }
    Ok(Verdict::Intact {
        entries: walk.entries(),
        head: last.map(|id| (id, walk.head().to_string())),
    })
}
