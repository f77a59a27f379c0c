//! `cargo xtask bench host`: requests/s and latency percentiles of a health
//! endpoint and an authenticated read, at 1 and 32 concurrent keep-alive
//! connections, through the built-in host and through `spin up`, side by side.
//!
//! Each runtime gets its own freshly migrated database; the load generator is
//! in this process (one thread per connection, bounded in time), so the
//! figures include its cost too, equally for both runtimes.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use vigil_core::Role;
use vigil_core::token::{ACCESS_TOKEN_TTL_SECS, Claims, TokenSigner, jwks_json};
use vigil_host::launch::{LaunchOptions, Runtime, launch};

use crate::{build, cargo, root, run};

struct Figures {
    requests: usize,
    errors: usize,
    seconds: f64,
    p50_ms: f64,
    p99_ms: f64,
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

/// Drive `url` from `connections` threads for `duration`.
fn load(
    url: &str,
    headers: &[(String, String)],
    connections: usize,
    duration: Duration,
) -> Figures {
    let started = Instant::now();
    let deadline = started + duration;
    let results: Vec<(Vec<Duration>, usize)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..connections)
            .map(|_| {
                scope.spawn(move || {
                    let agent: ureq::Agent = ureq::Agent::config_builder()
                        .http_status_as_error(false)
                        .build()
                        .into();
                    let mut latencies = Vec::new();
                    let mut errors = 0;
                    while Instant::now() < deadline {
                        let t = Instant::now();
                        let mut req = agent.get(url);
                        for (k, v) in headers {
                            req = req.header(k, v);
                        }
                        match req.call() {
                            Ok(mut r) if r.status() == 200 => {
                                let _ = r.body_mut().read_to_vec();
                                latencies.push(t.elapsed());
                            }
                            _ => errors += 1,
                        }
                    }
                    (latencies, errors)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let seconds = started.elapsed().as_secs_f64();
    let errors = results.iter().map(|r| r.1).sum();
    let mut all: Vec<Duration> = results.into_iter().flat_map(|r| r.0).collect();
    all.sort();
    Figures {
        requests: all.len(),
        errors,
        seconds,
        p50_ms: percentile(&all, 0.50),
        p99_ms: percentile(&all, 0.99),
    }
}

pub fn bench(args: &[String]) -> Result<()> {
    if args.first().map(String::as_str) != Some("host") {
        bail!("usage: cargo xtask bench host [--seconds N]");
    }
    let seconds: u64 = match args.get(1).map(String::as_str) {
        Some("--seconds") => args.get(2).context("--seconds needs a value")?.parse()?,
        _ => 10,
    };
    build::build()?;
    // Measure an optimised host, as Spin is one.
    run(cargo().args(["build", "--release", "--package", "vigil-host", "--bins"]))?;
    // SAFETY: no other thread runs yet.
    unsafe { std::env::set_var("VIGIL_HOST_BIN", root().join("target/release/vigil-host")) };

    let mut runtimes = vec![Runtime::Host];
    if Runtime::spin_binary().is_some() {
        runtimes.push(Runtime::Spin);
    } else {
        println!("SKIPPED: the spin column: spin not found (set VIGIL_SPIN or put spin on PATH)");
    }
    let signer = TokenSigner::generate("bench-1");
    let now = vigil_core::time::now_millis() / 1000;
    let token = signer.sign(&Claims {
        iss: "vigil".into(),
        aud: "vigil".into(),
        sub: "bench".into(),
        jti: vigil_core::id::new_id(),
        iat: now,
        exp: now + ACCESS_TOKEN_TTL_SECS,
        nbf: None,
        role: Some(Role::Viewer),
        scopes: vec![],
    });
    let endpoints: [(&str, Vec<(String, String)>); 2] = [
        ("/api/threats/health", vec![]),
        (
            "/api/auth/me",
            vec![("authorization".into(), format!("Bearer {token}"))],
        ),
    ];

    println!(
        "\n{:<6} {:<22} {:>5} {:>9} {:>8} {:>8} {:>7}",
        "where", "endpoint", "conns", "req/s", "p50 ms", "p99 ms", "errors"
    );
    for runtime in runtimes {
        let dir = tempfile_dir(runtime.name())?;
        let db = dir.join("vigil.db");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(vigil_db::migrations::migrate(
            &vigil_db::Target::Local(db.clone()),
            &vigil_db::migrations::embedded(),
        ))?;
        let runtime_config = dir.join("runtime-config.toml");
        std::fs::write(
            &runtime_config,
            format!(
                "[sqlite_database.default]\ntype = \"spin\"\npath = {:?}\n",
                db.display().to_string()
            ),
        )?;
        let started = Instant::now();
        let running = launch(LaunchOptions {
            runtime,
            manifest: root().join("spin.toml"),
            runtime_config: Some(runtime_config),
            env: vec![(
                "SPIN_VARIABLE_JWT_PUBLIC_KEYS".into(),
                jwks_json(&[signer.public_jwk()]),
            )],
            workdir: dir.clone(),
        })?;
        println!(
            "{:<6} started in {:.2} s",
            runtime.name(),
            started.elapsed().as_secs_f64()
        );
        for (path, headers) in &endpoints {
            let url = format!("{}{path}", running.base_url);
            // Warm up: first requests pay lazy initialisation.
            load(&url, headers, 4, Duration::from_millis(500));
            for connections in [1, 32] {
                let f = load(&url, headers, connections, Duration::from_secs(seconds));
                println!(
                    "{:<6} {:<22} {:>5} {:>9.0} {:>8.2} {:>8.2} {:>7}",
                    runtime.name(),
                    path,
                    connections,
                    f.requests as f64 / f.seconds,
                    f.p50_ms,
                    f.p99_ms,
                    f.errors
                );
            }
        }
        drop(running);
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}

fn tempfile_dir(name: &str) -> Result<std::path::PathBuf> {
    let dir = root()
        .join("target/bench")
        .join(format!("{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
