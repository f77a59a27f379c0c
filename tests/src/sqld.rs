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
    dir: PathBuf,
    child: Option<Child>,
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
        let signer = TokenSigner::generate("sqld");
        // sqld does not report an ephemeral port, so pick a free one.
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
        let token = signer.sign(&serde_json::json!({ "a": "rw" }));
        let mut sqld = Sqld {
            url: format!("http://{addr}"),
            addr,
            token,
            signer,
            dir: dir.to_path_buf(),
            child: None,
        };
        sqld.resume()?;
        Ok(sqld)
    }

    /// (Re)start the server on the same address, key and data.
    pub fn resume(&mut self) -> Result<()> {
        let bin = sqld_binary().context("sqld not found (set VIGIL_SQLD or put sqld on PATH)")?;
        let child = Command::new(bin)
            .arg("--http-listen-addr")
            .arg(self.addr.to_string())
            .arg("--db-path")
            .arg(self.dir.join("data.sqld"))
            .env("SQLD_AUTH_JWT_KEY", self.signer.public_jwk().x)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(File::create(self.dir.join("sqld.log"))?)
            .stderr(File::create(self.dir.join("sqld.stderr.log"))?)
            .spawn()
            .context("starting sqld")?;
        self.child = Some(child);
        self.wait_healthy()
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
            std::fs::read_to_string(self.dir.join("sqld.stderr.log")).unwrap_or_default()
        )
    }

    /// Stop the server (SIGTERM, then SIGKILL after 5 s); `resume` brings it back.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // SAFETY: kill(2) on our own child; SIGTERM lets sqld shut down cleanly.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
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
        self.stop();
    }
}
