//! A libSQL server (`sqld`) for the Turso leg of the suite: loopback, its own
//! data directory, JWT auth on with a key pair made here.

use std::fs::File;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use vigil_core::token::TokenSigner;

pub struct Sqld {
    pub url: String,
    pub addr: SocketAddr,
    /// A read-write token the server accepts.
    pub token: String,
    signer: TokenSigner,
    child: Child,
    log: PathBuf,
}

/// `VIGIL_SQLD` if set, else `sqld` on `PATH`.
pub fn sqld_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("VIGIL_SQLD").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join("sqld"))
        .find(|p| p.is_file())
}

impl Sqld {
    /// Start `sqld` with its data under `dir` and wait until it answers `/health`.
    pub fn start(dir: &Path) -> Result<Sqld> {
        let bin = sqld_binary().context("sqld not found (set VIGIL_SQLD or put sqld on PATH)")?;
        let signer = TokenSigner::generate("sqld");
        let public_key = signer.public_jwk().x;
        // sqld does not report an ephemeral port, so pick a free one.
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
        let log = dir.join("sqld.log");
        let child = Command::new(bin)
            .arg("--http-listen-addr")
            .arg(addr.to_string())
            .arg("--db-path")
            .arg(dir.join("data.sqld"))
            .env("SQLD_AUTH_JWT_KEY", public_key)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(File::create(&log)?)
            .stderr(File::create(dir.join("sqld.stderr.log"))?)
            .spawn()
            .context("starting sqld")?;
        let token = signer.sign(&serde_json::json!({ "a": "rw" }));
        let sqld = Sqld {
            url: format!("http://{addr}"),
            addr,
            token,
            signer,
            child,
            log,
        };
        sqld.wait_healthy()?;
        Ok(sqld)
    }

    fn wait_healthy(&self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(r) = crate::client::request("GET", &format!("{}/health", self.url), &[], None)
                && r.status == 200
            {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!(
            "sqld did not become healthy: {}",
            std::fs::read_to_string(&self.log).unwrap_or_default()
        )
    }

    /// A token signed by a key the server does not trust.
    pub fn foreign_token(&self) -> String {
        TokenSigner::generate(self.signer.kid()).sign(&serde_json::json!({ "a": "rw" }))
    }

    pub fn target(&self) -> vigil_db::Target {
        vigil_db::Target::Remote {
            url: self.url.clone(),
            token: self.token.clone(),
        }
    }
}

impl Drop for Sqld {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child; SIGTERM lets sqld shut down cleanly.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
