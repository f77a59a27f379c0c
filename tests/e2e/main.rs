//! Vigil's end-to-end suite. Every case runs on three legs: the built-in
//! wasmtime host, `spin up` with a local SQLite file, and `spin up` with the
//! database on a libSQL server (`sqld`, the Turso path). A leg whose tools are
//! missing (`VIGIL_SPIN`/`spin`, `VIGIL_SQLD`/`sqld` on PATH) is reported as
//! skipped, never dropped silently. Each leg starts once, with its own
//! database, and is shared by the cases, which never depend on each other's data.
//!
//! `cargo xtask test` builds what this needs; an argument filters cases by
//! substring, as with libtest.

mod api_keys;
mod cli;
mod console;
mod decisions;
mod export;
mod hardening_auth;
mod hardening_config;
mod http_basics;
mod login;
mod matrix;
mod metrics;
mod mfa;
mod mqtt;
mod playbooks;
mod relay;
mod sensors;
mod threats;
mod tokens;
mod turso;
mod users;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Instant;

use vigil_e2e::{Leg, TestApp};

pub type Case = (&'static str, fn(&TestApp));

fn app_cases() -> Vec<Case> {
    [
        http_basics::CASES,
        tokens::CASES,
        users::CASES,
        login::CASES,
        api_keys::CASES,
        mfa::CASES,
        hardening_auth::CASES,
        decisions::CASES,
        hardening_config::CASES,
        threats::CASES,
        sensors::CASES,
        playbooks::CASES,
        export::CASES,
        metrics::CASES,
        matrix::CASES,
        console::CASES,
        // Late: one of them deletes old outbox rows.
        relay::CASES,
        mqtt::CASES,
        users::FINAL_CASES,
    ]
    .concat()
}

struct Tally {
    passed: usize,
    failed: Vec<String>,
    skipped: usize,
}

fn run_case(label: &str, f: impl FnOnce()) -> Result<(), String> {
    let started = Instant::now();
    let outcome = catch_unwind(AssertUnwindSafe(f));
    let ms = started.elapsed().as_millis();
    match outcome {
        Ok(()) => {
            println!("test {label} ... ok ({ms} ms)");
            Ok(())
        }
        Err(payload) => {
            let msg = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            println!("test {label} ... FAILED\n    {msg}");
            Err(label.to_string())
        }
    }
}

fn run_app(app: &TestApp, cases: &[Case], filter: Option<&str>) -> (usize, Vec<String>) {
    let mut passed = 0;
    let mut failed = Vec::new();
    for (name, case) in cases {
        let label = format!("{}::{name}", app.runtime);
        if filter.is_some_and(|f| !label.contains(f)) {
            continue;
        }
        match run_case(&label, || case(app)) {
            Ok(()) => passed += 1,
            Err(label) => {
                // The app's own account of what went wrong (5xx causes are
                // logged there, never sent to the client).
                let logs = app.component_logs();
                let errors: Vec<&str> = logs
                    .lines()
                    .filter(|l| l.contains("\"level\":\"error\""))
                    .collect();
                for line in &errors[errors.len().saturating_sub(5)..] {
                    println!("    app log: {line}");
                }
                failed.push(label)
            }
        }
    }
    (passed, failed)
}

fn main() {
    let started = Instant::now();
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let filter = filter.as_deref();
    let cases = app_cases();
    let mut tally = Tally {
        passed: 0,
        failed: vec![],
        skipped: 0,
    };

    let mut legs = Vec::new();
    if let Ok(url) = std::env::var("VIGIL_BASE_URL") {
        let app = TestApp::external(url).expect("VIGIL_BASE_URL");
        let (passed, failed) = run_app(&app, &cases, filter);
        tally.passed += passed;
        tally.failed.extend(failed);
    } else {
        for leg in [Leg::Host, Leg::Spin, Leg::SpinSqld] {
            match leg.missing() {
                None => legs.push(leg),
                Some(why) => {
                    println!(
                        "SKIPPED: the {} leg ({} cases): {why}",
                        leg.name(),
                        cases.len()
                    );
                    tally.skipped += cases.len();
                }
            }
        }
    }

    // The legs start (compile every component) and run concurrently.
    let results: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = legs
            .into_iter()
            .map(|leg| {
                let cases = &cases;
                scope.spawn(move || match TestApp::start(leg) {
                    Ok(app) => run_app(&app, cases, filter),
                    Err(e) => {
                        println!("test {} start-up ... FAILED\n    {e:#}", leg.name());
                        (0, vec![format!("{} start-up", leg.name())])
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("leg thread"))
            .collect()
    });
    for (passed, failed) in results {
        tally.passed += passed;
        tally.failed.extend(failed);
    }

    if std::env::var("VIGIL_BASE_URL").is_err() {
        // Cases that start what they need themselves, once per run.
        let mut once: Vec<(&str, &str, fn())> =
            cli::CASES.iter().map(|(n, f)| ("cli", *n, *f)).collect();
        match Leg::SpinSqld.missing() {
            None => {
                once.extend(cli::SQLD_CASES.iter().map(|(n, f)| ("cli", *n, *f)));
                once.extend(turso::CASES.iter().map(|(n, f)| ("turso", *n, *f)));
            }
            Some(why) => {
                let n = cli::SQLD_CASES.len() + turso::CASES.len();
                println!("SKIPPED: {n} cases against sqld: {why}");
                tally.skipped += n;
            }
        }
        for (group, name, case) in once {
            let label = format!("{group}::{name}");
            if filter.is_some_and(|f| !label.contains(f)) {
                continue;
            }
            match run_case(&label, case) {
                Ok(()) => tally.passed += 1,
                Err(label) => tally.failed.push(label),
            }
        }
    }

    if !tally.failed.is_empty() {
        println!("\nfailures:");
        for f in &tally.failed {
            println!("    {f}");
        }
    }
    let verdict = if tally.failed.is_empty() {
        "ok"
    } else {
        "FAILED"
    };
    println!(
        "\ntest result: {verdict}. {} passed; {} failed; {} ignored; 0 measured; 0 filtered out; finished in {:.2}s",
        tally.passed,
        tally.failed.len(),
        tally.skipped,
        started.elapsed().as_secs_f64()
    );
    std::process::exit(if tally.failed.is_empty() { 0 } else { 1 });
}
