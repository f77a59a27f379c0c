//! The end-to-end harness: starts Vigil under each runtime on a random port
//! with a fresh, migrated database and a test signing key, and gives tests a
//! [`TestApp`] with one helper per thing they do.
//!
//! The suite is its own binary (`harness = false`, `libtest-mimic`, see
//! `e2e/main.rs`) so that each runtime is started once and shared by every
//! case, and so that a missing runtime, or a case that cannot run against the
//! app at hand ([`skip`]), is counted as ignored, never as passed.
//!
//! Next to each app runs a `vigil relay` process (WebSocket push) on the
//! same database and key set: [`TestApp::relay_url`].
//!
//! `VIGIL_BASE_URL` points the suite at an already running instance instead;
//! `VIGIL_TEST_SIGNING_KEY` (base64url seed) and `VIGIL_TEST_SIGNING_KID`
//! (default `dev-1`) then give it a key that instance trusts.

pub mod client;
pub mod mosquitto;
pub mod sqld;
pub mod webhook;

use std::path::PathBuf;

use vigil_db::Target;

use anyhow::{Context, Result};
use vigil_core::Role;
use vigil_core::token::{Claims, TokenSigner, jwks_json};
use vigil_host::launch::{LaunchOptions, Running, Runtime, launch};

pub use client::Resp;

/// Why a case stopped without failing: it cannot run against this app.
/// The harness reports it ignored with the reason.
pub struct Skip(pub String);

/// The reason of a case that needs an app the suite started itself.
pub const NEEDS_OWN_APP: &str =
    "needs an app and database the suite started (VIGIL_BASE_URL is set)";

/// End the case here as ignored (not passed), with `reason`.
pub fn skip(reason: &str) -> ! {
    // Not a panic: no panic message, and the harness tells it apart.
    std::panic::resume_unwind(Box::new(Skip(reason.to_string())))
}
use sqld::Sqld;
use webhook::WebhookSink;

/// Where a leg of the suite runs the app.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Leg {
    /// The built-in wasmtime host, database in a local file.
    Host,
    /// `spin up`, database in a local file.
    Spin,
    /// `spin up`, database on a libSQL server (`sqld`) with JWT auth.
    SpinSqld,
}

impl Leg {
    pub fn name(self) -> &'static str {
        match self {
            Leg::Host => "host",
            Leg::Spin => "spin",
            Leg::SpinSqld => "spin+sqld",
        }
    }

    /// Why this leg cannot run here, if it cannot.
    pub fn missing(self) -> Option<&'static str> {
        let spin = Runtime::spin_binary().is_some();
        match self {
            Leg::Host => None,
            Leg::Spin if !spin => Some("spin not found (set VIGIL_SPIN or put spin on PATH)"),
            Leg::SpinSqld if !spin => Some("spin not found (set VIGIL_SPIN or put spin on PATH)"),
            Leg::SpinSqld if sqld::sqld_binary().is_none() => {
                Some("sqld not found (set VIGIL_SQLD or put sqld on PATH)")
            }
            _ => None,
        }
    }
}

pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A running Vigil and what a test needs to talk to it.
pub struct TestApp {
    /// `host`, `spin`, `spin+sqld` or `external`.
    pub runtime: &'static str,
    pub base_url: String,
    pub signer: TokenSigner,
    /// The app's database, when the suite started the app itself.
    pub db: Option<Target>,
    /// Receives the app's playbook webhooks (its `webhook_origin`).
    pub webhooks: Option<WebhookSink>,
    /// The relay's base URL (`http://127.0.0.1:<port>`; its socket is
    /// `/ws`), when the suite started the app.
    pub relay_url: Option<String>,
    // Dropped in this order: the relay, the app, then its database server, then the files.
    _relay: Option<RelayProcess>,
    _running: Option<Running>,
    _sqld: Option<Sqld>,
    _dir: Option<tempfile::TempDir>,
}

impl TestApp {
    /// Start the app from `spin.toml` for `leg`, with its own database.
    pub fn start(leg: Leg) -> Result<TestApp> {
        let name = leg.name();
        let dir = tempfile::Builder::new()
            .prefix(&format!("vigil-e2e-{}-", name.replace('+', "-")))
            .tempdir()?;
        let (db, sqld) = match leg {
            Leg::Host | Leg::Spin => (Target::Local(dir.path().join("vigil.db")), None),
            Leg::SpinSqld => {
                let sqld = Sqld::start(dir.path())?;
                (sqld.target(), Some(sqld))
            }
        };
        let runtime_config = db.spin_runtime_config();
        migrate(&db)?;
        seed_principals(&db)?;
        let runtime_config_path = dir.path().join("runtime-config.toml");
        std::fs::write(&runtime_config_path, runtime_config)?;
        let signer = TokenSigner::generate("test-1");
        let webhooks = WebhookSink::start()?;
        let mut env = app_variables(&signer);
        env.push((
            "SPIN_VARIABLE_WEBHOOK_ORIGIN".into(),
            webhooks.origin.clone(),
        ));
        env.push((
            "SPIN_VARIABLE_WEBHOOK_SECRET".into(),
            TEST_WEBHOOK_SECRET.into(),
        ));
        env.push((
            "SPIN_VARIABLE_GEOIP_DATABASES".into(),
            format!("/geoip/{}", write_test_geoip()?),
        ));
        let running = launch(LaunchOptions {
            runtime: if leg == Leg::Host {
                Runtime::Host
            } else {
                Runtime::Spin
            },
            manifest: workspace_root().join("spin.toml"),
            runtime_config: Some(runtime_config_path),
            env,
            workdir: dir.path().to_path_buf(),
        })
        .with_context(|| format!("starting Vigil under {name}"))?;
        // The suite's relay answers opened alerts with their playbooks, as
        // the app's own relay does; the other jobs run only in their case.
        let relay = RelayProcess::start(
            &db,
            &signer,
            dir.path(),
            &[
                ("VIGIL_RELAY_JOBS", "playbooks"),
                ("VIGIL_JOB_PLAYBOOKS_MS", "200"),
                ("VIGIL_WEBHOOK_ORIGIN", &webhooks.origin),
                ("VIGIL_WEBHOOK_SECRET", TEST_WEBHOOK_SECRET),
            ],
        )
        .with_context(|| format!("starting the relay for the {name} leg"))?;
        Ok(TestApp {
            runtime: name,
            base_url: running.base_url.clone(),
            signer,
            db: Some(db),
            webhooks: Some(webhooks),
            relay_url: Some(relay.url.clone()),
            _relay: Some(relay),
            _running: Some(running),
            _sqld: sqld,
            _dir: Some(dir),
        })
    }

    /// For what follows, a case needs the app and database the suite started:
    /// against an external app it ends here, reported ignored.
    pub fn needs_own_app(&self) {
        if self.db.is_none() {
            skip(NEEDS_OWN_APP)
        }
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
            webhooks: None,
            relay_url: None,
            _relay: None,
            _running: None,
            _sqld: None,
            _dir: None,
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// Claims for a user with `role`, valid now.
    pub fn claims(&self, role: Role) -> Claims {
        let now = vigil_core::time::now_millis() / 1000;
        let (user, session) = test_principal(role);
        Claims::user_access("vigil", "vigil", &user, role, &session, now)
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

    /// Submit a decision as the admin (a fresh `Idempotency-Key`); its id.
    pub fn submit_decision(&self, body: &serde_json::Value) -> String {
        let auth = format!("Bearer {}", self.token(Role::Admin));
        let key = vigil_core::id::new_id();
        let r = self.request(
            "POST",
            "/api/decisions",
            &[
                ("authorization", &auth),
                ("content-type", "application/json"),
                ("idempotency-key", &key),
            ],
            Some(body.to_string().as_bytes()),
        );
        assert_eq!(r.status, 201, "{}", r.text());
        r.json()["id"].as_str().unwrap().to_string()
    }

    /// A second app on this one's runtime and database, with `variables`
    /// (`name=value`, as `SPIN_VARIABLE_*`) over the suite's own; `None` when
    /// the suite did not start the app. The suite's tokens work on both; the
    /// second app's logs are in the returned directory.
    pub fn with_variables(
        &self,
        variables: &[(&str, &str)],
    ) -> Option<(Running, tempfile::TempDir)> {
        let db = self.db.as_ref()?;
        let dir = tempfile::tempdir().unwrap();
        let config_path = dir.path().join("runtime-config.toml");
        std::fs::write(&config_path, db.spin_runtime_config()).unwrap();
        let mut env = app_variables(&self.signer);
        for (name, value) in variables {
            let key = format!("SPIN_VARIABLE_{}", name.to_ascii_uppercase());
            env.retain(|(k, _)| *k != key);
            env.push((key, value.to_string()));
        }
        let running = launch(LaunchOptions {
            runtime: if self.runtime == "host" {
                Runtime::Host
            } else {
                Runtime::Spin
            },
            manifest: workspace_root().join("spin.toml"),
            runtime_config: Some(config_path),
            env,
            workdir: dir.path().to_path_buf(),
        })
        .expect("the app starts with these settings");
        Some((running, dir))
    }

    /// A JSON request with `bearer` and extra `headers` (If-Match …).
    pub fn send(
        &self,
        method: &str,
        path: &str,
        bearer: &str,
        headers: &[(&str, &str)],
        body: Option<&serde_json::Value>,
    ) -> Resp {
        let auth = format!("Bearer {bearer}");
        let mut all = vec![
            ("authorization", auth.as_str()),
            ("content-type", "application/json"),
        ];
        all.extend_from_slice(headers);
        let body = body.map(|b| b.to_string());
        self.request(method, path, &all, body.as_deref().map(str::as_bytes))
    }

    /// [`TestApp::send`] as the seeded user with `role`.
    pub fn send_as(
        &self,
        role: Role,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&serde_json::Value>,
    ) -> Resp {
        self.send(method, path, &self.token(role), headers, body)
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
}

/// A `vigil relay` process (the binary `cargo xtask test` builds), killed on drop.
pub struct RelayProcess {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    child: std::process::Child,
    log: PathBuf,
}

impl RelayProcess {
    /// Start `vigil relay` on a free port against `db`, trusting `signer`'s
    /// key, with `env` added (e.g. `VIGIL_RELAY_CLIENT_QUEUE`); its log goes
    /// to a file in `dir`. Returns once `/readyz` answers 200.
    pub fn start(
        db: &Target,
        signer: &TokenSigner,
        dir: &std::path::Path,
        env: &[(&str, &str)],
    ) -> Result<RelayProcess> {
        RelayProcess::start_with(&vigil_bin(), db, signer, dir, env)
    }

    /// [`RelayProcess::start`] with another build of `vigil` (benchmarks
    /// use the release one).
    pub fn start_with(
        bin: &std::path::Path,
        db: &Target,
        signer: &TokenSigner,
        dir: &std::path::Path,
        env: &[(&str, &str)],
    ) -> Result<RelayProcess> {
        RelayProcess::spawn(bin, db, signer, dir, env, true)
    }

    /// [`RelayProcess::start`] without waiting for `/readyz` (for a relay
    /// that is not meant to become ready).
    pub fn start_unready(
        db: &Target,
        signer: &TokenSigner,
        dir: &std::path::Path,
        env: &[(&str, &str)],
    ) -> Result<RelayProcess> {
        RelayProcess::spawn(&vigil_bin(), db, signer, dir, env, false)
    }

    fn spawn(
        bin: &std::path::Path,
        db: &Target,
        signer: &TokenSigner,
        dir: &std::path::Path,
        env: &[(&str, &str)],
        wait_ready: bool,
    ) -> Result<RelayProcess> {
        anyhow::ensure!(
            bin.exists(),
            "{} is missing: run `cargo xtask test` (it builds the binaries)",
            bin.display()
        );
        // The relay does not report an ephemeral port, so pick a free one.
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let log = dir.join(format!("relay-{port}.log"));
        let mut cmd = vigil_command(bin, db);
        cmd.arg("relay")
            .env("VIGIL_RELAY_LISTEN", format!("127.0.0.1:{port}"))
            .env("VIGIL_JWT_PUBLIC_KEYS", jwks_json(&[signer.public_jwk()]))
            .env("VIGIL_RELAY_POLL_MS", "20")
            // Scheduled jobs change rows other cases look at: only the
            // cases about them turn them on.
            .env("VIGIL_RELAY_JOBS", "none")
            .envs(env.iter().map(|(k, v)| (*k, *v)))
            .stdin(std::process::Stdio::null())
            .stdout(std::fs::File::create(&log)?)
            .stderr(std::fs::File::create(&log)?);
        let child = cmd.spawn().context("starting vigil relay")?;
        let mut relay = RelayProcess {
            url: format!("http://127.0.0.1:{port}"),
            child,
            log,
        };
        if !wait_ready {
            return Ok(relay);
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while std::time::Instant::now() < deadline {
            if let Ok(r) = client::request("GET", &format!("{}/readyz", relay.url), &[], None)
                && r.status == 200
            {
                return Ok(relay);
            }
            if let Ok(Some(status)) = relay.child.try_wait() {
                anyhow::bail!("vigil relay exited with {status}: {}", relay.logs());
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        anyhow::bail!("vigil relay did not become ready: {}", relay.logs())
    }

    /// What the relay logged so far (one JSON line per connection event).
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The relay's resident memory in MB (Linux), for benchmarks.
    pub fn resident_mb(&self) -> Option<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let kb: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        Some(kb / 1024.0)
    }

    /// The relay's `/metrics` value of `name` (0 when absent).
    pub fn metric(&self, name: &str) -> f64 {
        let text = client::request("GET", &format!("{}/metrics", self.url), &[], None)
            .map(|r| r.text())
            .unwrap_or_default();
        text.lines()
            .filter_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .find_map(|v| v.trim().parse().ok())
            .unwrap_or(0.0)
    }
}

impl RelayProcess {
    /// `kill -9`: no shutdown, no flush, whatever was in flight is lost.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl TestApp {
    /// A relay of the test's own next to the suite's (same database and
    /// key), with extra settings; `None` when the suite did not start the app.
    pub fn start_relay(&self, env: &[(&str, &str)]) -> Option<RelayProcess> {
        let db = self.db.as_ref()?;
        let dir = self._dir.as_ref()?;
        Some(
            RelayProcess::start(db, &self.signer, dir.path(), env)
                .unwrap_or_else(|e| panic!("starting a relay on {}: {e:#}", self.runtime)),
        )
    }

    /// The suite's relay's log, for failure messages.
    pub fn relay_logs(&self) -> String {
        self._relay
            .as_ref()
            .map(RelayProcess::logs)
            .unwrap_or_default()
    }

    /// The suite's relay's `/metrics` value of `name`.
    pub fn relay_metric(&self, name: &str) -> f64 {
        self._relay.as_ref().map_or(0.0, |r| r.metric(name))
    }
}

/// The `vigil` command `bin` on database `db` (a file, or a libSQL server).
pub fn vigil_command(bin: &std::path::Path, db: &Target) -> std::process::Command {
    let mut cmd = std::process::Command::new(bin);
    match db {
        Target::Local(path) => {
            cmd.arg("--database").arg(path);
        }
        Target::Remote { url, token } => {
            cmd.env("VIGIL_DATABASE_URL", url)
                .env("VIGIL_DATABASE_TOKEN", token);
        }
    }
    cmd
}

/// `target/<profile>/vigil`: next to the running binary (xtask), or next
/// to the `deps/` directory a test binary runs from.
pub fn vigil_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("the running binary's path");
    let dir = exe.parent().expect("target/<profile>/");
    let dir = if dir.ends_with("deps") {
        dir.parent().expect("target/<profile>/")
    } else {
        dir
    };
    dir.join("vigil")
}

/// A name no other case uses: `prefix-` and 8 random hex characters.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", &vigil_core::id::new_id()[..8])
}

/// A second ago, in RFC 3339: an `observed_at` every app accepts.
pub fn just_now() -> String {
    vigil_core::time::rfc3339(vigil_core::time::now_millis() - 1000)
}

/// The variables an app under test gets: `signer` both signs (in `auth`) and
/// verifies (everywhere), so tokens minted by the tests are accepted too.
pub fn app_variables(signer: &TokenSigner) -> Vec<(String, String)> {
    vec![
        (
            "SPIN_VARIABLE_JWT_PUBLIC_KEYS".into(),
            jwks_json(&[signer.public_jwk()]),
        ),
        ("SPIN_VARIABLE_JWT_SIGNING_KEY".into(), signer.seed_b64()),
        ("SPIN_VARIABLE_JWT_SIGNING_KID".into(), signer.kid().into()),
        // Encrypts TOTP secrets at rest (given to `auth` only).
        (
            "SPIN_VARIABLE_TOTP_ENCRYPTION_KEY".into(),
            vigil_core::secret_box::SecretBox::generate_b64(),
        ),
        // A key of its own signs evidence (given to `export` only); tests
        // read its public half from /api/export/keys, as anyone would.
        (
            "SPIN_VARIABLE_EXPORT_SIGNING_KEY".into(),
            TokenSigner::generate("unused").seed_b64(),
        ),
        (
            "SPIN_VARIABLE_EXPORT_SIGNING_KID".into(),
            TEST_EXPORT_KID.into(),
        ),
        // Where onboarding tokens tell sensors to register (never the Host).
        (
            "SPIN_VARIABLE_PUBLIC_BASE_URL".into(),
            TEST_PUBLIC_BASE_URL.into(),
        ),
        // Small, so the refusal of larger exports is tested.
        ("SPIN_VARIABLE_EXPORT_MAX_EVENTS".into(), "500".into()),
        // Supervisors must use 2FA in the suite's apps, so the policy is tested.
        (
            "SPIN_VARIABLE_MFA_REQUIRED_ROLES".into(),
            "supervisor".into(),
        ),
        // Zones, so destination criticality is part of what is tested.
        (
            "SPIN_VARIABLE_THREAT_ZONES".into(),
            TEST_THREAT_ZONES.into(),
        ),
    ]
}

/// The suite's `public_base_url`.
pub const TEST_PUBLIC_BASE_URL: &str = "https://vigil.test";

/// The `kid` of the suite's export signing key.
pub const TEST_EXPORT_KID: &str = "export-test-1";

/// The suite's `threat_zones`.
pub const TEST_THREAT_ZONES: &str = "10.20.0.0/16=ot:critical,10.0.0.0/8=internal:high";

/// The suite's `webhook_secret`: its apps sign their webhooks with it.
pub const TEST_WEBHOOK_SECRET: &str = "whsec-e2e";

/// Networks of the suite's GeoIP database (the country and AS of public
/// sources are looked up in it): `(CIDR, country, ASN, AS organisation)`.
pub const TEST_GEOIP: &[vigil_ingest::geo::testdb::Entry] = &[
    (
        "81.2.69.0/24",
        Some("GB"),
        Some(64_500),
        Some("Vigil Test Net"),
    ),
    (
        "2a02:cf40::/29",
        Some("NL"),
        Some(64_501),
        Some("Vigil Test Net 6"),
    ),
];

/// Write the suite's GeoIP database into the app's `geoip/` directory (which
/// Spin mounts at `/geoip`) and return its file name. Every leg writes the
/// same bytes; the rename makes each write atomic.
fn write_test_geoip() -> Result<String> {
    let name = "vigil-e2e-test.mmdb";
    let dir = workspace_root().join("geoip");
    let tmp = dir.join(format!("{name}.{}.tmp", vigil_core::id::new_id()));
    std::fs::write(&tmp, vigil_ingest::geo::testdb::build(TEST_GEOIP, 6))?;
    std::fs::rename(&tmp, dir.join(name))?;
    Ok(name.to_string())
}

/// The user id and session id of the seeded principal with `role`
/// (UUIDs, like every id the app makes).
pub fn test_principal(role: Role) -> (String, String) {
    let n = role as u8 as u64 + 1;
    (
        format!("00000000-0000-4000-8000-{n:012}"),
        format!("00000000-0000-4000-8000-{:012}", 100 + n),
    )
}

/// One user per role, each with a live session, so that tests can mint
/// tokens for every role (a user's token must name a live session).
pub fn seed_principals(db: &Target) -> Result<()> {
    let far = vigil_core::time::now_millis() + 365 * 24 * 3600 * 1000;
    let mut sql = String::new();
    for role in Role::ALL {
        let (user, session) = test_principal(role);
        sql += &format!(
            "INSERT INTO users (id, username, role, created_at, updated_at) VALUES ('{user}', 'test-{r}', '{r}', 0, 0);
             INSERT INTO sessions (id, user_id, created_at, last_used_at, expires_at) VALUES ('{session}', '{user}', 0, 0, {far});",
            r = role.as_str()
        );
    }
    block_on(async { anyhow::Ok(db.connect().await?.execute_batch(&sql).await.map(drop)?) })?;
    Ok(())
}

/// Apply the migrations to a fresh database.
pub fn migrate(db: &Target) -> Result<()> {
    block_on(vigil_db::migrations::migrate(
        db,
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

/// Run statements against the app's database (when the suite started it).
pub fn execute(app: &TestApp, sql: &str) {
    let target = app.db.as_ref().expect("the suite started this app");
    block_on(async {
        let conn = target.connect().await.expect("open test database");
        conn.execute_batch(sql).await.expect("statements run");
    })
}

/// `SELECT count(*) …` against the app's database.
pub fn count(app: &TestApp, sql: &str) -> Option<i64> {
    let target = app.db.as_ref()?;
    block_on(async {
        let conn = target.connect().await.expect("open test database");
        vigil_db::target::query_i64(&conn, sql, ())
            .await
            .expect("count query")
    })
}

/// A user made through the API, with the password it was given.
pub struct NewUser {
    pub id: String,
    pub username: String,
    pub password: String,
}

impl TestApp {
    /// Create a user with `role` (as the seeded admin) and return it.
    pub fn create_user(&self, role: Role, password: &str) -> NewUser {
        let username = format!("u-{}", &vigil_core::id::new_id()[..12]);
        let body =
            serde_json::json!({"username": username, "role": role.as_str(), "password": password});
        let r = self.post_json_as(Role::Admin, "/api/auth/users", &body);
        assert_eq!(r.status, 201, "create user: {}", r.text());
        NewUser {
            id: r.json()["id"].as_str().unwrap().to_string(),
            username,
            password: password.to_string(),
        }
    }

    /// Forget the per-address login throttle's windows. Every case logs in
    /// from the suite's one client address, so the harness calls this before
    /// each case: a case gets the whole budget, whatever ran before it.
    pub fn reset_login_throttle(&self) {
        if self.db.is_some() {
            execute(self, "DELETE FROM rate_limits WHERE bucket = 'login:addr'");
        }
    }

    /// `POST /api/auth/login`.
    pub fn login(&self, username: &str, password: &str) -> Resp {
        self.post_json(
            "/api/auth/login",
            &serde_json::json!({"username": username, "password": password}),
            None,
        )
    }

    /// POST a JSON body, with a bearer credential if given.
    pub fn post_json(&self, path: &str, body: &serde_json::Value, bearer: Option<&str>) -> Resp {
        let auth = bearer.map(|b| format!("Bearer {b}"));
        let mut headers = vec![("content-type", "application/json")];
        if let Some(auth) = &auth {
            headers.push(("authorization", auth));
        }
        self.request("POST", path, &headers, Some(body.to_string().as_bytes()))
    }

    /// A request with a bearer credential.
    pub fn with_bearer(&self, method: &str, path: &str, bearer: &str) -> Resp {
        self.request(
            method,
            path,
            &[("authorization", &format!("Bearer {bearer}"))],
            None,
        )
    }
}

impl TestApp {
    /// What the components logged so far (one JSON line per request), when
    /// the suite started the app: Spin's log files, or the host's stderr.
    pub fn component_logs(&self) -> String {
        let mut logs = String::new();
        if let Some(dir) = &self._dir {
            let mut files: Vec<_> = std::fs::read_dir(dir.path().join("spin-logs"))
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path())
                .collect();
            files.sort();
            for file in files {
                logs += &std::fs::read_to_string(file).unwrap_or_default();
            }
        }
        if logs.is_empty() {
            logs = self
                ._running
                .as_ref()
                .map(|r| r.stderr())
                .unwrap_or_default();
        }
        logs
    }
}
