//! `cargo xtask`: the project's commands.
//!
//! - `build`: the OpenAPI document from the route tables, then the components
//!   for wasm32-wasip2 in one cargo invocation, each API component composed
//!   with `platform` into `target/vigil/<name>.wasm` (what `spin.toml` names).
//! - `up`: build, migrate `.vigil/vigil.db`, run the app under `spin up` when
//!   `spin` is installed (else the built-in wasmtime host) until Ctrl-C.
//! - `test`: build, then every test (unit, host conformance, end-to-end on
//!   every leg), then the OpenAPI document under a fuzzer.
//! - `fuzz`: only the OpenAPI step of `test`.
//! - `bench host`: throughput and latency of the host and of `spin up`.

mod bench;
mod build;
mod devkey;
mod files;
mod fuzz;
mod openapi;
mod stix;
mod up;

use std::path::PathBuf;
use std::process::{Command, ExitCode};

use anyhow::{Result, bail};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

/// Run a command from the workspace root; fail with its name if it fails.
pub fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd.current_dir(root()).status()?;
    if !status.success() {
        bail!("`{cmd:?}` failed with {status}");
    }
    Ok(())
}

pub fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

const USAGE: &str = "usage: cargo xtask <build | up [--database-url URL --database-token TOKEN] | test [-- cargo test args] | fuzz | bench host>";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("build") => build::build(),
        Some("up") => up::up(&args[1..]),
        Some("test") => test(&args[1..]),
        Some("bench") => bench::bench(&args[1..]),
        Some("fuzz") => build::build_all().and_then(|()| match fuzz::run()? {
            fuzz::Outcome::Passed => Ok(()),
            fuzz::Outcome::Skipped(why) => bail!("skipped: {why}"),
        }),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `npm ci` in `tests/browser/` (playwright-core, pinned by its lock file;
/// no browser is downloaded) when it has not run since the lock changed. The
/// browser tests report what is missing themselves, so a failure here is
/// only reported.
fn browser_deps() {
    let dir = root().join("tests/browser");
    let installed = dir.join("node_modules/.package-lock.json");
    let modified = |p: &std::path::Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    if modified(&installed).is_some_and(|at| Some(at) >= modified(&dir.join("package-lock.json"))) {
        return;
    }
    match std::process::Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(&dir)
        .status()
    {
        Ok(status) if status.success() => {}
        Ok(status) => println!(
            "npm ci in tests/browser failed ({status}): the browser tests will say what is missing"
        ),
        Err(e) => println!("npm not found ({e}): the browser tests will say what is missing"),
    }
}

/// Build the components and the native binaries the tests start, then run
/// every test of the native workspace members, and close with one summary
/// line over all of them.
fn test(extra: &[String]) -> Result<()> {
    let started = std::time::Instant::now();
    build::build_all()?;
    let mut cmd = cargo();
    match stix::ensure()? {
        Some(python) => {
            cmd.env("VIGIL_STIX_PYTHON", python);
        }
        None => println!("the STIX validator needs python3: the STIX export cases will fail"),
    }
    browser_deps();
    cmd.args(["test", "--no-fail-fast", "--lib", "--bins", "--tests"])
        .args(extra.iter().skip_while(|a| *a == "--"))
        .current_dir(root())
        .stdout(std::process::Stdio::piped());
    let mut child = cmd.spawn()?;
    let (mut passed, mut failed, mut ignored) = (0u64, 0u64, 0u64);
    let stdout = child.stdout.take().expect("piped");
    for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)) {
        let line = line?;
        println!("{line}");
        // libtest's closing line: `test result: ok. 21 passed; 0 failed; 3 ignored; …`
        if let Some(rest) = line.strip_prefix("test result: ") {
            for part in rest.split(';') {
                let mut words = part.split_whitespace().rev();
                let (Some(kind), Some(n)) = (words.next(), words.next()) else {
                    continue;
                };
                let n: u64 = n.parse().unwrap_or(0);
                match kind {
                    "passed" => passed += n,
                    "failed" => failed += n,
                    "ignored" => ignored += n,
                    _ => {}
                }
            }
        }
    }
    let status = child.wait()?;

    println!("\nThe OpenAPI document under a fuzzer (schemathesis against spin up):");
    let fuzz = fuzz::run();
    match &fuzz {
        Ok(fuzz::Outcome::Passed) => passed += 1,
        Ok(fuzz::Outcome::Skipped(why)) => {
            println!("SKIPPED: the OpenAPI fuzz step: {why}");
            ignored += 1;
        }
        Err(e) => {
            println!("fuzz: FAILED: {e:#}");
            failed += 1;
        }
    }
    println!(
        "\nxtask test: {:.0} s in all",
        started.elapsed().as_secs_f64()
    );
    println!("summary: {passed} passed, {failed} failed, {ignored} skipped");
    if !status.success() || fuzz.is_err() {
        bail!("tests failed");
    }
    Ok(())
}
