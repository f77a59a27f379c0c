//! Run a Spin app under this host or under real `spin up`, as a child process.
//!
//! Used by the end-to-end tests, xtask and the benchmarks so that every
//! scenario can run against both runtimes.
//!
//! Locating the `vigil-host` binary (for [`Runtime::Host`]), first hit wins:
//! 1. `VIGIL_HOST_BIN`;
//! 2. next to the current executable, walking up its directories: test
//!    binaries live in `target/<profile>/deps/`, so `target/<profile>/vigil-host`
//!    is found from there (build it first: `cargo build -p vigil-host`);
//! 3. `vigil-host` on `PATH`.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};

/// Which runtime runs the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    /// The `vigil-host` binary from this crate.
    Host,
    /// Real `spin up`.
    Spin,
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    })
}

impl Runtime {
    /// `VIGIL_SPIN` if set, else `spin` on `PATH`.
    pub fn spin_binary() -> Option<PathBuf> {
        match std::env::var_os("VIGIL_SPIN") {
            Some(p) if !p.is_empty() => Some(PathBuf::from(p)).filter(|p| p.is_file()),
            _ => on_path("spin"),
        }
    }

    /// The `vigil-host` binary (see the module docs for the search order).
    pub fn host_binary() -> Option<PathBuf> {
        if let Some(p) = std::env::var_os("VIGIL_HOST_BIN").filter(|p| !p.is_empty()) {
            return Some(PathBuf::from(p));
        }
        if let Ok(exe) = std::env::current_exe() {
            for dir in exe.ancestors().skip(1).take(4) {
                let candidate = dir.join("vigil-host");
                if candidate.is_file() && candidate != exe {
                    return Some(candidate);
                }
            }
        }
        on_path("vigil-host")
    }

    pub fn name(self) -> &'static str {
        match self {
            Runtime::Host => "vigil-host",
            Runtime::Spin => "spin",
        }
    }
}

/// How to launch.
#[derive(Debug, Clone)]
pub struct LaunchOptions {
    pub runtime: Runtime,
    pub manifest: PathBuf,
    pub runtime_config: Option<PathBuf>,
    /// Extra environment for the child, e.g. `SPIN_VARIABLE_*`.
    pub env: Vec<(String, String)>,
    /// Where the child's stdout/stderr logs go; also its working directory
    /// (Spin resolves relative sqlite paths and `.env` from there).
    pub workdir: PathBuf,
}

/// A running app; the child is stopped (SIGTERM, then SIGKILL) on drop.
pub struct Running {
    pub base_url: String,
    pub addr: SocketAddr,
    pub stdout_path: PathBuf,
    pub stderr_path: PathBuf,
    child: Child,
}

impl Running {
    /// The child's stderr so far (for diagnostics).
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Stops the child now and waits for it.
    pub fn stop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
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

impl Drop for Running {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// One HTTP/1.1 GET to the health endpoint both runtimes serve.
fn http_ok(addr: SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let req = format!(
        "GET /.well-known/spin/health HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    );
    if s.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut buf = [0u8; 12];
    s.read_exact(&mut buf).is_ok() && buf.starts_with(b"HTTP/1.")
}

/// Starts the app and waits (up to 120 s: a first compile is slow) until it
/// accepts a TCP connection and answers HTTP.
pub fn launch(opts: LaunchOptions) -> Result<Running> {
    std::fs::create_dir_all(&opts.workdir)
        .with_context(|| format!("cannot create workdir {}", opts.workdir.display()))?;
    let manifest = std::path::absolute(&opts.manifest)?;
    let runtime_config = opts
        .runtime_config
        .as_ref()
        .map(std::path::absolute)
        .transpose()?;
    let tag = opts.runtime.name();
    let stdout_path = opts.workdir.join(format!("{tag}.stdout.log"));
    let stderr_path = opts.workdir.join(format!("{tag}.stderr.log"));
    let port = free_port()?;
    let listen = format!("127.0.0.1:{port}");

    let mut cmd = match opts.runtime {
        Runtime::Host => {
            let bin = Runtime::host_binary().ok_or_else(|| {
                anyhow!(
                    "vigil-host binary not found: run `cargo build -p vigil-host` or set VIGIL_HOST_BIN"
                )
            })?;
            Command::new(bin)
        }
        Runtime::Spin => {
            let bin = Runtime::spin_binary()
                .ok_or_else(|| anyhow!("spin not found (set VIGIL_SPIN or put spin on PATH)"))?;
            let mut c = Command::new(bin);
            // Component stdio logs go to the workdir, not `<app>/.spin/logs`.
            c.arg("up")
                .arg("--log-dir")
                .arg(opts.workdir.join("spin-logs"));
            c
        }
    };
    cmd.arg("-f").arg(&manifest).arg("--listen").arg(&listen);
    if let Some(rc) = &runtime_config {
        cmd.arg("--runtime-config-file").arg(rc);
    }
    cmd.current_dir(&opts.workdir)
        .envs(opts.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(File::create(&stdout_path)?)
        .stderr(File::create(&stderr_path)?);
    let child = cmd
        .spawn()
        .with_context(|| format!("failed to start {tag}"))?;
    let addr: SocketAddr = listen.parse()?;
    let mut running = Running {
        base_url: format!("http://{listen}"),
        addr,
        stdout_path,
        stderr_path,
        child,
    };

    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(status) = running.child.try_wait()? {
            bail!(
                "{tag} exited with {status} before serving; stderr tail:\n{}",
                tail(&running.stderr_path, 40)
            );
        }
        if http_ok(addr) {
            return Ok(running);
        }
        if Instant::now() > deadline {
            running.stop();
            bail!(
                "{tag} did not answer HTTP on {listen} within 120 s; stderr tail:\n{}",
                tail(&running.stderr_path, 40)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
