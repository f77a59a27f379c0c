//! `cargo xtask bench host`: requests/s and latency percentiles of a health
//! endpoint and an authenticated read, at 1 and 32 concurrent keep-alive
//! connections, through the built-in host and through `spin up`, side by side.
//!
//!
//! A third column runs `spin up` with the database on a libSQL server (`sqld`).
//! Each gets its own freshly migrated database. The load comes from `wrk` when
//! it is installed, else from threads in this process; either way the client
//! shares the machine with the server, equally for every column.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use vigil_core::Role;
use vigil_e2e::{Leg, TestApp};

use crate::{build, cargo, root, run};

mod export;
mod load;
mod metrics;
mod mqtt;
mod relay;
mod reuse;

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

/// A numeric `field` of the app's request log lines for `path`, sorted.
fn logged(app: &TestApp, path: &str, field: &str) -> Vec<f64> {
    let mut values: Vec<f64> = app
        .component_logs()
        .lines()
        .filter(|l| l.contains(&format!("\"path\":\"{path}\"")))
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v[field].as_f64())
        .collect();
    values.sort_by(f64::total_cmp);
    values
}

/// The `p` quantile of sorted values (NaN when there are none).
fn quantile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len().max(1) - 1) as f64 * p).round() as usize;
    sorted.get(i).copied().unwrap_or(f64::NAN)
}

/// Run `clients` threads for `duration`, each making requests in a loop
/// with the request function `client(i)` gives it: `Some(latency)` for a
/// success, `None` for an error.
fn drive<R: FnMut() -> Option<Duration>>(
    clients: usize,
    duration: Duration,
    client: impl Fn(usize) -> R + Sync,
) -> Figures {
    let started = Instant::now();
    let results: Vec<(Vec<Duration>, usize)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..clients)
            .map(|i| {
                let client = &client;
                scope.spawn(move || {
                    let mut request = client(i);
                    let (mut latencies, mut errors) = (Vec::new(), 0);
                    while started.elapsed() < duration {
                        match request() {
                            Some(latency) => latencies.push(latency),
                            None => errors += 1,
                        }
                    }
                    (latencies, errors)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("client thread"))
            .collect()
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

/// Drive `url` from `connections` threads for `duration`.
fn load(
    url: &str,
    headers: &[(String, String)],
    connections: usize,
    duration: Duration,
    expect: u16,
) -> Figures {
    drive(connections, duration, |_| {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        move || {
            let t = Instant::now();
            let mut req = agent.get(url);
            for (k, v) in headers {
                req = req.header(k, v);
            }
            match req.call() {
                Ok(mut r) if r.status() == expect => {
                    let _ = r.body_mut().read_to_vec();
                    Some(t.elapsed())
                }
                _ => None,
            }
        }
    })
}

/// Unit-aware parse of wrk's `1.23ms` / `456.00us` / `1.02s`.
fn wrk_ms(value: &str) -> f64 {
    let (number, scale) = if let Some(v) = value.strip_suffix("us") {
        (v, 0.001)
    } else if let Some(v) = value.strip_suffix("ms") {
        (v, 1.0)
    } else if let Some(v) = value.strip_suffix('s') {
        (v, 1000.0)
    } else {
        (value, 1.0)
    };
    number.parse::<f64>().unwrap_or(f64::NAN) * scale
}

/// Drive `url` with `wrk` (when installed: it is a far cheaper client than
/// threads in this process, which share the machine's two cores with the server).
fn load_wrk(
    url: &str,
    headers: &[(String, String)],
    connections: usize,
    duration: Duration,
    expect: u16,
) -> Option<Figures> {
    let mut cmd = std::process::Command::new("wrk");
    cmd.args(["--latency", "-t", if connections == 1 { "1" } else { "2" }])
        .arg(format!("-c{connections}"))
        .arg(format!("-d{}s", duration.as_secs().max(1)));
    for (k, v) in headers {
        cmd.arg("-H").arg(format!("{k}: {v}"));
    }
    let out = cmd.arg(url).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |prefix: &str| {
        text.lines().find_map(|l| {
            l.trim()
                .strip_prefix(prefix)
                .map(|rest| rest.trim().to_string())
        })
    };
    let requests = text.lines().find_map(|l| {
        l.split(" requests in ")
            .next()
            .and_then(|n| n.trim().parse().ok())
    })?;
    let not_2xx: usize = field("Non-2xx or 3xx responses:")
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    // wrk counts answers outside 2xx and 3xx; a row that expects one counts the rest.
    let errors = if expect < 400 {
        not_2xx
    } else {
        requests - not_2xx
    };
    Some(Figures {
        requests,
        errors,
        seconds: duration.as_secs_f64(),
        p50_ms: wrk_ms(&field("50%")?),
        p99_ms: wrk_ms(&field("99%")?),
    })
}

/// `connections` keep-alive clients GETting `url` for `duration`: through
/// `wrk` when it is installed, else through threads of this process.
fn get_figures(
    url: &str,
    headers: &[(String, String)],
    connections: usize,
    duration: Duration,
    expect: u16,
) -> Figures {
    has_wrk()
        .then(|| load_wrk(url, headers, connections, duration, expect))
        .flatten()
        .unwrap_or_else(|| load(url, headers, connections, duration, expect))
}

fn has_wrk() -> bool {
    std::process::Command::new("wrk")
        .arg("--version")
        .output()
        .is_ok()
}

pub fn bench(args: &[String]) -> Result<()> {
    match args.first().map(String::as_str) {
        Some("host") => {}
        Some("auth") => return bench_auth(),
        Some("decisions") => return bench_decisions(),
        Some("ingest-http") => return bench_ingest(),
        Some("load") => return load::run(&args[1..]),
        Some("mqtt") => return mqtt::bench(&args[1..]),
        Some("relay") => return relay::run_bench(&args[1..]),
        Some("export") => return export::run(&args[1..]),
        Some("metrics") => return metrics::run(&args[1..]),
        Some("reuse") => return reuse::run_bench(&args[1..]),
        Some("console") => return bench_console(),
        _ => {
            bail!(
                "usage: cargo xtask bench <host [--seconds N] | auth | decisions | ingest-http | load [--seconds N] [--events N] [--legs host,spin,spin+sqld] | mqtt [--seconds N] [--per-message N] [--sqld] | relay [--clients N] [--events N] [--rate N] [--seconds N] [--skip-mqtt] | export [--packs-only] | metrics [--events N] [--requests N] | reuse [--seconds N] | console>"
            )
        }
    }
    let seconds: u64 = match args.get(1).map(String::as_str) {
        Some("--seconds") => args.get(2).context("--seconds needs a value")?.parse()?,
        _ => 10,
    };
    build::build()?;
    release_host()?;

    instantiation_cost()?;

    let wrk = has_wrk();
    println!(
        "load generator: {}",
        if wrk {
            "wrk"
        } else {
            "in-process threads (install wrk for cheaper, more accurate figures)"
        }
    );
    let mut legs = Vec::new();
    for leg in [Leg::Host, Leg::Spin, Leg::SpinSqld] {
        match leg.missing() {
            None => legs.push(leg),
            Some(why) => println!("SKIPPED: the {} column: {why}", leg.name()),
        }
    }
    println!(
        "\n{:<10} {:<22} {:>5} {:>9} {:>8} {:>8} {:>7}",
        "where", "endpoint", "conns", "req/s", "p50 ms", "p99 ms", "errors"
    );
    for leg in legs {
        let started = Instant::now();
        let app = TestApp::start(leg)?;
        println!(
            "{:<10} started in {:.2} s",
            leg.name(),
            started.elapsed().as_secs_f64()
        );
        let token = app.token(Role::Viewer);
        let endpoints: [(&str, Vec<(String, String)>); 2] = [
            ("/api/threats/health", vec![]),
            (
                "/api/auth/me",
                vec![("authorization".into(), format!("Bearer {token}"))],
            ),
        ];
        for (path, headers) in &endpoints {
            let url = app.url(path);
            // Warm up: first requests pay lazy initialisation.
            load(&url, headers, 4, Duration::from_millis(500), 200);
            for connections in [1, 32] {
                let duration = Duration::from_secs(seconds);
                let f = get_figures(&url, headers, connections, duration, 200);
                println!(
                    "{:<10} {:<22} {:>5} {:>9.0} {:>8.2} {:>8.2} {:>7}",
                    leg.name(),
                    path,
                    connections,
                    f.requests as f64 / f.seconds,
                    f.p50_ms,
                    f.p99_ms,
                    f.errors
                );
            }
        }
    }
    Ok(())
}

/// What a fresh instance per request costs in the built-in host: a new
/// `Store` and instantiation of the composed `threats` component, in a loop.
fn instantiation_cost() -> Result<()> {
    let dir = root().join("target/bench");
    std::fs::create_dir_all(&dir)?;
    let config = dir.join("runtime-config.toml");
    std::fs::write(
        &config,
        vigil_db::Target::Local(dir.join("unused.db")).spin_runtime_config(),
    )?;
    let signer = vigil_core::token::TokenSigner::generate("bench");
    // SAFETY: no other thread runs yet.
    for (name, value) in vigil_e2e::app_variables(&signer) {
        unsafe { std::env::set_var(name, value) };
    }
    let started = Instant::now();
    let host = vigil_host::Host::load(vigil_host::HostOptions {
        manifest: root().join("spin.toml"),
        runtime_config: Some(config),
    })?;
    let load = started.elapsed();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let runtime = host.runtime();
    let component = runtime.components["threats"].clone();
    const N: u32 = 500;
    let per = rt.block_on(async {
        let started = Instant::now();
        for _ in 0..N {
            let mut store = runtime.new_store(&component)?;
            component.pre.instantiate_async(&mut store).await?;
        }
        anyhow::Ok(started.elapsed() / N)
    })?;
    println!(
        "host: load {:.0} ms (compile {} ms, cache warm after the first run); fresh store + instantiate of `threats`: {:.0} µs per request (N={N})",
        load.as_secs_f64() * 1000.0,
        host.compile_ms,
        per.as_secs_f64() * 1e6
    );
    Ok(())
}

/// Measure an optimised host, as Spin is one.
fn release_host() -> Result<()> {
    run(cargo().args(["build", "--release", "--package", "vigil-host", "--bins"]))?;
    // SAFETY: no other thread runs yet.
    unsafe { std::env::set_var("VIGIL_HOST_BIN", root().join("target/release/vigil-host")) };
    Ok(())
}

/// `cargo xtask bench auth`: login latency (argon2 dominates) and the time a
/// component spends authenticating and authorizing a request (the
/// `auth_us` of its request log: token verification in `platform` and the
/// session lookup), through the host and `spin up`.
/// The console in headless Chromium (tests/browser/console.bench.mjs, run
/// by the browser test binary): time to a usable queue with 1,000 pending
/// decisions and 100 live alerts a minute, and the bytes a cold load moves.
fn bench_console() -> Result<()> {
    crate::build::build_all()?;
    crate::browser_deps();
    let status = crate::cargo()
        .args(["test", "-p", "vigil-e2e", "--test", "browser"])
        .env("VIGIL_BROWSER_BENCH", "1")
        .env("VIGIL_REQUIRE_BROWSER", "1")
        .current_dir(crate::root())
        .status()?;
    anyhow::ensure!(status.success(), "the console benchmark failed");
    Ok(())
}

fn bench_auth() -> Result<()> {
    build::build_all()?;
    release_host()?;
    const LOGINS: usize = 25;
    const READS: usize = 400;
    println!(
        "\n{:<10} {:>16} {:>16} {:>16} {:>16}",
        "where", "login p50 ms", "login p99 ms", "auth p50 µs", "auth p99 µs"
    );
    for leg in [Leg::Host, Leg::Spin, Leg::SpinSqld] {
        if let Some(why) = leg.missing() {
            println!("SKIPPED: the {} row: {why}", leg.name());
            continue;
        }
        let app = TestApp::start(leg)?;
        let user = app.create_user(Role::Analyst, "a perfectly fine passphrase");
        let mut logins = Vec::with_capacity(LOGINS);
        let mut token = String::new();
        for _ in 0..LOGINS {
            // The per-address throttle would stop a benchmark: reset it.
            vigil_e2e::execute(&app, "DELETE FROM rate_limits");
            let started = Instant::now();
            let r = app.login(&user.username, "a perfectly fine passphrase");
            logins.push(started.elapsed());
            if r.status != 200 {
                bail!("login failed during the benchmark: {}", r.text());
            }
            token = r.json()["access_token"]
                .as_str()
                .unwrap_or_default()
                .to_string();
        }
        for _ in 0..READS {
            app.with_bearer("GET", "/api/auth/me", &token);
        }
        let mut auth_us: Vec<u64> = app
            .component_logs()
            .lines()
            .filter(|l| l.contains("\"path\":\"/api/auth/me\""))
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|v| v["auth_us"].as_u64())
            .collect();
        auth_us.sort_unstable();
        logins.sort();
        let pct = |v: &[u64], p: f64| {
            v.get(((v.len().max(1) - 1) as f64 * p).round() as usize)
                .copied()
                .unwrap_or(0)
        };
        println!(
            "{:<10} {:>16.1} {:>16.1} {:>16} {:>16}   ({} logins, {} authenticated reads)",
            leg.name(),
            percentile(&logins, 0.50),
            percentile(&logins, 0.99),
            pct(&auth_us, 0.50),
            pct(&auth_us, 0.99),
            LOGINS,
            auth_us.len()
        );
    }
    Ok(())
}

/// `cargo xtask bench decisions`: the queue with 100,000 decisions (listing
/// latency), then 16 analysts claiming concurrently for 10 s from the same
/// pool, counting wins and conflicts and checking that no transition was
/// lost or duplicated.
fn bench_decisions() -> Result<()> {
    build::build_all()?;
    release_host()?;
    const DECISIONS: i64 = 100_000;
    const ANALYSTS: usize = 16;
    for leg in [Leg::Host, Leg::Spin] {
        if let Some(why) = leg.missing() {
            println!("SKIPPED: the {} row: {why}", leg.name());
            continue;
        }
        let app = TestApp::start(leg)?;
        let now = vigil_core::time::now_millis();
        let started = Instant::now();
        vigil_e2e::execute(
            &app,
            &format!(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {DECISIONS})
                 INSERT INTO decisions (id, source, subject_kind, subject_id, action, parameters, threat_level, confidence,
                                        summary, rationale, evidence, priority, sla_deadline, status, version, submitted_by,
                                        created_at, updated_at)
                 SELECT printf('00000000-0000-4000-8000-%012d', i), 'bench', 'alert', 'a' || i, 'block_ip', '{{}}',
                        'high', 0.9, 'bench', '', '{{\"refs\":[],\"watchlist_match\":false}}', 1 + i % 4,
                        {now} + (i % 5000) * 1000, 'pending', 1, 'bench-engine', {now}, {now} FROM n;"
            ),
        );
        println!(
            "{}: {DECISIONS} decisions inserted in {:.1} s",
            leg.name(),
            started.elapsed().as_secs_f64()
        );

        let token = app.token(Role::Analyst);
        let mut list = Vec::new();
        for i in 0..200 {
            let path = if i % 2 == 0 {
                "/api/decisions?limit=50"
            } else {
                "/api/decisions?status=pending&priority=P2&limit=50"
            };
            let t = Instant::now();
            let r = app.with_bearer("GET", path, &token);
            list.push(t.elapsed());
            if r.status != 200 {
                bail!("listing failed: {}", r.text());
            }
        }
        list.sort();
        println!(
            "{}: queue listing of {DECISIONS} (first page of 50, plain and filtered): p50 {:.2} ms, p99 {:.2} ms",
            leg.name(),
            percentile(&list, 0.50),
            percentile(&list, 0.99)
        );

        // 16 analysts race for the same 2,000 decisions, each from version 1.
        let deadline = Instant::now() + Duration::from_secs(10);
        let results: Vec<(u64, u64, u64)> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..ANALYSTS)
                .map(|a| {
                    let (app, token) = (&app, &token);
                    s.spawn(move || {
                        let (mut won, mut conflicts, mut other) = (0, 0, 0);
                        let mut i = a as i64 * 7;
                        while Instant::now() < deadline {
                            i = (i * 31 + 17) % 2000;
                            let id = format!("00000000-0000-4000-8000-{:012}", i + 1);
                            let r = app.request(
                                "POST",
                                &format!("/api/decisions/{id}/claim"),
                                &[
                                    ("authorization", &format!("Bearer {token}")),
                                    ("if-match", "\"1\""),
                                ],
                                None,
                            );
                            match r.status {
                                200 => won += 1,
                                409 | 412 => conflicts += 1,
                                _ => other += 1,
                            }
                        }
                        (won, conflicts, other)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let won: u64 = results.iter().map(|r| r.0).sum();
        let conflicts: u64 = results.iter().map(|r| r.1).sum();
        let other: u64 = results.iter().map(|r| r.2).sum();
        let claims = vigil_e2e::count(
            &app,
            "SELECT count(*) FROM decision_transitions WHERE command = 'claim'",
        )
        .unwrap_or(-1);
        let doubled = vigil_e2e::count(&app, "SELECT count(*) FROM (SELECT decision_id FROM decision_transitions WHERE command = 'claim' GROUP BY decision_id HAVING count(*) > 1)").unwrap_or(-1);
        let claimed = vigil_e2e::count(
            &app,
            "SELECT count(*) FROM decisions WHERE status = 'claimed'",
        )
        .unwrap_or(-1);
        println!(
            "{}: {ANALYSTS} analysts for 10 s: {won} claims won ({:.0}/s), {conflicts} conflicts (412/409), {other} other; \
             history has {claims} claims, {claimed} decisions claimed, {doubled} claimed twice",
            leg.name(),
            won as f64 / 10.0
        );
        if claims != won as i64 || claimed != won as i64 || doubled != 0 {
            bail!("lost or duplicated transitions");
        }
    }
    Ok(())
}

/// `cargo xtask bench ingest-http`: events/s committed through
/// `POST /api/threats/events` in batches of 500 for 10 s, then
/// `GET /api/threats` latency with 1,000,000 stored events.
fn bench_ingest() -> Result<()> {
    build::build_all()?;
    release_host()?;
    const BATCH: usize = 500;
    const STORED: i64 = 1_000_000;
    for leg in [Leg::Host, Leg::Spin] {
        if let Some(why) = leg.missing() {
            println!("SKIPPED: the {} row: {why}", leg.name());
            continue;
        }
        let app = TestApp::start(leg)?;
        let token = app.token(Role::Analyst);
        let started = Instant::now();
        let (mut events, mut batches) = (0usize, 0usize);
        while started.elapsed() < Duration::from_secs(10) {
            let now = vigil_core::time::rfc3339(vigil_core::time::now_millis() - 1000);
            let items: Vec<serde_json::Value> = (0..BATCH)
                .map(|i| {
                    serde_json::json!({
                        "event_id": format!("b{batches}-{i}"), "sensor_id": "bench", "observed_at": now,
                        "event_type": "port_scan", "source_ip": format!("198.51.{}.{}", i / 250, i % 250),
                        "dest_ip": "10.1.2.3", "dest_port": 22
                    })
                })
                .collect();
            let r = app.post_json(
                "/api/threats/events",
                &serde_json::json!({"events": items}),
                Some(&token),
            );
            if r.status != 200 {
                bail!("ingest failed: {}", r.text());
            }
            events += r.json()["accepted"].as_array().map_or(0, |a| a.len());
            batches += 1;
        }
        let seconds = started.elapsed().as_secs_f64();
        println!(
            "{}: {events} events committed in {batches} batches of {BATCH}: {:.0} events/s",
            leg.name(),
            events as f64 / seconds
        );
        // The same batches timed inside the component (its request log), so
        // the figure without this client's share of the two cores is known too.
        let server_ms = logged(&app, "/api/threats/events", "ms");
        if !server_ms.is_empty() {
            let mean = server_ms.iter().sum::<f64>() / server_ms.len() as f64;
            let held = logged(&app, "/api/threats/events", "lock_held_us");
            let held_ms = held.iter().sum::<f64>() / held.len().max(1) as f64 / 1000.0;
            println!(
                "{}: a batch of {BATCH} inside the component: mean {mean:.1} ms, p50 {:.1} ms ({:.0} events/s of component time), the write lock held {held_ms:.1} ms of it",
                leg.name(),
                server_ms[server_ms.len() / 2],
                BATCH as f64 * 1000.0 / mean
            );
        }

        let now = vigil_core::time::now_millis();
        let started = Instant::now();
        vigil_e2e::execute(
            &app,
            &format!(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {STORED})
                 INSERT INTO threat_events (id, sensor_id, event_id, observed_at, received_at, event_type, source_ip,
                        source_class, score, severity, breakdown, confidence, payload, tags)
                 SELECT printf('00000000-0000-4000-9000-%012d', i), 'sensor-' || (i % 50), 'm' || i, {now} - i * 1000, {now},
                        CASE i % 3 WHEN 0 THEN 'port_scan' WHEN 1 THEN 'brute_force' ELSE 'http_probe' END,
                        '198.51.100.' || (i % 250), 'reserved', i % 100,
                        CASE WHEN i % 100 >= 80 THEN 'critical' WHEN i % 100 >= 60 THEN 'high' ELSE 'low' END,
                        '[]', 1.0, '{{}}', '[]' FROM n;"
            ),
        );
        println!(
            "{}: {STORED} events stored in {:.1} s",
            leg.name(),
            started.elapsed().as_secs_f64()
        );
        let mut latencies = Vec::new();
        for i in 0..100 {
            let path = match i % 3 {
                0 => "/api/threats?limit=50".to_string(),
                1 => "/api/threats?severity=critical&limit=50".to_string(),
                _ => "/api/threats?sensor_id=sensor-7&event_type=brute_force&limit=50".to_string(),
            };
            let t = Instant::now();
            let r = app.with_bearer("GET", &path, &token);
            latencies.push(t.elapsed());
            if r.status != 200 {
                bail!("listing failed: {}", r.text());
            }
        }
        latencies.sort();
        println!(
            "{}: GET /api/threats over {STORED} events (plain and filtered first pages): p50 {:.2} ms, p99 {:.2} ms",
            leg.name(),
            percentile(&latencies, 0.50),
            percentile(&latencies, 0.99)
        );
    }
    Ok(())
}
