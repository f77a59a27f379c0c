//! An MQTT broker (Mosquitto) for the relay's cases: loopback, a free port,
//! its own configuration, and a persistent-session queue with no limit, so
//! nothing acknowledged is dropped while the relay is away.

use std::fs::File;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

pub struct Mosquitto {
    /// `mqtt://127.0.0.1:<port>`
    pub url: String,
    pub addr: SocketAddr,
    child: Child,
}

/// `VIGIL_MOSQUITTO` if set, else `mosquitto` on `PATH` or in `/usr/sbin`
/// (where Debian's package puts it).
pub fn mosquitto_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("VIGIL_MOSQUITTO").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .chain([PathBuf::from("/usr/sbin")])
        .map(|d| d.join("mosquitto"))
        .find(|p| p.is_file())
}

impl Mosquitto {
    /// Start a broker with its files under `dir`; ready when it accepts connections.
    pub fn start(dir: &Path) -> Result<Mosquitto> {
        let bin = mosquitto_binary().context(
            "mosquitto not found (set VIGIL_MOSQUITTO or install the mosquitto package)",
        )?;
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
        let config = dir.join("mosquitto.conf");
        std::fs::write(
            &config,
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n\
                 max_queued_messages 0\nmax_inflight_messages 0\n"
            ),
        )?;
        let child = Command::new(bin)
            .arg("-c")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(File::create(dir.join("mosquitto.log"))?)
            .stderr(File::create(dir.join("mosquitto.stderr.log"))?)
            .spawn()
            .context("starting mosquitto")?;
        let broker = Mosquitto {
            url: format!("mqtt://{addr}"),
            addr,
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if TcpStream::connect(addr).is_ok() {
                return Ok(broker);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!(
            "mosquitto did not listen on {addr} within 10 s (see {})",
            dir.display()
        )
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
