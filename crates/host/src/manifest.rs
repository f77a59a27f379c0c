//! The subset of Spin's manifest v2 (`spin.toml`) that the host runs.
//!
//! Field names and shapes follow Spin's crates/manifest/src/schema/v2.rs. Keys
//! this host has no use for (build, tool, description, ...) are accepted and
//! ignored so that the same file works under `spin up` and here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail, ensure};
use serde::Deserialize;

use crate::routes::RouteConfig;

#[derive(Debug, Deserialize)]
pub struct Manifest {
    pub spin_manifest_version: toml::Value,
    pub application: Application,
    #[serde(default)]
    pub variables: BTreeMap<String, Variable>,
    #[serde(default, rename = "trigger")]
    pub triggers: BTreeMap<String, Vec<Trigger>>,
    #[serde(default, rename = "component")]
    pub components: indexmap_lite::OrderedMap<Component>,
}

#[derive(Debug, Deserialize)]
pub struct Application {
    pub name: String,
    #[serde(default)]
    pub version: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variable {
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub default: Option<String>,
    #[serde(default)]
    pub secret: bool,
}

#[derive(Debug, Deserialize)]
pub struct Trigger {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub component: Option<toml::Value>,
    #[serde(default)]
    pub route: Option<RouteConfig>,
    #[serde(default)]
    pub executor: Option<toml::Value>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Component {
    pub source: toml::Value,
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    #[serde(default)]
    pub files: Vec<FilesMount>,
    #[serde(default, alias = "sqlite-databases")]
    pub sqlite_databases: Vec<String>,
    /// `(scheme)://(host)[:port]` entries, `{{ var }}` templates allowed;
    /// parsed and checked by [`crate::outbound`].
    #[serde(default)]
    pub allowed_outbound_hosts: Vec<String>,
    /// Deprecated Spin field; refused at load (see `App::load`).
    #[serde(default)]
    pub allowed_http_hosts: Vec<String>,
    #[serde(default)]
    pub dependencies: Option<toml::Table>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum FilesMount {
    Pattern(String),
    Placement { source: String, destination: String },
}

/// One HTTP route bound to a component.
#[derive(Debug, Clone)]
pub struct HttpTrigger {
    pub component: String,
    pub route: RouteConfig,
}

/// A parsed and checked manifest plus where it lives.
#[derive(Debug)]
pub struct App {
    pub dir: PathBuf,
    pub manifest: Manifest,
    pub http_triggers: Vec<HttpTrigger>,
}

impl App {
    pub fn load(path: &Path) -> Result<App> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("failed to read manifest '{}'", path.display()))?;
        let manifest: Manifest = toml::from_str(&text)
            .with_context(|| format!("failed to parse manifest '{}'", path.display()))?;
        ensure!(
            manifest.spin_manifest_version.as_integer() == Some(2),
            "only spin_manifest_version = 2 is supported"
        );
        let dir = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let dir = if dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            dir
        };

        for (name, var) in &manifest.variables {
            // Spin's loader (crates/loader/src/local.rs, `locked_variable`).
            ensure!(
                var.required ^ var.default.is_some(),
                "invalid variable {name:?}: must be `required` OR have a `default`"
            );
        }

        let mut http_triggers = Vec::new();
        for (kind, triggers) in &manifest.triggers {
            if kind != "http" {
                bail!("trigger type {kind:?} is not supported by vigil-host (only http)");
            }
            for t in triggers {
                let component = match &t.component {
                    Some(toml::Value::String(id)) => id.clone(),
                    Some(_) => bail!(
                        "inline components in [[trigger.http]] are not supported by vigil-host; use a [component.<id>] table"
                    ),
                    None => bail!("a [[trigger.http]] entry has no component"),
                };
                ensure!(
                    manifest.components.get(&component).is_some(),
                    "trigger {} refers to unknown component {component:?}",
                    t.id.as_deref().unwrap_or("(unnamed)")
                );
                if let Some(executor) = &t.executor {
                    let ok = executor
                        .get("type")
                        .and_then(|v| v.as_str())
                        .is_none_or(|t| t == "http" || t == "spin");
                    ensure!(
                        ok,
                        "component {component:?}: only the http executor is supported"
                    );
                }
                let route = t
                    .route
                    .clone()
                    .ok_or_else(|| anyhow!("trigger for component {component:?} has no route"))?;
                http_triggers.push(HttpTrigger { component, route });
            }
        }

        for (id, c) in manifest.components.iter() {
            ensure!(
                c.allowed_http_hosts.is_empty(),
                "component {id:?} uses the deprecated `allowed_http_hosts`, which vigil-host does not support; use `allowed_outbound_hosts`"
            );
            if c.dependencies.as_ref().is_some_and(|d| !d.is_empty()) {
                bail!(
                    "component {id:?} declares [dependencies]; vigil-host runs only pre-composed components (compose with wac at build time)"
                );
            }
        }

        Ok(App {
            dir,
            manifest,
            http_triggers,
        })
    }

    /// The path of the `.wasm` file a component's `source` names.
    pub fn component_source(&self, id: &str) -> Result<PathBuf> {
        let c = self
            .manifest
            .components
            .get(id)
            .ok_or_else(|| anyhow!("unknown component {id:?}"))?;
        match &c.source {
            toml::Value::String(p) => Ok(self.dir.join(p)),
            _ => bail!(
                "component {id:?}: only local file sources are supported by vigil-host (no url/registry sources)"
            ),
        }
    }
}

/// Components are an ordered table in the manifest; keep that order (it
/// decides nothing semantically, but makes messages and banners stable).
pub mod indexmap_lite {
    use serde::Deserialize;
    use serde::de::{Deserializer, MapAccess, Visitor};

    #[derive(Debug)]
    pub struct OrderedMap<V>(pub Vec<(String, V)>);

    impl<V> Default for OrderedMap<V> {
        fn default() -> Self {
            Self(Vec::new())
        }
    }

    impl<V> OrderedMap<V> {
        pub fn get(&self, k: &str) -> Option<&V> {
            self.0.iter().find(|(key, _)| key == k).map(|(_, v)| v)
        }
        pub fn iter(&self) -> impl Iterator<Item = (&String, &V)> {
            self.0.iter().map(|(k, v)| (k, v))
        }
    }

    impl<'de, V: Deserialize<'de>> Deserialize<'de> for OrderedMap<V> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V2<V>(std::marker::PhantomData<V>);
            impl<'de, V: Deserialize<'de>> Visitor<'de> for V2<V> {
                type Value = OrderedMap<V>;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("a table of components")
                }
                fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                    let mut out = Vec::new();
                    while let Some((k, v)) = m.next_entry::<String, V>()? {
                        out.push((k, v));
                    }
                    Ok(OrderedMap(out))
                }
            }
            d.deserialize_map(V2(std::marker::PhantomData))
        }
    }
}
