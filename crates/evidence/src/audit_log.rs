//! The audit log as evidence: exported as JSONL (one stored entry a line,
//! with `prev_hash` and `hash`), its chain re-walked page by page with the
//! same rule as `vigil audit verify` ([`vigil_core::audit::ChainWalk`]), its
//! latest entry signed as a compact JWS (the *head*), and a saved head
//! checked against the log (anchoring): the entry it names must still be
//! there with the same hash. Since every hash covers the one before it,
//! that proves the whole history up to the head is unchanged; a truncated
//! log or a rewritten one (triggers dropped, hashes recomputed) fails.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use vigil_core::ApiError;
use vigil_core::audit::ChainWalk;
use vigil_core::sql::{Columns, Sql, Value, int, text};
use vigil_core::time::rfc3339;
use vigil_core::token::KeySet;

use crate::records::{self, AUDIT_COLUMNS};

/// Entries read per statement.
pub const PAGE: i64 = 2000;

/// `from`, `to` (RFC 3339, on the entry's time; `to` exclusive), `actor`, `action`.
#[derive(Debug, Default, Clone)]
pub struct AuditFilter {
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub actor: Option<String>,
    pub action: Option<String>,
    /// The last entry to include (not a query parameter: an export covers
    /// the log as it stood when it was asked for, not its own entry).
    pub up_to: Option<i64>,
}

impl AuditFilter {
    /// From query parameters (`get` returns one by name); 422 naming a bad one.
    pub fn parse(get: impl Fn(&str) -> Option<String>) -> Result<AuditFilter, ApiError> {
        let time = |name: &str| -> Result<Option<i64>, ApiError> {
            get(name)
                .map(|t| {
                    crate::threat_export::parse_time(&t)
                        .ok_or_else(|| ApiError::invalid_field(name, "is not an RFC 3339 time"))
                })
                .transpose()
        };
        Ok(AuditFilter {
            from: time("from")?,
            to: time("to")?,
            actor: get("actor"),
            action: get("action"),
            up_to: None,
        })
    }

    /// Conditions numbered from `?2` on (`?1` is the page's last id).
    fn conditions(&self) -> (String, Vec<Value>) {
        let mut sql = String::from("id > ?1");
        let mut params = Vec::new();
        let mut add = |clause: &str, value: Value| {
            params.push(value);
            sql += &format!(" AND {clause} ?{}", params.len() + 1);
        };
        if let Some(from) = self.from {
            add("at >=", Value::Integer(from));
        }
        if let Some(to) = self.to {
            add("at <", Value::Integer(to));
        }
        if let Some(actor) = &self.actor {
            add("actor =", Value::Text(actor.clone()));
        }
        if let Some(action) = &self.action {
            add("action =", Value::Text(action.clone()));
        }
        if let Some(last) = self.up_to {
            add("id <=", Value::Integer(last));
        }
        (sql, params)
    }

    /// How many entries match (checked against the export limit first).
    pub async fn count(&self, db: &impl Sql) -> Result<i64, ApiError> {
        let (conditions, params) = self.conditions();
        let mut all = vec![Value::Integer(0)];
        all.extend(params);
        let rows = db
            .query(
                &format!("SELECT count(*) FROM audit_log WHERE {conditions}"),
                &all,
            )
            .await?;
        Ok(rows.first().and_then(|r| int(r, 0)).unwrap_or(0))
    }
}

/// Write the matching entries into `out` as JSONL, oldest first, a page at
/// a time, handing each page to `flush` (as [`crate::threat_export::export`]
/// does); returns how many.
pub async fn export_jsonl(
    db: &impl Sql,
    filter: &AuditFilter,
    out: &mut Vec<u8>,
    mut flush: impl FnMut(&mut Vec<u8>) -> Result<(), ApiError>,
) -> Result<u64, ApiError> {
    let (conditions, params) = filter.conditions();
    let sql = format!(
        "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE {conditions} ORDER BY id LIMIT {PAGE}"
    );
    let mut after = 0i64;
    let mut n = 0;
    loop {
        let mut all = vec![Value::Integer(after)];
        all.extend(params.iter().cloned());
        let page = db.query(&sql, &all).await?;
        for row in &page {
            let entry = records::audit(row).ok_or_else(records::unreadable)?;
            serde_json::to_writer(&mut *out, &entry).expect("entries serialize");
            out.push(b'\n');
            after = entry.id;
            n += 1;
        }
        flush(out)?;
        if (page.len() as i64) < PAGE {
            return Ok(n);
        }
    }
}

/// The outcome of walking the chain, as the verify endpoint answers it.
#[derive(Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ChainVerdict {
    /// Every entry links to the one before and hashes to what it stores.
    Ok {
        entries: u64,
        /// The last entry (none on an empty log).
        head: Option<HeadRef>,
    },
    /// The first entry that does not.
    Broken {
        /// Entries that checked out before it.
        entries_checked: u64,
        id: i64,
        why: String,
        /// The hash the chain says this link should have.
        expected: String,
        /// The hash the entry stores.
        actual: String,
    },
}

#[derive(Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct HeadRef {
    pub id: i64,
    pub hash: String,
}

/// Re-walk the whole chain, a page at a time.
pub async fn verify(db: &impl Sql) -> Result<ChainVerdict, ApiError> {
    let sql =
        format!("SELECT {AUDIT_COLUMNS} FROM audit_log WHERE id > ?1 ORDER BY id LIMIT {PAGE}");
    let mut walk = ChainWalk::default();
    let mut after = 0i64;
    let mut last = None;
    loop {
        let page = db.query(&sql, &[Value::Integer(after)]).await?;
        for row in &page {
            let Some(r) = records::audit(row) else {
                // A row that does not even read as an entry (a NULL forced
                // into a NOT NULL column) breaks the chain where it stands.
                let row = AUDIT_COLUMNS.row(row);
                let id = row.int("id").unwrap_or(after + 1);
                return Ok(ChainVerdict::Broken {
                    entries_checked: walk.entries(),
                    id,
                    why: "it cannot be read as an audit entry".into(),
                    expected: walk.head().to_string(),
                    actual: row.text("hash").unwrap_or_default(),
                });
            };
            if let Err(broken) = walk.next(r.id, &r.entry, &r.prev_hash, &r.hash) {
                return Ok(ChainVerdict::Broken {
                    entries_checked: walk.entries(),
                    id: broken.id,
                    why: broken.why.into(),
                    expected: broken.expected,
                    actual: broken.actual,
                });
            }
            after = r.id;
            last = Some(r.id);
        }
        if (page.len() as i64) < PAGE {
            return Ok(ChainVerdict::Ok {
                entries: walk.entries(),
                head: last.map(|id| HeadRef {
                    id,
                    hash: walk.head().to_string(),
                }),
            });
        }
    }
}

/// The payload of a signed head: the latest entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    pub id: i64,
    pub hash: String,
    /// The entry's time, RFC 3339.
    pub at: String,
}

/// The latest entry, if the log has any.
pub async fn head(db: &impl Sql) -> Result<Option<Head>, ApiError> {
    static HEAD: Columns = Columns::new("id, hash, at");
    let rows = db
        .query(
            &format!("SELECT {HEAD} FROM audit_log ORDER BY id DESC LIMIT 1"),
            &[],
        )
        .await?;
    Ok(rows.first().map(|r| HEAD.row(r)).and_then(|r| {
        Some(Head {
            id: r.int("id")?,
            hash: r.text("hash")?,
            at: rfc3339(r.int("at")?),
        })
    }))
}

/// Read a saved head (the compact JWS of `GET /api/export/audit/head`).
/// With `keys` its signature must verify; without, it is only decoded.
pub fn read_anchor(jws: &str, keys: Option<&KeySet>) -> Result<Head, String> {
    let payload = match keys {
        Some(keys) => crate::signing::verify_jws(keys, jws)?,
        None => {
            use base64::Engine;
            let part = jws
                .trim()
                .split('.')
                .nth(1)
                .ok_or("not a compact JWS (three dot-separated parts)")?;
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(part)
                .ok()
                .and_then(|p| serde_json::from_slice(&p).ok())
                .ok_or("the JWS payload is not base64url JSON")?
        }
    };
    serde_json::from_value(payload)
        .map_err(|e| format!("the JWS payload is not an audit head: {e}"))
}

/// Whether the log still holds the anchored entry: `stored` is the hash
/// stored at the anchor's id now (none when no such entry exists).
pub fn check_anchor(anchor: &Head, stored: Option<&str>) -> Result<(), String> {
    match stored {
        None => Err(format!(
            "entry {} of the saved head is gone: the log was truncated",
            anchor.id
        )),
        Some(hash) if hash != anchor.hash => Err(format!(
            "entry {} has hash {hash}, the saved head says {}: the history up to it was rewritten",
            anchor.id, anchor.hash
        )),
        Some(_) => Ok(()),
    }
}

/// The hash stored at entry `id`, for [`check_anchor`].
pub async fn hash_at(db: &impl Sql, id: i64) -> Result<Option<String>, ApiError> {
    let rows = db
        .query(
            "SELECT hash FROM audit_log WHERE id = ?1",
            &[Value::Integer(id)],
        )
        .await?;
    Ok(rows.first().and_then(|r| text(r, 0)))
}
