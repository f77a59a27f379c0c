//! `fermyon:spin/sqlite@2.0.0` over libSQL, configured like Spin.
//!
//! * Databases come from the runtime config file's `[sqlite_database.<label>]`
//!   tables (`type = "spin"` for a local file, `type = "libsql"` for a remote
//!   libSQL server); the `default` label is always added when not configured,
//!   at `<manifest dir>/.spin/sqlite_db.db` (Spin's crates/sqlite/src/lib.rs and
//!   crates/runtime-config/src/lib.rs).
//! * Each `open` gets a fresh connection (Spin opens one rusqlite connection
//!   per `open`, crates/sqlite-inproc), with rusqlite's default 5 s busy timeout.
//! * Errors: `access-denied` is checked before `no-such-database`
//!   (crates/factor-sqlite/src/host.rs), and a component granted a label that
//!   is not configured is a start-up error (crates/factor-sqlite/src/lib.rs).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use serde::Deserialize;
use wasmtime::component::{HasData, Resource, ResourceTable};

use crate::bindings::fermyon::spin::sqlite::{self as wit, Error, QueryResult, RowResult, Value};

/// Spin's `MAX_HOST_BUFFERED_BYTES` (crates/world): query results above this fail.
const MAX_RESULT_BYTES: usize = 128 << 20;
/// rusqlite's default busy timeout, which is what Spin's local SQLite uses.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Where one database label points.
#[derive(Debug, Clone)]
pub enum DatabaseConfig {
    /// A local file, or an in-memory database when `path` is absent.
    Local {
        path: Option<PathBuf>,
        allow_attach_file: bool,
    },
    /// A libSQL server over HTTP(S).
    Remote { url: String, token: String },
}

#[derive(Deserialize)]
struct TomlDatabase {
    #[serde(rename = "type")]
    kind: String,
    #[serde(flatten)]
    rest: toml::Table,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlLocal {
    path: Option<PathBuf>,
    #[serde(default)]
    allow_attach_file: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlRemote {
    url: String,
    token: String,
}

/// Parses the `sqlite_database` tables of a runtime config and adds `default`.
///
/// `local_dir` is where relative `path`s resolve from. In Spin 4.0.2 that is
/// the process's current directory, NOT the runtime config file's directory
/// (crates/runtime-config/src/lib.rs, `sqlite_config_resolver`).
pub fn resolve_databases(
    runtime_config: Option<&toml::Table>,
    local_dir: &Path,
    default_dir: &Path,
) -> Result<HashMap<String, DatabaseConfig>> {
    let mut out = HashMap::new();
    if let Some(table) = runtime_config.and_then(|t| t.get("sqlite_database")) {
        let dbs: HashMap<String, TomlDatabase> = table
            .clone()
            .try_into()
            .context("invalid [sqlite_database] runtime config")?;
        for (label, db) in dbs {
            let rest = toml::Value::Table(db.rest);
            let cfg = match db.kind.as_str() {
                "spin" => {
                    let l: TomlLocal = rest.try_into()?;
                    let path = l.path.map(|p| {
                        if p.is_absolute() {
                            p
                        } else {
                            local_dir.join(p)
                        }
                    });
                    if let Some(parent) = path.as_deref().and_then(Path::parent) {
                        std::fs::create_dir_all(parent).with_context(|| {
                            format!(
                                "failed to create sqlite database directory '{}'",
                                parent.display()
                            )
                        })?;
                    }
                    DatabaseConfig::Local {
                        path,
                        allow_attach_file: l.allow_attach_file,
                    }
                }
                "libsql" => {
                    let r: TomlRemote = rest.try_into()?;
                    if !(r.url.starts_with("https://") || r.url.starts_with("http://")) {
                        bail!(
                            "unexpected libSQL URL '{}' in runtime config file: URL does not start with 'https://' or 'http://'",
                            r.url
                        );
                    }
                    DatabaseConfig::Remote {
                        url: r.url,
                        token: r.token,
                    }
                }
                other => bail!("Unknown database kind: {other}"),
            };
            out.insert(label, cfg);
        }
    }
    out.entry("default".to_string())
        .or_insert_with(|| DatabaseConfig::Local {
            path: Some(default_dir.join("sqlite_db.db")),
            allow_attach_file: false,
        });
    Ok(out)
}

/// Fails like Spin when a component is granted a label nobody configured.
pub fn ensure_granted_are_configured(
    grants: &[(String, Vec<String>)],
    configured: &HashMap<String, DatabaseConfig>,
) -> Result<()> {
    let errors: Vec<String> = grants
        .iter()
        .flat_map(|(component, labels)| {
            labels
                .iter()
                .filter(|l| !configured.contains_key(*l))
                .map(move |l| format!("- Component {component} uses database '{l}'"))
        })
        .collect();
    if errors.is_empty() {
        return Ok(());
    }
    Err(anyhow!(
        "One or more components use SQLite databases which are not defined.\n\
         Check the spelling, or pass a runtime configuration file that defines these stores.\n\
         See https://spinframework.dev/dynamic-configuration#sqlite-storage-runtime-configuration\n\
         Details:\n{}",
        errors.join("\n")
    ))
}

/// The app-wide database registry: one libsql `Database` handle per label,
/// opened on first use (opening is async in libsql, loading is not).
pub struct Databases {
    dbs: HashMap<String, (DatabaseConfig, tokio::sync::OnceCell<libsql::Database>)>,
}

impl Databases {
    pub fn new(configs: HashMap<String, DatabaseConfig>) -> Self {
        let dbs = configs
            .into_iter()
            .map(|(label, cfg)| (label, (cfg, tokio::sync::OnceCell::new())))
            .collect();
        Self { dbs }
    }

    async fn database(cfg: &DatabaseConfig) -> Result<libsql::Database, libsql::Error> {
        match cfg {
            DatabaseConfig::Local { path, .. } => {
                let p = path.clone().unwrap_or_else(|| PathBuf::from(":memory:"));
                libsql::Builder::new_local(p).build().await
            }
            DatabaseConfig::Remote { url, token } => {
                libsql::Builder::new_remote(url.clone(), token.clone())
                    .build()
                    .await
            }
        }
    }

    async fn connect(&self, label: &str) -> Result<libsql::Connection, Error> {
        let (cfg, cell) = self.dbs.get(label).ok_or(Error::NoSuchDatabase)?;
        if let DatabaseConfig::Local {
            path: Some(path), ..
        } = cfg
            && let Some(parent) = path.parent()
        {
            // Spin creates the default database's directory when it is used.
            std::fs::create_dir_all(parent).map_err(|e| Error::Io(e.to_string()))?;
        }
        let db = cell
            .get_or_try_init(|| Self::database(cfg))
            .await
            .map_err(io_error)?;
        let conn = db.connect().map_err(io_error)?;
        if let DatabaseConfig::Local {
            allow_attach_file, ..
        } = cfg
        {
            conn.busy_timeout(BUSY_TIMEOUT).map_err(io_error)?;
            if !allow_attach_file {
                // Like Spin: only temporary and in-memory databases may be ATTACHed.
                conn.authorizer(Some(Arc::new(|ctx: &libsql::AuthContext| {
                    match ctx.action {
                        libsql::AuthAction::Attach { filename }
                            if !matches!(filename, "" | ":memory:") =>
                        {
                            libsql::Authorization::Deny
                        }
                        _ => libsql::Authorization::Allow,
                    }
                })))
                .map_err(io_error)?;
            }
        }
        Ok(conn)
    }
}

/// Per-instance SQLite state.
pub struct SqliteState {
    pub allowed: Arc<HashSet<String>>,
    pub databases: Arc<Databases>,
}

/// What the SQLite interface of one instance works on: its databases and
/// the instance's resource table (where its connections live).
pub struct SqliteView<'a> {
    pub state: &'a SqliteState,
    pub table: &'a mut ResourceTable,
}

/// Marks [`SqliteView`] as the data the SQLite bindings are given (wasmtime's
/// pattern for a host interface that sees part of the store's state).
pub struct HasSqlite;

impl HasData for HasSqlite {
    type Data<'a> = SqliteView<'a>;
}

/// The host side of a `connection` resource.
pub struct Connection {
    conn: libsql::Connection,
}

fn io_error(e: libsql::Error) -> Error {
    match e {
        // rusqlite (what Spin uses) prints just SQLite's message.
        libsql::Error::SqliteFailure(_, msg) => Error::Io(msg),
        other => Error::Io(other.to_string()),
    }
}

fn to_libsql(v: Value) -> libsql::Value {
    match v {
        Value::Integer(i) => libsql::Value::Integer(i),
        Value::Real(r) => libsql::Value::Real(r),
        Value::Text(t) => libsql::Value::Text(t),
        Value::Blob(b) => libsql::Value::Blob(b),
        Value::Null => libsql::Value::Null,
    }
}

fn from_libsql(v: libsql::Value) -> Value {
    match v {
        libsql::Value::Null => Value::Null,
        libsql::Value::Integer(i) => Value::Integer(i),
        libsql::Value::Real(r) => Value::Real(r),
        libsql::Value::Text(t) => Value::Text(t),
        libsql::Value::Blob(b) => Value::Blob(b),
    }
}

fn value_size(v: &Value) -> usize {
    std::mem::size_of::<Value>()
        + match v {
            Value::Text(t) => t.len(),
            Value::Blob(b) => b.len(),
            _ => 0,
        }
}

async fn run_query(
    conn: &libsql::Connection,
    sql: &str,
    params: Vec<Value>,
) -> Result<QueryResult, Error> {
    let stmt = conn.prepare(sql).await.map_err(io_error)?;
    // rusqlite's `bind_parameters` stops at one past the expected count, so
    // too many parameters reports "Got n+1"; mirror its message.
    let expected = stmt.parameter_count();
    if params.len() != expected {
        let got = params.len().min(expected + 1);
        return Err(Error::Io(format!(
            "Wrong number of parameters passed to query. Got {got}, needed {expected}"
        )));
    }
    let columns: Vec<String> = stmt
        .columns()
        .iter()
        .map(|c| c.name().to_string())
        .collect();
    let params: Vec<libsql::Value> = params.into_iter().map(to_libsql).collect();
    let mut rows = stmt
        .query(libsql::params::Params::Positional(params))
        .await
        .map_err(io_error)?;
    let mut out = Vec::new();
    let mut bytes = std::mem::size_of::<QueryResult>();
    let ncols = columns.len() as i32;
    while let Some(row) = rows.next().await.map_err(io_error)? {
        let mut values = Vec::with_capacity(columns.len());
        for i in 0..ncols {
            values.push(from_libsql(row.get_value(i).map_err(io_error)?));
        }
        bytes += values.iter().map(value_size).sum::<usize>();
        if bytes > MAX_RESULT_BYTES {
            return Err(Error::Io(format!(
                "query result exceeds limit of {MAX_RESULT_BYTES} bytes"
            )));
        }
        out.push(RowResult { values });
    }
    Ok(QueryResult { columns, rows: out })
}

/// Runs blocking SQLite work off the async workers: a local query may sit in
/// SQLite's busy handler for seconds, which must not stall other requests.
async fn blocking<T: Send + 'static>(
    f: impl std::future::Future<Output = Result<T, Error>> + Send + 'static,
) -> Result<T, Error> {
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || handle.block_on(f))
        .await
        .map_err(|e| Error::Io(format!("internal runtime error: {e}")))?
}

impl wit::Host for SqliteView<'_> {}

impl wit::HostConnection for SqliteView<'_> {
    async fn open(&mut self, database: String) -> Result<Resource<Connection>, Error> {
        let (state, table) = (self.state, &mut *self.table);
        if !state.allowed.contains(&database) {
            return Err(Error::AccessDenied);
        }
        let dbs = state.databases.clone();
        let conn = blocking(async move { dbs.connect(&database).await }).await?;
        table
            .push(Connection { conn })
            .map_err(|_| Error::Io("too many connections opened".to_string()))
    }

    async fn execute(
        &mut self,
        this: Resource<Connection>,
        statement: String,
        parameters: Vec<Value>,
    ) -> Result<QueryResult, Error> {
        let conn = self
            .table
            .get(&this)
            .map_err(|_| Error::InvalidConnection)?
            .conn
            .clone();
        blocking(async move { run_query(&conn, &statement, parameters).await }).await
    }

    async fn drop(&mut self, this: Resource<Connection>) -> wasmtime::Result<()> {
        let _ = self.table.delete(this);
        Ok(())
    }
}
