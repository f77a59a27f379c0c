//! Schema migrations: the numbered files in `migrations/`, applied in order,
//! each once, each in its own transaction, recorded with its SHA-256.
//!
//! Before applying anything, every already-applied migration is checked
//! against its file: a database whose history differs from the files (an
//! edited migration, or one this binary doesn't know) is refused untouched.

use anyhow::{Result, bail, ensure};
use sha2::{Digest, Sha256};

use crate::target::{Target, query_i64};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/migrations.rs"));
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Migration {
    pub version: i64,
    pub name: String,
    pub sql: String,
    pub checksum: String,
}

impl Migration {
    /// From a file name `NNNN_name.sql` and its contents.
    pub fn from_file(file: &str, sql: &str) -> Result<Migration> {
        let stem = file.strip_suffix(".sql").unwrap_or(file);
        let Some((number, name)) = stem.split_once('_') else {
            bail!("migration file {file:?} is not named NNNN_name.sql");
        };
        let version: i64 = number
            .parse()
            .map_err(|_| anyhow::anyhow!("migration file {file:?} does not start with a number"))?;
        Ok(Migration {
            version,
            name: name.to_string(),
            sql: sql.to_string(),
            checksum: hex::encode(Sha256::digest(sql.as_bytes())),
        })
    }
}

/// The migrations built into this binary, in order.
pub fn embedded() -> Vec<Migration> {
    let all: Vec<Migration> = embedded::EMBEDDED
        .iter()
        .map(|(file, sql)| {
            Migration::from_file(file, sql).expect("embedded migrations are well named")
        })
        .collect();
    debug_assert!(all.windows(2).all(|w| w[0].version < w[1].version));
    all
}

/// The newest schema version this binary knows.
pub fn latest_version() -> i64 {
    embedded().last().map_or(0, |m| m.version)
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub applied: Vec<i64>,
    pub already: usize,
}

const CREATE_LEDGER: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    checksum   TEXT NOT NULL,
    applied_at INTEGER NOT NULL
)";

/// Apply `migrations` to the database at `target`.
pub async fn migrate(target: &Target, migrations: &[Migration]) -> Result<Report> {
    let conn = target.connect().await?;
    if target.is_local() {
        // WAL persists in the file: readers stop blocking the writer, which is
        // what lets many per-request connections share one file (DESIGN.md).
        let mut rows = conn.query("PRAGMA journal_mode = WAL", ()).await?;
        let mode = rows.next().await?.map(|r| r.get::<String>(0)).transpose()?;
        ensure!(
            mode.as_deref() == Some("wal"),
            "could not switch the database to WAL (got {mode:?})"
        );
    }
    conn.execute(CREATE_LEDGER, ()).await?;

    let mut applied = Vec::new();
    let mut rows = conn
        .query(
            "SELECT version, name, checksum FROM schema_migrations ORDER BY version",
            (),
        )
        .await?;
    while let Some(row) = rows.next().await? {
        applied.push((
            row.get::<i64>(0)?,
            row.get::<String>(1)?,
            row.get::<String>(2)?,
        ));
    }
    drop(rows);
    for (version, name, checksum) in &applied {
        match migrations.iter().find(|m| m.version == *version) {
            None => bail!(
                "the database has migration {version:04}_{name} which this build does not know; \
                 use a newer `vigil`"
            ),
            Some(m) if &m.checksum != checksum => bail!(
                "migration {version:04}_{name} was changed after it was applied \
                 (database checksum {checksum}, file {}); restore the original file",
                m.checksum
            ),
            Some(_) => {}
        }
    }

    let mut report = Report {
        already: applied.len(),
        ..Report::default()
    };
    // Migrations may be applied out of order (a branch's lower number merged
    // after a higher one), so the header holds the highest applied.
    let mut newest = applied.iter().map(|(v, _, _)| *v).max().unwrap_or(0);
    for m in migrations
        .iter()
        .filter(|m| !applied.iter().any(|(v, _, _)| *v == m.version))
    {
        let tx = conn
            .transaction_with_behavior(libsql::TransactionBehavior::Immediate)
            .await?;
        tx.execute_batch(&m.sql)
            .await
            .map_err(|e| anyhow::anyhow!("migration {:04}_{} failed: {e}", m.version, m.name))?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES (?1, ?2, ?3, ?4)",
            libsql::params![m.version, m.name.as_str(), m.checksum.as_str(), vigil_core::time::now_millis()],
        )
        .await?;
        newest = newest.max(m.version);
        tx.execute(&set_user_version(newest), ()).await?;
        tx.commit().await?;
        report.applied.push(m.version);
    }
    // A database migrated before the version was kept in the header too.
    if report.applied.is_empty() && newest > 0 {
        conn.execute(&set_user_version(newest), ()).await?;
    }
    Ok(report)
}

/// The schema version is also kept in the file header (`user_version`), so
/// the components' health checks can read it without the schema: SQLite parses
/// the whole schema on a connection's first statement that needs it, and Spin
/// opens a connection per request.
fn set_user_version(version: i64) -> String {
    format!("PRAGMA user_version = {version}")
}

/// The schema version of a database (0 when unmigrated).
pub async fn current_version(conn: &libsql::Connection) -> Result<i64> {
    let exists = query_i64(
        conn,
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'",
        (),
    )
    .await?;
    if exists == Some(0) {
        return Ok(0);
    }
    Ok(
        query_i64(conn, "SELECT max(version) FROM schema_migrations", ())
            .await?
            .unwrap_or(0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local() -> (tempfile::TempDir, Target) {
        let dir = tempfile::tempdir().unwrap();
        let target = Target::Local(dir.path().join("v.db"));
        (dir, target)
    }

    #[test]
    fn every_file_in_migrations_is_embedded_and_numbered() {
        let all = embedded();
        assert!(!all.is_empty());
        for (i, m) in all.iter().enumerate() {
            assert_eq!(m.version, i as i64 + 1, "migrations are numbered 1, 2, 3 …");
        }
    }

    #[tokio::test]
    async fn applies_once_then_is_a_no_op() {
        let (_dir, target) = local();
        let first = migrate(&target, &embedded()).await.unwrap();
        assert_eq!(first.applied.len(), embedded().len());
        let second = migrate(&target, &embedded()).await.unwrap();
        assert!(second.applied.is_empty());
        assert_eq!(second.already, embedded().len());
        let conn = target.connect().await.unwrap();
        assert_eq!(current_version(&conn).await.unwrap(), latest_version());
        let mut rows = conn.query("PRAGMA journal_mode", ()).await.unwrap();
        assert_eq!(
            rows.next()
                .await
                .unwrap()
                .unwrap()
                .get::<String>(0)
                .unwrap(),
            "wal"
        );
    }

    #[tokio::test]
    async fn the_file_header_carries_the_schema_version_even_for_older_databases() {
        let (_dir, target) = local();
        migrate(&target, &embedded()[..3]).await.unwrap();
        let conn = target.connect().await.unwrap();
        let header = || async { query_i64(&conn, "PRAGMA user_version", ()).await.unwrap() };
        assert_eq!(header().await, Some(3));
        // As a database migrated before the header was kept looks.
        conn.execute("PRAGMA user_version = 0", ()).await.unwrap();
        migrate(&target, &embedded()[..3]).await.unwrap();
        assert_eq!(header().await, Some(3));
        migrate(&target, &embedded()).await.unwrap();
        assert_eq!(header().await, Some(latest_version()));
    }

    #[tokio::test]
    async fn the_header_holds_the_highest_version_when_a_lower_one_comes_late() {
        let (_dir, target) = local();
        let all = embedded();
        let without_second = [&all[..1], &all[2..3]].concat();
        migrate(&target, &without_second).await.unwrap();
        migrate(&target, &all[..3]).await.unwrap();
        let conn = target.connect().await.unwrap();
        assert_eq!(
            query_i64(&conn, "PRAGMA user_version", ()).await.unwrap(),
            Some(3)
        );
    }

    #[tokio::test]
    async fn a_changed_migration_is_refused_and_nothing_changes() {
        let (_dir, target) = local();
        let mut ms = embedded();
        migrate(&target, &ms[..1]).await.unwrap();
        ms[0] = Migration::from_file("0001_foundation.sql", &format!("{}\n-- edited", ms[0].sql))
            .unwrap();
        ms.push(Migration::from_file("0099_extra.sql", "CREATE TABLE extra (x);").unwrap());
        let err = migrate(&target, &ms).await.unwrap_err().to_string();
        assert!(err.contains("was changed after it was applied"), "{err}");
        let conn = target.connect().await.unwrap();
        let extra = query_i64(
            &conn,
            "SELECT count(*) FROM sqlite_master WHERE name = 'extra'",
            (),
        )
        .await
        .unwrap();
        assert_eq!(
            extra,
            Some(0),
            "nothing may be applied after a checksum mismatch"
        );
    }

    #[tokio::test]
    async fn a_failing_migration_leaves_no_trace() {
        let (_dir, target) = local();
        let mut ms = embedded();
        ms.push(
            Migration::from_file(
                "0099_broken.sql",
                "CREATE TABLE half (x); SELECT nope FROM nowhere;",
            )
            .unwrap(),
        );
        assert!(migrate(&target, &ms).await.is_err());
        let conn = target.connect().await.unwrap();
        assert_eq!(current_version(&conn).await.unwrap(), latest_version());
        let half = query_i64(
            &conn,
            "SELECT count(*) FROM sqlite_master WHERE name = 'half'",
            (),
        )
        .await
        .unwrap();
        assert_eq!(half, Some(0));
    }
}
