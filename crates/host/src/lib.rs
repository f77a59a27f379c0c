//! `vigil-host`: a wasmtime host that runs Vigil's Spin app without Spin.
//!
//! It reads a Spin manifest v2 (`spin.toml`), compiles exactly the `.wasm`
//! files the components' `source`s name (once, with wasmtime's on-disk cache),
//! and serves HTTP the way `spin up` does: Spin's route matching and `spin-*`
//! request headers, and a FRESH component instance (new `Store`) per request.
//! The host interfaces match Spin 4.0.2's, and where Spin's behaviour is
//! surprising the code says which Spin source file decides it.
//!
//! Layout — one module per concern:
//! * [`manifest`]: the `spin.toml` subset we run (components, triggers, variables).
//! * [`routes`]: `[[trigger.http]]` routing with Spin's precedence rules.
//! * [`variables`]: `fermyon:spin/variables@2.0.0` (templates, `SPIN_VARIABLE_*`).
//! * [`outbound`]: `wasi:http/outgoing-handler` under Spin's `allowed_outbound_hosts`
//!   (the entry grammar, one component's policy, and sending: a file each).
//! * [`sqlite`]: `fermyon:spin/sqlite@2.0.0` over libSQL, Spin's runtime-config format.
//! * [`engine`]: wasmtime engine/linker, per-component `ProxyPre`, per-request stores.
//! * [`server`]: hyper server, Spin's headers, the wasi:http incoming-handler call.
//! * [`launch`]: runs an app under this host or real `spin up` as a child
//!   process (end-to-end tests, xtask, benchmarks).
//!
//! The WIT for the two `fermyon:spin` interfaces lives in `wit/spin.wit`.

pub mod engine;
pub mod launch;
pub mod manifest;
pub mod outbound;
pub mod routes;
pub mod server;
pub mod sqlite;
pub mod variables;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};

/// Host-side bindings for `fermyon:spin/{sqlite,variables}@2.0.0`.
pub mod bindings {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "fermyon:spin/host",
        imports: { default: async },
        with: {
            "fermyon:spin/sqlite.connection": crate::sqlite::Connection,
        },
    });
}

/// What to run.
#[derive(Debug, Clone)]
pub struct HostOptions {
    /// The `spin.toml` to run.
    pub manifest: PathBuf,
    /// A Spin-format runtime config file (`--runtime-config-file`).
    pub runtime_config: Option<PathBuf>,
}

/// A loaded, compiled app ready to serve.
pub struct Host {
    app: Arc<server::App>,
    /// How long compiling (or loading from cache) all components took.
    pub compile_ms: u128,
}

impl Host {
    /// Parses the manifest and runtime config, validates variables and
    /// database grants like `spin up` does, and compiles every routed component.
    pub fn load(opts: HostOptions) -> Result<Host> {
        let app = manifest::App::load(&opts.manifest)?;

        let runtime_config: Option<toml::Table> = match &opts.runtime_config {
            Some(path) => {
                let text = std::fs::read_to_string(path).with_context(|| {
                    format!("failed to read runtime config file '{}'", path.display())
                })?;
                Some(toml::from_str(&text).with_context(|| {
                    format!(
                        "failed to parse runtime config file '{}' as toml",
                        path.display()
                    )
                })?)
            }
            None => None,
        };

        let mut resolver = variables::Resolver::new(
            app.manifest.variables.clone(),
            variables::EnvProvider::from_process(),
        )?;
        for (id, c) in app.manifest.components.iter() {
            resolver
                .add_component(id, &c.variables)
                .with_context(|| format!("component {id:?} has invalid variables"))?;
        }
        resolver.ensure_required_resolvable()?;
        let outbound = outbound::OutboundPolicy::load_all(&app.manifest, &resolver)?;

        let cwd = std::env::current_dir().context("failed to get current working directory")?;
        let dbs = sqlite::resolve_databases(runtime_config.as_ref(), &cwd, &app.dir.join(".spin"))?;
        let grants: Vec<(String, Vec<String>)> = app
            .manifest
            .components
            .iter()
            .map(|(id, c)| (id.clone(), c.sqlite_databases.clone()))
            .collect();
        sqlite::ensure_granted_are_configured(&grants, &dbs)?;

        let router = routes::Router::build(
            app.http_triggers
                .iter()
                .map(|t| (t.component.as_str(), &t.route)),
        )?;
        for (route, replaced, effective) in &router.duplicates {
            eprintln!(
                "vigil-host: route {route} of {replaced} is a duplicate and will never be used (effective: {effective})"
            );
        }

        let (runtime, timings) =
            engine::Runtime::load(&app, sqlite::Databases::new(dbs), resolver, &outbound)?;
        let version = app
            .manifest
            .application
            .version
            .clone()
            .filter(|v| !v.is_empty());
        Ok(Host {
            app: Arc::new(server::App {
                runtime,
                router,
                name: app.manifest.application.name.clone(),
                version,
            }),
            compile_ms: timings.compile_ms,
        })
    }

    /// The compiled components (for instantiation benchmarks).
    pub fn runtime(&self) -> &engine::Runtime {
        &self.app.runtime
    }

    /// The routes as `(component, path, is_wildcard)`, for a start-up banner.
    pub fn routes(&self) -> Vec<(String, String, bool)> {
        self.app.router.routes()
    }

    /// Serves HTTP on `listener` until `shutdown` resolves.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<()> {
        server::serve(self.app, listener, shutdown).await
    }
}
