//! The console in a real browser: the app under `spin up` (the built-in host
//! when Spin is missing), a relay that allows the app's origin, and
//! `console.test.mjs` driving Debian's headless Chromium with playwright-core.
//! Each line the script prints (`ok - …` / `not ok - …`) is one case here;
//! screenshots of every page visited go to `target/console-screenshots/`.
//!
//! Needs `node`, `chromium` (or `VIGIL_CHROMIUM`) and `npm ci` run in
//! `tests/browser/` (`cargo xtask test` does it). When one is missing the
//! run is reported as skipped, naming it, or failed when `CI` or
//! `VIGIL_REQUIRE_BROWSER` (which `.ci/run` sets) is set.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use vigil_core::Role;
use vigil_core::token::jwks_json;
use vigil_e2e::{Leg, TestApp, client, vigil_bin, vigil_command, workspace_root};

fn chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("VIGIL_CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// What this machine lacks for the browser tests, if anything.
fn missing() -> Option<String> {
    let node = Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !node {
        return Some("node not found (apt-get install nodejs npm)".into());
    }
    if chromium().is_none() {
        return Some("chromium not found (apt-get install chromium, or set VIGIL_CHROMIUM)".into());
    }
    let module = workspace_root().join("tests/browser/node_modules/playwright-core");
    if !module.exists() {
        return Some("playwright-core is not installed: run `npm ci` in tests/browser".into());
    }
    None
}

/// Whether a missing tool is a failure (CI) rather than a skip.
fn required() -> bool {
    std::env::var_os("CI").is_some() || std::env::var_os("VIGIL_REQUIRE_BROWSER").is_some()
}

/// A relay on a port chosen in advance (the app must name it in its
/// `relay_url` before either starts) that lets the app's pages connect.
fn start_relay(app: &TestApp, port: u16, dir: &std::path::Path) -> Result<std::process::Child> {
    let db = app.db.as_ref().context("the suite started the app")?;
    let log = std::fs::File::create(dir.join("browser-relay.log"))?;
    let mut child = vigil_command(&vigil_bin(), db)
        .arg("relay")
        .env("VIGIL_RELAY_LISTEN", format!("127.0.0.1:{port}"))
        .env(
            "VIGIL_JWT_PUBLIC_KEYS",
            jwks_json(&[app.signer.public_jwk()]),
        )
        .env("VIGIL_RELAY_ALLOWED_ORIGINS", &app.base_url)
        .env("VIGIL_RELAY_POLL_MS", "20")
        .env("VIGIL_RELAY_JOBS", "none")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("starting vigil relay")?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let ready = format!("http://127.0.0.1:{port}/readyz");
    while Instant::now() < deadline {
        if client::request("GET", &ready, &[], None).is_ok_and(|r| r.status == 200) {
            return Ok(child);
        }
        if let Some(status) = child.try_wait()? {
            bail!("the relay exited with {status}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    bail!("the relay did not become ready")
}

fn run() -> Result<(usize, Vec<String>)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    // SAFETY: set before any other thread of this process exists; the app's
    // runtime inherits it (its `relay_url` variable).
    unsafe {
        std::env::set_var(
            "SPIN_VARIABLE_RELAY_URL",
            format!("ws://127.0.0.1:{port}/ws"),
        )
    };
    let leg = if Leg::Spin.missing().is_none() {
        Leg::Spin
    } else {
        println!("NOTICE: spin not found: the browser tests run on the built-in host");
        Leg::Host
    };
    let app = TestApp::start(leg)?;
    let dir = tempfile::tempdir()?;
    let mut relay = start_relay(&app, port, dir.path())?;
    let shots = workspace_root().join("target/console-screenshots");
    let _ = std::fs::remove_dir_all(&shots);
    // `cargo xtask bench console` runs the benchmark instead of the tests.
    let bench = std::env::var_os("VIGIL_BROWSER_BENCH").is_some();
    let output = Command::new("node")
        .arg(if bench {
            "console.bench.mjs"
        } else {
            "console.test.mjs"
        })
        .current_dir(workspace_root().join("tests/browser"))
        .env("VIGIL_BROWSER_BASE_URL", &app.base_url)
        .env("VIGIL_BROWSER_ADMIN_TOKEN", app.token(Role::Admin))
        .env("VIGIL_BROWSER_CHROMIUM", chromium().expect("checked"))
        .env("VIGIL_BROWSER_SCREENSHOTS", &shots)
        .env("VIGIL_BROWSER_VIGIL", vigil_bin())
        .stdout(if bench {
            Stdio::inherit()
        } else {
            Stdio::piped()
        })
        .stderr(Stdio::inherit())
        .output()
        .context("running node")?;
    if bench {
        let _ = relay.kill();
        anyhow::ensure!(
            output.status.success(),
            "the benchmark failed: {}",
            output.status
        );
        return Ok((1, Vec::new()));
    }
    let _ = relay.kill();
    let _ = relay.wait();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let (mut passed, mut failed) = (0, Vec::new());
    for line in stdout.lines() {
        if let Some(name) = line.strip_prefix("ok - ") {
            println!("test browser::{name} ... ok");
            passed += 1;
        } else if let Some(rest) = line.strip_prefix("not ok - ") {
            let (name, why) = rest.split_once(" :: ").unwrap_or((rest, ""));
            println!("test browser::{name} ... FAILED\n    {why}");
            failed.push(name.to_string());
        } else {
            println!("{line}");
        }
    }
    if passed == 0 && failed.is_empty() || (!output.status.success() && failed.is_empty()) {
        failed.push(format!("the browser script ({})", output.status));
    }
    if !failed.is_empty() {
        let log = std::fs::read_to_string(dir.path().join("browser-relay.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(10).collect();
        println!("    relay log (last lines): {}", tail.join(" | "));
    }
    println!("screenshots: {}", shots.display());
    Ok((passed, failed))
}

fn main() {
    let started = Instant::now();
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    if filter
        .as_deref()
        .is_some_and(|f| !"browser::console".contains(f) && !f.contains("browser"))
    {
        println!(
            "\ntest result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; 1 filtered out; finished in 0.00s"
        );
        return;
    }
    let (passed, failed, ignored) = match missing() {
        Some(why) if required() => {
            println!(
                "test browser::console ... FAILED\n    {why} (CI or VIGIL_REQUIRE_BROWSER is set: the browser tests must run)"
            );
            (0, vec!["browser::console".to_string()], 0)
        }
        Some(why) => {
            println!("SKIPPED: the browser tests: {why}");
            (0, vec![], 1)
        }
        None => match run() {
            Ok((passed, failed)) => (passed, failed, 0),
            Err(e) => {
                println!("test browser start-up ... FAILED\n    {e:#}");
                (0, vec!["browser start-up".to_string()], 0)
            }
        },
    };
    if !failed.is_empty() {
        println!("\nfailures:");
        for f in &failed {
            println!("    {f}");
        }
    }
    println!(
        "\ntest result: {}. {passed} passed; {} failed; {ignored} ignored; 0 measured; 0 filtered out; finished in {:.2}s",
        if failed.is_empty() { "ok" } else { "FAILED" },
        failed.len(),
        started.elapsed().as_secs_f64()
    );
    std::process::exit(i32::from(!failed.is_empty()));
}
