//! An MQTT broker (Mosquitto) for the relay's cases: loopback, a free port,
//! its own configuration, and a persistent-session queue with no limit, so
//! nothing acknowledged is dropped while the relay is away. Optionally with
//! logins (a password file made by `mosquitto_passwd`), an ACL file, and TLS
//! (a test CA and server certificate made by `openssl`).

use std::fs::File;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

pub struct Mosquitto {
    /// `mqtt://127.0.0.1:<port>` (`mqtts://` with TLS)
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

/// What a broker asks of its clients beyond the defaults (anonymous, plain TCP).
#[derive(Default)]
pub struct Security<'a> {
    /// Logins; when given, anonymous clients are refused.
    pub users: &'a [(&'a str, &'a str)],
    /// The `acl_file`'s contents.
    pub acl: Option<&'a str>,
    /// Serve TLS with a test CA's certificate for 127.0.0.1 (see [`TestCa`]).
    pub tls: Option<&'a TestCa>,
}

/// A throwaway CA and a server certificate it signed for `127.0.0.1` and
/// `localhost`, as PEM files (made with the `openssl` command).
pub struct TestCa {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TestCa {
    pub fn create(dir: &Path) -> Result<TestCa> {
        let run = |args: &[&str]| -> Result<()> {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(dir)
                .stdin(Stdio::null())
                .output()
                .context("running openssl (install it to test MQTT over TLS)")?;
            anyhow::ensure!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            Ok(())
        };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        run(&[
            &["req", "-x509"][..],
            &ec,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=vigil-test-ca",
            ],
        ]
        .concat())?;
        run(&[
            &["req"][..],
            &ec,
            &[
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=127.0.0.1",
            ],
        ]
        .concat())?;
        std::fs::write(
            dir.join("server.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
             keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
        )?;
        run(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ])?;
        // Mosquitto started as root reads these after it has become the
        // `mosquitto` user: a throwaway key may be readable by all.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
        for file in ["ca.pem", "server.pem", "server.key"] {
            std::fs::set_permissions(dir.join(file), std::fs::Permissions::from_mode(0o644))?;
        }
        Ok(TestCa {
            ca: dir.join("ca.pem"),
            cert: dir.join("server.pem"),
            key: dir.join("server.key"),
        })
    }
}

impl Mosquitto {
    /// Start a broker with its files under `dir`; ready when it accepts connections.
    pub fn start(dir: &Path) -> Result<Mosquitto> {
        Mosquitto::start_with(dir, &Security::default())
    }

    /// [`Mosquitto::start`] with logins, an ACL or TLS.
    pub fn start_with(dir: &Path, security: &Security) -> Result<Mosquitto> {
        let bin = mosquitto_binary().context(
            "mosquitto not found (set VIGIL_MOSQUITTO or install the mosquitto package)",
        )?;
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
        let config = dir.join("mosquitto.conf");
        let mut conf = format!(
            "listener {port} 127.0.0.1\npersistence false\n\
             max_queued_messages 0\nmax_inflight_messages 0\n"
        );
        if security.users.is_empty() {
            conf.push_str("allow_anonymous true\n");
        } else {
            let passwords = dir.join("passwords");
            for (i, (user, password)) in security.users.iter().enumerate() {
                // Debian puts it in /usr/bin, the broker in /usr/sbin.
                let mut cmd = Command::new(
                    Some(bin.with_file_name("mosquitto_passwd"))
                        .filter(|p| p.is_file())
                        .unwrap_or_else(|| "mosquitto_passwd".into()),
                );
                if i == 0 {
                    cmd.arg("-c");
                }
                let out = cmd
                    .arg("-b")
                    .arg(&passwords)
                    .arg(user)
                    .arg(password)
                    .output()
                    .context("running mosquitto_passwd (in the mosquitto package)")?;
                anyhow::ensure!(
                    out.status.success(),
                    "mosquitto_passwd: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            conf.push_str(&format!(
                "allow_anonymous false\npassword_file {}\n",
                passwords.display()
            ));
        }
        if let Some(acl) = security.acl {
            let file = dir.join("acl");
            std::fs::write(&file, acl)?;
            conf.push_str(&format!("acl_file {}\n", file.display()));
        }
        if let Some(tls) = security.tls {
            conf.push_str(&format!(
                "certfile {}\nkeyfile {}\n",
                tls.cert.display(),
                tls.key.display()
            ));
        }
        std::fs::write(&config, conf)?;
        let child = Command::new(bin)
            .arg("-c")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(File::create(dir.join("mosquitto.log"))?)
            .stderr(File::create(dir.join("mosquitto.stderr.log"))?)
            .spawn()
            .context("starting mosquitto")?;
        let scheme = if security.tls.is_some() {
            "mqtts"
        } else {
            "mqtt"
        };
        let broker = Mosquitto {
            url: format!("{scheme}://{addr}"),
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
