//! Where the database lives, and connecting to it.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};

/// A local SQLite file, or a libSQL server (Turso, `sqld`) by URL and token.
#[derive(Clone)]
pub enum Target {
    Local(PathBuf),
    Remote { url: String, token: String },
}

impl std::fmt::Debug for Target {
    // The token never reaches a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Local(path) => write!(f, "{}", path.display()),
            Target::Remote { url, .. } => write!(f, "{url}"),
        }
    }
}

/// Spin's local SQLite waits this long for a lock; so do we.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

impl Target {
    pub fn is_local(&self) -> bool {
        matches!(self, Target::Local(_))
    }

    /// Spin's runtime config (`--runtime-config-file`) pointing the app's
    /// `default` database here. It holds the token of a remote target.
    pub fn spin_runtime_config(&self) -> String {
        match self {
            // Absolute: Spin resolves a relative path against the app, not this file.
            Target::Local(path) => format!(
                "[sqlite_database.default]\ntype = \"spin\"\npath = {:?}\n",
                path.display().to_string()
            ),
            Target::Remote { url, token } => format!(
                "[sqlite_database.default]\ntype = \"libsql\"\nurl = {url:?}\ntoken = {token:?}\n"
            ),
        }
    }

    pub async fn connect(&self) -> Result<libsql::Connection> {
        let db = match self {
            Target::Local(path) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir)
                        .with_context(|| format!("cannot create {}", dir.display()))?;
                }
                libsql::Builder::new_local(path).build().await
            }
            Target::Remote { url, token } => {
                libsql::Builder::new_remote(url.clone(), token.clone())
                    .build()
                    .await
            }
        }
        .with_context(|| format!("cannot open the database at {self:?}"))?;
        let conn = db
            .connect()
            .with_context(|| format!("cannot connect to {self:?}"))?;
        if self.is_local() {
            conn.busy_timeout(BUSY_TIMEOUT)?;
            conn.execute("PRAGMA foreign_keys = ON", ()).await?;
        } else {
            // A remote connection is lazy: probe it so that a wrong URL or token
            // fails here, naming the database, before anything is attempted.
            conn.query("SELECT 1", ())
                .await
                .with_context(|| format!("cannot use the database at {self:?}"))?;
        }
        Ok(conn)
    }
}

/// Read one integer (or NULL) from a single-row query.
pub async fn query_i64(
    conn: &libsql::Connection,
    sql: &str,
    params: impl libsql::params::IntoParams,
) -> Result<Option<i64>> {
    let mut rows = conn.query(sql, params).await?;
    match rows.next().await? {
        Some(row) => Ok(row.get::<Option<i64>>(0)?),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spin_runtime_config_names_the_default_database() {
        let local = Target::Local(PathBuf::from("/data/a \"b\".db"));
        assert_eq!(
            local.spin_runtime_config(),
            "[sqlite_database.default]\ntype = \"spin\"\npath = \"/data/a \\\"b\\\".db\"\n"
        );
        let remote = Target::Remote {
            url: "http://127.0.0.1:8080".into(),
            token: "t0k".into(),
        };
        assert_eq!(
            remote.spin_runtime_config(),
            "[sqlite_database.default]\ntype = \"libsql\"\nurl = \"http://127.0.0.1:8080\"\ntoken = \"t0k\"\n"
        );
    }
}
