//! `cargo xtask bench load`: the request path on realistic data.
//!
//! For each runtime (the built-in host, `spin up` on a SQLite file, `spin up`
//! on `sqld`), a fresh app is seeded with `--events` events of the realistic
//! mix ([`super::mix`], with the alerts ingestion would have grouped them
//! into), and a hello-world spin-sdk component (the floor: what the runtime
//! itself costs per request) is started beside it on the same runtime. Then
//! one table: each request at 1 and 32 connections (login at 8, ingestion
//! with 4 clients posting batches of 500), with req/s, p50, p99 and errors.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use vigil_core::Role;
use vigil_core::wire::wire;
use vigil_e2e::{Leg, TestApp};
use vigil_host::launch::{LaunchOptions, Runtime, launch};
use vigil_ingest::classify::{ZoneMap, classify};
use vigil_ingest::event::{RawEvent, validate};
use vigil_ingest::score::{REPEATS_THAT_COUNT, score};

use super::{Figures, drive, get_figures, load, logged, quantile};
use crate::{build, root};
use vigil_traffic::{Mix, SENSORS};

const DAY_MS: i64 = 24 * 3600 * 1000;
const BATCH: usize = 500;

struct Options {
    seconds: u64,
    events: u64,
    legs: Vec<Leg>,
    /// Only the rows whose name contains one of these (all when empty).
    only: Vec<String>,
}

impl Options {
    fn wants(&self, row: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|w| row.contains(w.as_str()))
    }
}

fn options(args: &[String]) -> Result<Options> {
    let mut o = Options {
        seconds: 5,
        events: 1_000_000,
        legs: vec![Leg::Host, Leg::Spin, Leg::SpinSqld],
        only: Vec::new(),
    };
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--seconds" => o.seconds = value()?.parse()?,
            "--events" => o.events = value()?.parse()?,
            "--only" => o.only = value()?.split(',').map(str::to_string).collect(),
            "--legs" => {
                let wanted = value()?.clone();
                o.legs.retain(|l| wanted.split(',').any(|w| w == l.name()));
            }
            other => bail!(
                "unknown option {other}; usage: cargo xtask bench load [--seconds N] [--events N] [--legs host,spin,spin+sqld] [--only ROW,ROW]"
            ),
        }
    }
    Ok(o)
}

pub fn run(args: &[String]) -> Result<()> {
    let o = options(args)?;
    build::build_all()?;
    if o.legs.contains(&Leg::Host) {
        super::release_host()?;
    }
    println!(
        "load generator: {}; {} events of the realistic mix per database; {} s per row",
        if super::has_wrk() {
            "wrk"
        } else {
            "in-process threads"
        },
        o.events,
        o.seconds
    );
    let mut table = Vec::new();
    for &leg in &o.legs {
        if let Some(why) = leg.missing() {
            println!("SKIPPED: the {} rows: {why}", leg.name());
            continue;
        }
        let app = TestApp::start(leg)?;
        let started = Instant::now();
        let (events, alerts) = seed(&app, o.events)?;
        println!(
            "{}: seeded {events} events and {alerts} alerts in {:.1} s",
            leg.name(),
            started.elapsed().as_secs_f64()
        );
        let floor = start_floor(leg)?;
        table.extend(measure(&app, &floor.base_url, leg, &o)?);
    }
    print_table(&table);
    Ok(())
}

/// The closing table: a header, then the rows made by [`row`].
pub(super) fn print_table(rows: &[String]) {
    println!(
        "\n{:<10} {:<44} {:>5} {:>9} {:>8} {:>8} {:>7}",
        "where", "request", "conns", "req/s", "p50 ms", "p99 ms", "errors"
    );
    for row in rows {
        println!("{row}");
    }
}

/// The floor: the hello-world component alone, on the same runtime as `leg`.
fn start_floor(leg: Leg) -> Result<vigil_host::launch::Running> {
    let dir = root().join("target/bench/floor");
    std::fs::create_dir_all(&dir)?;
    let wasm = root().join("target/wasm32-wasip2/release/vigil_bench_floor.wasm");
    std::fs::write(
        dir.join("spin.toml"),
        format!(
            "spin_manifest_version = 2\n[application]\nname = \"floor\"\n\
             [[trigger.http]]\nroute = \"/...\"\ncomponent = \"floor\"\n\
             [component.floor]\nsource = {:?}\n",
            wasm.display().to_string()
        ),
    )?;
    launch(LaunchOptions {
        runtime: if leg == Leg::Host {
            Runtime::Host
        } else {
            Runtime::Spin
        },
        manifest: dir.join("spin.toml"),
        runtime_config: None,
        env: vec![],
        workdir: dir.join(leg.name().replace('+', "-")),
    })
}

/// Fill the app's database with `n` events of the mix over the last 30 days,
/// scored and grouped as ingestion does, 50 registered sensors and the
/// alerts; returns (events, alerts).
fn seed(app: &TestApp, n: u64) -> Result<(u64, usize)> {
    let target = app.db.as_ref().context("the bench started this app")?;
    let now = vigil_core::time::now_millis();
    let zones = ZoneMap::parse(vigil_e2e::TEST_THREAT_ZONES).map_err(anyhow::Error::msg)?;
    let start = now - 30 * DAY_MS;
    let step = (30 * DAY_MS) / n.max(1) as i64;
    let mut mix = Mix::new(42, "seed");
    let mut recent: HashMap<String, VecDeque<i64>> = HashMap::new();
    let mut open: HashMap<String, usize> = HashMap::new();
    let mut alerts: Vec<SeedAlert> = Vec::new();
    let mut rows: Vec<Vec<libsql::Value>> = Vec::new();
    vigil_e2e::block_on(async {
        let conn = target.connect().await?;
        let mut sensors = String::new();
        for s in 0..SENSORS {
            sensors += &format!(
                "INSERT INTO sensors (id, name, kind, last_heartbeat, version, created_by, created_at, updated_at)
                 VALUES ('sensor-{s:02}', 'Sensor {s}', 'honeypot', {now}, 1, 'bench', {start}, {start});"
            );
        }
        conn.execute_batch(&sensors).await?;
        for i in 0..n {
            let at = start + i as i64 * step;
            let raw: RawEvent = serde_json::from_value(mix.event(at))?;
            let event = validate(raw, now, 90 * DAY_MS, "")
                .map_err(|e| anyhow::anyhow!("the mix made an invalid event: {e:?}"))?;
            let source = event.source_ip.to_string();
            let seen = recent.entry(source.clone()).or_default();
            while seen.front().is_some_and(|t| *t < at - 3600 * 1000) {
                seen.pop_front();
            }
            let zone = event.dest_ip.and_then(|ip| zones.zone_of(ip));
            let scored = score(&event, zone.map(|z| z.criticality), seen.len() as u32);
            if seen.len() < REPEATS_THAT_COUNT as usize {
                seen.push_back(at);
            }
            let alert_id = vigil_ingest::alert::raises_alert(scored.severity).then(|| {
                let key = vigil_ingest::alert::group_key(&event);
                let joins = open.get(&key).is_some_and(|&a| {
                    at - alerts[a].last_seen <= vigil_ingest::alert::DEFAULT_WINDOW_MS
                });
                if !joins {
                    open.insert(key.clone(), alerts.len());
                    alerts.push(SeedAlert {
                        id: vigil_core::id::new_ordered_id(),
                        key: key.clone(),
                        source: source.clone(),
                        event_type: wire(&event.event_type),
                        sensor: event.sensor_id.clone(),
                        severity: scored.severity,
                        max_score: 0,
                        count: 0,
                        first_seen: at,
                        last_seen: at,
                    });
                }
                let a = &mut alerts[open[&key]];
                a.count += 1;
                a.last_seen = at;
                a.max_score = a.max_score.max(scored.score.into());
                a.severity = a.severity.max(scored.severity);
                a.id.clone()
            });
            let text = |s: String| libsql::Value::Text(s);
            let opt = |s: Option<String>| s.map_or(libsql::Value::Null, libsql::Value::Text);
            rows.push(vec![
                text(vigil_core::id::new_ordered_id()),
                text(event.sensor_id.clone()),
                text(event.event_id.clone()),
                libsql::Value::Integer(at),
                libsql::Value::Integer(at + 200),
                text(wire(&event.event_type)),
                text(source),
                text(wire(&classify(event.source_ip))),
                event
                    .source_port
                    .map_or(libsql::Value::Null, |p| libsql::Value::Integer(p.into())),
                opt(event.dest_ip.map(|ip| ip.to_string())),
                event
                    .dest_port
                    .map_or(libsql::Value::Null, |p| libsql::Value::Integer(p.into())),
                opt(zone.map(|z| z.name.clone())),
                opt(event.protocol.clone()),
                opt(event.event_type.technique().map(|t| t.id.to_string())),
                libsql::Value::Integer(scored.score.into()),
                text(wire(&scored.severity)),
                text(serde_json::to_string(&scored.breakdown)?),
                libsql::Value::Real(event.confidence),
                text(serde_json::Value::Object(event.payload.clone()).to_string()),
                text(serde_json::to_string(&event.tags)?),
                opt(alert_id),
            ]);
            if rows.len() == 20_000 || i + 1 == n {
                insert(&conn, THREAT_INSERT, std::mem::take(&mut rows)).await?;
            }
        }
        let alert_rows = alerts
            .iter()
            .enumerate()
            .map(|(i, a)| {
                // Older alerts were mostly dealt with; the last day's are open.
                let status = if a.last_seen > now - DAY_MS || i % 10 == 0 {
                    "open"
                } else if i % 5 == 0 {
                    "acknowledged"
                } else {
                    "resolved"
                };
                vec![
                    libsql::Value::Text(a.id.clone()),
                    libsql::Value::Text(a.key.clone()),
                    libsql::Value::Text(status.into()),
                    libsql::Value::Text(a.source.clone()),
                    libsql::Value::Text(a.event_type.clone()),
                    libsql::Value::Text(a.sensor.clone()),
                    libsql::Value::Text(wire(&a.severity)),
                    libsql::Value::Integer(a.max_score),
                    libsql::Value::Integer(a.count),
                    libsql::Value::Integer(a.first_seen),
                    libsql::Value::Integer(a.last_seen),
                    libsql::Value::Integer(1),
                    libsql::Value::Integer(a.first_seen),
                    libsql::Value::Integer(a.last_seen),
                ]
            })
            .collect();
        insert(&conn, ALERT_INSERT, alert_rows).await?;
        // Statistics for the query planner, as `vigil migrate` leaves none; a
        // libSQL server refuses ANALYZE over its protocol and plans without.
        let _ = conn.execute("ANALYZE", ()).await;
        anyhow::Ok(())
    })?;
    Ok((n, alerts.len()))
}

struct SeedAlert {
    id: String,
    key: String,
    source: String,
    event_type: String,
    sensor: String,
    severity: vigil_ingest::event::Severity,
    max_score: i64,
    count: i64,
    first_seen: i64,
    last_seen: i64,
}

const THREAT_INSERT: &str = "INSERT INTO threat_events (id, sensor_id, event_id, observed_at, received_at, event_type, source_ip, source_class,
    source_port, dest_ip, dest_port, dest_zone, protocol, technique, score, severity, breakdown, confidence, payload, tags, alert_id) VALUES ";
const ALERT_INSERT: &str = "INSERT INTO alerts (id, group_key, status, source_ip, event_type, sensor_id, severity, max_score,
    event_count, first_seen, last_seen, version, created_at, updated_at) VALUES ";

/// Insert `rows` with `head` (… VALUES), 100 rows per statement, in one transaction.
async fn insert(
    conn: &libsql::Connection,
    head: &str,
    rows: Vec<Vec<libsql::Value>>,
) -> Result<()> {
    let tx = conn.transaction().await?;
    for chunk in rows.chunks(100) {
        let width = chunk[0].len();
        let tuple = format!("({})", vec!["?"; width].join(", "));
        let sql = format!("{head}{}", vec![tuple; chunk.len()].join(", "));
        let params: Vec<libsql::Value> = chunk.iter().flatten().cloned().collect();
        tx.execute(&sql, params).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// One row of the table.
pub(super) fn row(leg: Leg, request: &str, connections: usize, f: &Figures) -> String {
    format!(
        "{:<10} {:<44} {:>5} {:>9.0} {:>8.2} {:>8.2} {:>7}",
        leg.name(),
        request,
        connections,
        f.requests as f64 / f.seconds,
        f.p50_ms,
        f.p99_ms,
        f.errors
    )
}

/// A row of GET requests: what the row says, the URL, its headers, and the
/// status every answer must have.
type Get<'a> = (&'a str, String, Vec<(String, String)>, u16);

fn measure(app: &TestApp, floor: &str, leg: Leg, o: &Options) -> Result<Vec<String>> {
    let duration = Duration::from_secs(o.seconds);
    let token = app.token(Role::Analyst);
    let bearer = vec![("authorization".to_string(), format!("Bearer {token}"))];
    let gets: Vec<Get> = vec![
        (
            "floor: hello-world component",
            format!("{floor}/"),
            vec![],
            200,
        ),
        (
            "404 under /api/threats (no database)",
            app.url("/api/threats/nothing/here"),
            vec![],
            404,
        ),
        (
            "GET /api/threats/health",
            app.url("/api/threats/health"),
            vec![],
            200,
        ),
        (
            "GET /api/auth/me",
            app.url("/api/auth/me"),
            bearer.clone(),
            200,
        ),
        (
            "GET /api/threats?limit=50",
            app.url("/api/threats?limit=50"),
            bearer.clone(),
            200,
        ),
        (
            "GET /api/threats?severity=high&limit=50",
            app.url("/api/threats?severity=high&limit=50"),
            bearer.clone(),
            200,
        ),
        (
            "GET /api/alerts?status=open&limit=50",
            app.url("/api/alerts?status=open&limit=50"),
            bearer.clone(),
            200,
        ),
    ];
    let mut table = Vec::new();
    // Each row is printed as it is measured, and again in the closing table.
    let mut emit = |line: String| {
        println!("{line}");
        table.push(line);
    };
    for (what, url, headers, status) in gets.iter().filter(|g| o.wants(g.0)) {
        load(url, headers, 4, Duration::from_millis(300), *status); // warm-up
        for connections in [1, 32] {
            let f = get_figures(url, headers, connections, duration, *status);
            emit(row(leg, what, connections, &f));
        }
    }
    if o.wants("POST /api/auth/login") {
        emit(row(
            leg,
            "POST /api/auth/login",
            8,
            &logins(app, 8, duration)?,
        ));
    }
    if !o.wants("POST /api/threats/events") {
        return Ok(table);
    }
    let (f, events_per_s) = ingest(app, &token, 4, duration);
    emit(row(
        leg,
        &format!("POST /api/threats/events ×{BATCH} ({events_per_s:.0} ev/s)"),
        4,
        &f,
    ));
    // The same batches timed inside the component (its request log), in ms.
    let waits: Vec<f64> = logged(app, "/api/threats/events", "lock_wait_us")
        .into_iter()
        .map(|us| us / 1000.0)
        .collect();
    let inside = [
        ("waiting for the lock", waits),
        ("in all", logged(app, "/api/threats/events", "ms")),
    ];
    for (what, ms) in inside {
        emit(format!(
            "{:<10} {:<44} {:>5} {:>9} {:>8.2} {:>8.2}",
            leg.name(),
            format!("  inside the component: {what}"),
            4,
            "",
            quantile(&ms, 0.5),
            quantile(&ms, 0.99)
        ));
    }
    if !o.wants("mixed") {
        return Ok(table);
    }
    for (what, connections, f) in mixed(app, &token, duration) {
        emit(row(leg, &what, connections, &f));
    }
    Ok(table)
}

/// The mixed load: 32 readers (threat pages, open alerts and `/api/auth/me`
/// in turn), 4 clients ingesting batches of the mix, and 4 analysts each
/// submitting a decision, claiming it and approving it, all at once. One row
/// per kind; each decision write is one request of its row.
fn mixed(app: &TestApp, token: &str, duration: Duration) -> Vec<(String, usize, Figures)> {
    let reads = [
        "/api/threats?limit=50",
        "/api/threats?severity=high&limit=50",
        "/api/alerts?status=open&limit=50",
        "/api/auth/me",
    ]
    .map(|path| app.url(path));
    let admin = format!("Bearer {}", app.token(Role::Admin));
    let analyst = format!("Bearer {}", app.token(Role::Analyst));
    let (readers, (ingesting, events_per_s), deciding) = std::thread::scope(|scope| {
        let readers = scope.spawn(|| {
            drive(32, duration, |c| {
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .build()
                    .into();
                let mut next = c;
                let reads = &reads;
                move || {
                    next += 1;
                    let t = Instant::now();
                    let mut r = agent
                        .get(&reads[next % reads.len()])
                        .header("authorization", &format!("Bearer {token}"))
                        .call()
                        .ok()
                        .filter(|r| r.status() == 200)?;
                    r.body_mut().read_to_vec().ok()?;
                    Some(t.elapsed())
                }
            })
        });
        let ingesting = scope.spawn(|| ingest(app, token, 4, duration));
        let deciding = drive(4, duration, |_| {
            let (admin, analyst) = (&admin, &analyst);
            // The decision in hand and its ETag, between the three writes.
            let mut current: Option<(String, String, &str)> = None;
            move || {
                let t = Instant::now();
                let (path, auth, etag, body, key) = match &current {
                    None => (
                        "/api/decisions".to_string(),
                        admin,
                        None,
                        decision_proposal(),
                        Some(vigil_core::id::new_id()),
                    ),
                    Some((id, etag, command)) => (
                        format!("/api/decisions/{id}/{command}"),
                        analyst,
                        Some(etag.clone()),
                        serde_json::json!({"note": "bench"}),
                        None,
                    ),
                };
                let mut headers = vec![
                    ("authorization", auth.as_str()),
                    ("content-type", "application/json"),
                ];
                if let Some(etag) = &etag {
                    headers.push(("if-match", etag));
                }
                if let Some(key) = &key {
                    headers.push(("idempotency-key", key));
                }
                let r = vigil_e2e::client::request(
                    "POST",
                    &app.url(&path),
                    &headers,
                    Some(body.to_string().as_bytes()),
                )
                .ok()?;
                let latency = t.elapsed();
                let etag = r.header("etag").map(str::to_string);
                current = match (&current, r.status, etag) {
                    (None, 201, Some(etag)) => {
                        Some((r.json()["id"].as_str()?.to_string(), etag, "claim"))
                    }
                    (Some((id, _, "claim")), 200, Some(etag)) => {
                        Some((id.clone(), etag, "approve"))
                    }
                    (Some((_, _, "approve")), 200, _) => None,
                    _ => {
                        current = None;
                        return None;
                    }
                };
                Some(latency)
            }
        });
        (
            readers.join().expect("readers"),
            ingesting.join().expect("ingest clients"),
            deciding,
        )
    });
    vec![
        (
            "mixed: reads (threats, alerts, me)".to_string(),
            32,
            readers,
        ),
        (
            format!("mixed: ingest ×{BATCH} ({events_per_s:.0} ev/s)"),
            4,
            ingesting,
        ),
        (
            "mixed: submit, claim, approve (each)".to_string(),
            4,
            deciding,
        ),
    ]
}

/// A decision any analyst may approve, about an alert of its own.
fn decision_proposal() -> serde_json::Value {
    serde_json::json!({
        "source": "bench-engine",
        "subject": {"kind": "alert", "id": vigil_core::id::new_id()},
        "proposed_action": "block_ip",
        "parameters": {"target": "203.0.113.7"},
        "threat_level": "high",
        "confidence": 0.9,
        "summary": "Brute force from 203.0.113.7 against the SSH honeypot",
        "rationale": "412 failed logins in 3 minutes",
        "evidence": {"refs": ["event:1"]}
    })
}

/// Logins at `connections` concurrent clients, each request on a new
/// connection from its own loopback address (so the per-address throttle,
/// 30 a minute, measures nothing but itself).
fn logins(app: &TestApp, connections: usize, duration: Duration) -> Result<Figures> {
    const PASSWORD: &str = "a perfectly fine passphrase";
    let user = app.create_user(Role::Analyst, PASSWORD);
    let body = serde_json::json!({"username": user.username, "password": PASSWORD}).to_string();
    let addr: std::net::SocketAddr = app.base_url.trim_start_matches("http://").parse()?;
    let next_source = AtomicU32::new(0);
    Ok(drive(connections, duration, |_| {
        || {
            let n = next_source.fetch_add(1, Ordering::Relaxed);
            let source = std::net::Ipv4Addr::new(127, 1, (n >> 8) as u8, n as u8);
            let t = Instant::now();
            matches!(post_from(source, addr, "/api/auth/login", &body), Ok(200))
                .then(|| t.elapsed())
        }
    }))
}

/// A JSON POST over a new connection bound to `source`; the response's status.
fn post_from(
    source: std::net::Ipv4Addr,
    to: std::net::SocketAddr,
    path: &str,
    body: &str,
) -> Result<u16> {
    use std::io::{Read, Write};
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    socket.bind(&std::net::SocketAddr::from((source, 0)).into())?;
    socket.connect(&to.into())?;
    let mut stream: std::net::TcpStream = socket.into();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nhost: {to}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    let status = String::from_utf8_lossy(&answer)
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("no HTTP status line")?;
    Ok(status)
}

/// `clients` posting batches of the mix for `duration`; (figures per batch, events/s).
fn ingest(app: &TestApp, token: &str, clients: usize, duration: Duration) -> (Figures, f64) {
    let url = app.url("/api/threats/events");
    let accepted = AtomicUsize::new(0);
    let started = Instant::now();
    let figures = drive(clients, duration, |c| {
        let (url, accepted) = (&url, &accepted);
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let mut mix = Mix::new(
            1000 + c as u64,
            &format!("live{c}-{}", vigil_core::id::new_id()),
        );
        move || {
            let now = vigil_core::time::now_millis() - 1000;
            let events: Vec<_> = (0..BATCH).map(|_| mix.event(now)).collect();
            let body = serde_json::json!({"events": events}).to_string();
            let t = Instant::now();
            let mut r = agent
                .post(url)
                .header("authorization", &format!("Bearer {token}"))
                .header("content-type", "application/json")
                .send(&body)
                .ok()
                .filter(|r| r.status() == 200)?;
            let reply: serde_json::Value = r
                .body_mut()
                .read_to_vec()
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .unwrap_or_default();
            let latency = t.elapsed();
            let n = reply["accepted"].as_array().map_or(0, Vec::len);
            accepted.fetch_add(n, Ordering::Relaxed);
            Some(latency)
        }
    });
    let events = accepted.load(Ordering::Relaxed) as f64;
    (figures, events / started.elapsed().as_secs_f64())
}
