//! The OpenAPI step of `cargo xtask test`: validate the generated document
//! as OpenAPI 3.1, then fuzz the app under `spin up` with schemathesis
//! (pinned, in a virtualenv under `target/`), as an admin, with a bounded
//! number of examples per operation and a time cap. Any 5xx, undocumented
//! status or content type, or response that breaks its schema fails it.
//!
//! A second pass fuzzes the routes of logging in, registering, 2FA and the
//! password as a throwaway account of its own (a user made for the pass),
//! including the ones the admin pass must leave out (its password, logout):
//! what the pass locks, changes or ends is that account's only.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use vigil_core::Role;
use vigil_e2e::{Leg, TestApp};

use crate::root;

const PACKAGES: [&str; 2] = ["schemathesis==4.32.5", "openapi-spec-validator==0.9.0"];
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance";
const EXAMPLES_PER_OPERATION: &str = "25";
const MAX_SECONDS: &str = "90";
/// Fixed, so a CI failure reproduces; change it to explore further.
const SEED: &str = "20261127";

pub enum Outcome {
    Passed,
    Skipped(String),
}

fn venv() -> PathBuf {
    root().join("target/fuzz-venv")
}

/// Create the virtualenv and install the pinned packages, once.
fn ensure_tools() -> Result<Option<PathBuf>> {
    let python = venv().join("bin/python");
    let marker = venv().join("vigil-packages.txt");
    let wanted = PACKAGES.join("\n");
    if std::fs::read_to_string(&marker).is_ok_and(|m| m == wanted) {
        return Ok(Some(python));
    }
    if Command::new("python3").arg("--version").output().is_err() {
        return Ok(None);
    }
    crate::run(Command::new("python3").arg("-m").arg("venv").arg(venv()))?;
    crate::run(
        Command::new(&python)
            .args(["-m", "pip", "install", "--quiet"])
            .args(PACKAGES),
    )?;
    std::fs::write(marker, wanted)?;
    Ok(Some(python))
}

pub fn run() -> Result<Outcome> {
    if let Some(why) = Leg::Spin.missing() {
        return Ok(Outcome::Skipped(why.to_string()));
    }
    let Some(python) = ensure_tools()? else {
        return Ok(Outcome::Skipped("python3 not found".into()));
    };
    let document = crate::openapi::path();
    crate::run(Command::new(&python).args(["-c", "import json, sys; from openapi_spec_validator import validate; validate(json.load(open(sys.argv[1]))); print('openapi: the document is valid OpenAPI 3.1')"]).arg(&document))?;

    let app = TestApp::start(Leg::Spin).context("starting Vigil under spin for the fuzzer")?;
    let mut failed = Vec::new();
    // Logging out, changing the password or ending a session (the fuzzer's
    // own is listed) would end the admin pass's own session.
    let admin = schemathesis(
        &app,
        "admin",
        &app.token(Role::Admin),
        &[
            "--exclude-operation-id",
            "post_auth_logout",
            "--exclude-operation-id",
            "post_auth_password",
            "--exclude-operation-id",
            "delete_auth_sessions_id",
        ],
    )?;
    if !admin {
        failed.push("admin");
    }
    let throwaway = app.create_user(Role::Analyst, "a throwaway fuzzing passphrase");
    let r = app.login(&throwaway.username, &throwaway.password);
    let token = r.json()["access_token"]
        .as_str()
        .context("the throwaway account logs in")?
        .to_string();
    let auth = schemathesis(
        &app,
        "throwaway account",
        &token,
        &[
            "--include-path-regex",
            "^/api/auth/(login|login/mfa|register|mfa/.*|password|logout)$",
        ],
    )?;
    if !auth {
        failed.push("throwaway account");
    }
    if !failed.is_empty() {
        bail!(
            "schemathesis found failures in the {} pass (reproduce with the curl commands above; seed {SEED})",
            failed.join(" and the ")
        );
    }
    Ok(Outcome::Passed)
}

/// One schemathesis run against `app` with `bearer` and `filters`; prints
/// its report and a summary line; whether it passed.
fn schemathesis(app: &TestApp, pass: &str, bearer: &str, filters: &[&str]) -> Result<bool> {
    let started = Instant::now();
    let output = Command::new(venv().join("bin/st"))
        .args(["run", &app.url("/api/openapi.json"), "--checks", CHECKS])
        .args([
            "--max-examples",
            EXAMPLES_PER_OPERATION,
            "--max-time",
            MAX_SECONDS,
            "--seed",
            SEED,
        ])
        .args(filters)
        .args(["--no-color", "--header"])
        .arg(format!("Authorization: Bearer {bearer}"))
        .current_dir(root().join("target"))
        .output()
        .context("running schemathesis")?;
    let seconds = started.elapsed().as_secs_f64();
    let text = String::from_utf8_lossy(&output.stdout);
    print!("{text}");
    eprint!("{}", String::from_utf8_lossy(&output.stderr));
    let operations = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Tested: "))
        .unwrap_or("?");
    let examples = text
        .lines()
        .find_map(|l| {
            l.trim()
                .split(" generated")
                .next()
                .filter(|n| n.chars().all(|c| c.is_ascii_digit()) && !n.is_empty())
        })
        .unwrap_or("?");
    let failures = text
        .lines()
        .find_map(|l| {
            l.split(" found ")
                .nth(1)
                .and_then(|r| r.split_whitespace().next())
        })
        .unwrap_or("0");
    println!(
        "fuzz ({pass}): {operations} operations, {examples} examples, {failures} failures, {seconds:.0} s"
    );
    Ok(output.status.success())
}
