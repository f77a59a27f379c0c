//! The end-to-end harness: starts Vigil under each runtime on a random port
//! with a fresh, migrated database and a test signing key, and gives tests a
//! [`TestApp`] with one helper per thing they do.
//!
//! The suite is a plain binary (`harness = false`, see `e2e/main.rs`) so that
//! each runtime is started once and shared by every case, and so that a
//! missing runtime is reported as skipped, never silently dropped.
//!
//! `VIGIL_BASE_URL` points the suite at an already running instance instead;
//! `VIGIL_TEST_SIGNING_KEY` (base64url seed) and `VIGIL_TEST_SIGNING_KID`
//! (default `dev-1`) then give it a key that instance trusts.

pub mod client;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use vigil_core::Role;
use vigil_core::token::{ACCESS_TOKEN_TTL_SECS, Claims, TokenSigner, jwks_json};
use vigil_host::launch::{LaunchOptions, Running, Runtime, launch};

pub use client::Resp;

pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A running Vigil and what a test needs to talk to it.
pub struct TestApp {
    /// `host`, `spin` or `external`.
    pub runtime: &'static str,
    pub base_url: String,
    pub signer: TokenSigner,
    /// The database file, when the suite started the app itself.
    pub db: Option<PathBuf>,
    _running: Option<Running>,
    _dir: Option<tempfile::TempDir>,
}

impl TestApp {
    /// Start the app from `spin.toml` under `runtime`, with its own database.
    pub fn start(runtime: Runtime) -> Result<TestApp> {
        let name = match runtime {
            Runtime::Host => "host",
            Runtime::Spin => "spin",
        };
        let dir = tempfile::Builder::new()
            .prefix(&format!("vigil-e2e-{name}-"))
            .tempdir()?;
        let db = dir.path().join("vigil.db");
        migrate(&db)?;
        let runtime_config = dir.path().join("runtime-config.toml");
        // An absolute path: Spin resolves a relative one against the app, not this file.
        std::fs::write(
            &runtime_config,
            format!(
                "[sqlite_database.default]\ntype = \"spin\"\npath = {:?}\n",
                db.display().to_string()
            ),
        )?;
        let signer = TokenSigner::generate("test-1");
        let running = launch(LaunchOptions {
            runtime,
            manifest: workspace_root().join("spin.toml"),
            runtime_config: Some(runtime_config),
            env: vec![(
                "SPIN_VARIABLE_JWT_PUBLIC_KEYS".into(),
                jwks_json(&[signer.public_jwk()]),
            )],
            workdir: dir.path().to_path_buf(),
        })
        .with_context(|| format!("starting Vigil under {name}"))?;
        Ok(TestApp {
            runtime: name,
            base_url: running.base_url.clone(),
            signer,
            db: Some(db),
            _running: Some(running),
            _dir: Some(dir),
        })
    }

    /// An instance someone else runs (`VIGIL_BASE_URL`).
    pub fn external(base_url: String) -> Result<TestApp> {
        let kid = std::env::var("VIGIL_TEST_SIGNING_KID").unwrap_or_else(|_| "dev-1".into());
        let signer = match std::env::var("VIGIL_TEST_SIGNING_KEY") {
            Ok(seed) => TokenSigner::from_seed_b64(&kid, &seed).map_err(anyhow::Error::msg)?,
            // Token-bearing cases will then see 401s and fail loudly.
            Err(_) => TokenSigner::generate(&kid),
        };
        Ok(TestApp {
            runtime: "external",
            base_url,
            signer,
            db: None,
            _running: None,
            _dir: None,
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// Claims for a user with `role`, valid now.
    pub fn claims(&self, role: Role) -> Claims {
        let now = vigil_core::time::now_millis() / 1000;
        Claims {
            iss: "vigil".into(),
            aud: "vigil".into(),
            sub: format!("test-{}", role.as_str()),
            jti: vigil_core::id::new_id(),
            iat: now,
            exp: now + ACCESS_TOKEN_TTL_SECS,
            nbf: None,
            role: Some(role),
            scopes: vec![],
        }
    }

    /// A valid access token for a user with `role`.
    pub fn token(&self, role: Role) -> String {
        self.signer.sign(&self.claims(role))
    }

    pub fn get(&self, path: &str) -> Resp {
        self.request("GET", path, &[], None)
    }

    pub fn get_as(&self, role: Role, path: &str) -> Resp {
        let auth = format!("Bearer {}", self.token(role));
        self.request("GET", path, &[("authorization", &auth)], None)
    }

    pub fn post_json_as(&self, role: Role, path: &str, body: &serde_json::Value) -> Resp {
        let auth = format!("Bearer {}", self.token(role));
        let body = body.to_string();
        self.request(
            "POST",
            path,
            &[
                ("authorization", &auth),
                ("content-type", "application/json"),
            ],
            Some(body.as_bytes()),
        )
    }

    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Resp {
        client::request(method, &self.url(path), headers, body)
            .unwrap_or_else(|e| panic!("{method} {path} on {}: {e:#}", self.runtime))
    }

    /// Open the app's database directly (only when the suite started the app).
    pub fn db(&self) -> Option<vigil_db::Target> {
        self.db.clone().map(vigil_db::Target::Local)
    }
}

/// Apply the migrations to a fresh database file.
pub fn migrate(db: &Path) -> Result<()> {
    block_on(vigil_db::migrations::migrate(
        &vigil_db::Target::Local(db.to_path_buf()),
        &vigil_db::migrations::embedded(),
    ))?;
    Ok(())
}

/// Run a future to completion on a small runtime (the cases are synchronous).
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(f)
}

/// `SELECT count(*) …` against the app's database.
pub fn count(app: &TestApp, sql: &str) -> Option<i64> {
    let target = app.db()?;
    block_on(async {
        let conn = target.connect().await.expect("open test database");
        vigil_db::target::query_i64(&conn, sql, ())
            .await
            .expect("count query")
    })
}
