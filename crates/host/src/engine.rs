//! The wasmtime side: engine configuration, one compiled component and
//! `ProxyPre` per manifest component, and a fresh `Store` + instance per request.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, anyhow};
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store};
use wasmtime_wasi::{DirPerms, FilePerms, WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::WasiHttpCtx;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::{WasiHttpCtxView, WasiHttpView};

use crate::bindings;
use crate::manifest::{App, FilesMount};
use crate::outbound::{OutboundHttp, OutboundPolicy};
use crate::sqlite::{Databases, HasSqlite, SqliteState, SqliteView};
use crate::variables::Resolver;

/// Everything one component instance can reach; lives exactly as long as its request.
pub struct State {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    hooks: OutboundHttp,
    sqlite: SqliteState,
    component_id: Arc<str>,
    variables: Arc<Resolver>,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for State {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

impl bindings::fermyon::spin::variables::Host for State {
    async fn get(
        &mut self,
        name: String,
    ) -> Result<String, bindings::fermyon::spin::variables::Error> {
        self.variables
            .resolve(&self.component_id, &name)
            .map_err(Into::into)
    }
}

/// A component ready to be instantiated.
pub struct PreparedComponent {
    pub id: Arc<str>,
    pub pre: ProxyPre<State>,
    env: Vec<(String, String)>,
    mounts: Vec<(PathBuf, String)>,
    allowed_dbs: Arc<HashSet<String>>,
    outbound: Arc<OutboundPolicy>,
}

/// The compiled app: shared by every request.
pub struct Runtime {
    pub engine: Engine,
    pub components: HashMap<String, Arc<PreparedComponent>>,
    databases: Arc<Databases>,
    variables: Arc<Resolver>,
}

/// Figures from start-up, for the benchmark report.
#[derive(Debug, Clone, Copy)]
pub struct LoadTimings {
    pub compile_ms: u128,
}

fn env_usize(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

pub fn engine() -> Result<Engine> {
    let mut config = Config::new();
    config.wasm_component_model(true);
    // The on-disk cache (wasmtime's default location, like `spin up`) turns a
    // restart's compile into a file read.
    match wasmtime::Cache::new(wasmtime::CacheConfig::new()) {
        Ok(cache) => {
            config.cache(Some(cache));
        }
        Err(e) => eprintln!("vigil-host: compilation cache disabled: {e:#}"),
    }
    // Sized like Spin's defaults (crates/core/src/lib.rs): instantiation from
    // the pool is what keeps a fresh instance per request cheap.
    let max = env_usize("VIGIL_HOST_MAX_INSTANCES", 1000);
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(max)
        .total_memories(max)
        .total_tables(2 * max)
        .total_stacks(max)
        .total_core_instances(4 * max)
        .max_component_instance_size(10 << 20)
        .max_core_instance_size(10 << 20)
        .max_core_instances_per_component(200)
        .max_tables_per_component(64)
        .max_memories_per_component(32)
        .max_tables_per_module(2)
        .max_memories_per_module(2)
        .max_memory_size(4 << 30);
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    let engine = match Engine::new(&config) {
        Ok(e) => e,
        Err(e) => {
            // Some machines cannot reserve the pool's virtual memory.
            eprintln!("vigil-host: pooling allocator unavailable ({e}); using on-demand");
            config.allocation_strategy(InstanceAllocationStrategy::OnDemand);
            Engine::new(&config)?
        }
    };
    Ok(engine)
}

fn linker(engine: &Engine) -> Result<Linker<State>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    bindings::fermyon::spin::sqlite::add_to_linker::<State, HasSqlite>(&mut linker, |s| {
        SqliteView {
            state: &s.sqlite,
            table: &mut s.table,
        }
    })?;
    bindings::fermyon::spin::variables::add_to_linker::<State, HasSelf<State>>(&mut linker, |s| s)?;
    Ok(linker)
}

/// Guest mounts for `files`. Spin copies matching files into a temp dir; we
/// mount directories read-only in place, which exposes the same paths.
fn mounts(app_dir: &Path, files: &[FilesMount]) -> Result<Vec<(PathBuf, String)>> {
    let mut out = Vec::new();
    for f in files {
        match f {
            FilesMount::Placement {
                source,
                destination,
            } => {
                let src = app_dir.join(source);
                anyhow::ensure!(
                    src.is_dir(),
                    "files: source {source:?} must be a directory for vigil-host"
                );
                out.push((src, destination.clone()));
            }
            FilesMount::Pattern(p) => {
                // Mount the directory part before any glob character.
                let fixed: Vec<&str> = p
                    .split('/')
                    .take_while(|seg| !seg.contains(['*', '?', '[', '{']))
                    .collect();
                let mut rel = fixed.join("/");
                if app_dir.join(&rel).is_file() {
                    rel = Path::new(&rel)
                        .parent()
                        .map(|p| p.to_string_lossy().into_owned())
                        .unwrap_or_default();
                }
                let guest = format!("/{}", rel.trim_start_matches("./"));
                out.push((app_dir.join(&rel), guest));
            }
        }
    }
    Ok(out)
}

impl Runtime {
    pub fn load(
        app: &App,
        databases: Databases,
        variables: Resolver,
        outbound: &HashMap<String, Arc<OutboundPolicy>>,
    ) -> Result<(Self, LoadTimings)> {
        let engine = engine()?;
        let linker = linker(&engine)?;
        let databases = Arc::new(databases);
        let variables = Arc::new(variables);
        let start = Instant::now();
        let mut components = HashMap::new();
        // Only components that some trigger routes to are compiled, like Spin.
        let mut ids: Vec<&str> = app
            .http_triggers
            .iter()
            .map(|t| t.component.as_str())
            .collect();
        ids.sort();
        ids.dedup();
        for id in ids {
            let path = app.component_source(id)?;
            let component = Component::from_file(&engine, &path)
                .map_err(anyhow::Error::from)
                .with_context(|| {
                    format!("failed to load component {id:?} from '{}'", path.display())
                })?;
            // A component importing an interface the host lacks (say
            // fermyon:spin/key-value) fails here, at load, naming the import.
            let pre = linker
                .instantiate_pre(&component)
                .map_err(anyhow::Error::from)
                .with_context(|| format!("component {id:?} cannot be linked"))?;
            let pre = ProxyPre::new(pre).map_err(|e| {
                anyhow!("component {id:?} does not export wasi:http/incoming-handler@0.2: {e}")
            })?;
            let c = app.manifest.components.get(id).expect("checked at load");
            components.insert(
                id.to_string(),
                Arc::new(PreparedComponent {
                    id: id.into(),
                    pre,
                    env: c
                        .environment
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                    mounts: mounts(&app.dir, &c.files)?,
                    allowed_dbs: Arc::new(c.sqlite_databases.iter().cloned().collect()),
                    outbound: outbound
                        .get(id)
                        .cloned()
                        .ok_or_else(|| anyhow!("no outbound policy for component {id:?}"))?,
                }),
            );
        }
        let timings = LoadTimings {
            compile_ms: start.elapsed().as_millis(),
        };
        Ok((
            Self {
                engine,
                components,
                databases,
                variables,
            },
            timings,
        ))
    }

    /// A new store for one request to `component`, outside any server:
    /// self-requests (`http://self.alt/...`) fail with `HttpRequestUriInvalid`.
    pub fn new_store(&self, component: &PreparedComponent) -> Result<Store<State>> {
        self.new_request_store(component, None)
    }

    /// A new store for one request to `component` served on `listen_addr`,
    /// where the component's self-requests go.
    pub fn new_request_store(
        &self,
        component: &PreparedComponent,
        listen_addr: Option<SocketAddr>,
    ) -> Result<Store<State>> {
        let mut wasi = WasiCtx::builder();
        wasi.inherit_stdout().inherit_stderr().envs(&component.env);
        for (host, guest) in &component.mounts {
            wasi.preopened_dir(host, guest, DirPerms::READ, FilePerms::READ)?;
        }
        let state = State {
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            hooks: OutboundHttp::new(component.outbound.clone(), listen_addr),
            sqlite: SqliteState {
                allowed: component.allowed_dbs.clone(),
                databases: self.databases.clone(),
            },
            component_id: component.id.clone(),
            variables: self.variables.clone(),
        };
        Ok(Store::new(&self.engine, state))
    }
}
