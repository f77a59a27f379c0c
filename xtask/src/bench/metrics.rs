//! `cargo xtask bench metrics [--events N] [--requests N]`: what the metrics
//! rollups cost and what they buy.
//!
//! - **Ingestion cost**: 40 batches of 500 events of the realistic mix
//!   (`vigil-traffic`) through the real pipeline (`vigil_ingest::pipeline`)
//!   into a local SQLite file, natively; the time of each transaction and,
//!   measured on the same run by a statement timer around the connection,
//!   the part spent in the rollup upserts (`INSERT INTO rollup_…`). The
//!   share is what ingestion would be faster without them.
//! - **Query latency**: rollups as `--events` (default 10,000,000) events
//!   and 100,000 decisions over 30 days leave them, seeded directly (an
//!   assumption, printed: each hour holds 2,000 distinct event keys of 50
//!   sensors × 18 types × severities, and ~100 decision keys), then
//!   `GET /api/metrics/summary?range=30d` and hourly
//!   `GET /api/metrics/trends?range=30d` through the real component on the
//!   built-in host and on `spin up`: p50 and p99 of `--requests` (default
//!   50) sequential requests each.
//!
//! It prints figures and asserts nothing about time.

use std::cell::Cell;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use vigil_core::ApiError;
use vigil_core::audit::Actor;
use vigil_core::rollup::HOUR_MS;
use vigil_core::sql::{Row, Sql, Value};
use vigil_db::Target;
use vigil_db::sql::LibsqlSql;
use vigil_host::launch::{LaunchOptions, Runtime, launch};

/// Event keys per hour and hours seeded for the query figures.
const KEYS_PER_HOUR: i64 = 2_000;
const HOURS: i64 = 30 * 24;

pub fn run(args: &[String]) -> Result<()> {
    let flag = |name: &str, default: i64| -> Result<i64> {
        match args.iter().position(|a| a == name) {
            Some(i) => Ok(args
                .get(i + 1)
                .map(|v| v.parse())
                .transpose()?
                .unwrap_or(default)),
            None => Ok(default),
        }
    };
    let events = flag("--events", 10_000_000)?;
    let requests = flag("--requests", 50)?.max(1) as usize;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(ingestion_cost())?;
    crate::build::build()?;
    for runtime in [Runtime::Host, Runtime::Spin] {
        if runtime == Runtime::Spin && Runtime::spin_binary().is_none() {
            println!("metrics under spin up: SKIPPED (spin not found)");
            continue;
        }
        query_latency(runtime, events, requests)?;
    }
    Ok(())
}

/// A connection that times the statements touching the rollups.
struct Timed<'a> {
    inner: LibsqlSql<'a>,
    rollups: Cell<Duration>,
}

impl Sql for Timed<'_> {
    async fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, ApiError> {
        let started = Instant::now();
        let rows = self.inner.query(sql, params).await;
        if sql.trim_start().starts_with("INSERT INTO rollup_") {
            self.rollups.set(self.rollups.get() + started.elapsed());
        }
        rows
    }
}

async fn ingestion_cost() -> Result<()> {
    use vigil_ingest::pipeline::{self, Sender, Storing};
    let dir = tempfile::Builder::new()
        .prefix("vigil-bench-metrics-")
        .tempdir()?;
    let target = Target::Local(dir.path().join("bench.db"));
    vigil_db::migrations::migrate(&target, &vigil_db::migrations::embedded()).await?;
    let conn = target.connect().await?;
    let db = Timed {
        inner: LibsqlSql(&conn),
        rollups: Cell::new(Duration::ZERO),
    };
    let actor = Actor {
        actor: "bench".into(),
        request_id: None,
        client_addr: None,
    };
    let mut mix = vigil_traffic::Mix::new(7, "bench");
    let mut storing = Storing {
        zones: vigil_ingest::classify::ZoneMap::parse(vigil_e2e::TEST_THREAT_ZONES)
            .map_err(|e| anyhow::anyhow!("{e}"))?,
        alert_window_ms: 15 * 60_000,
        geo: vigil_ingest::geo::GeoLookup::new(vec![], |_| {}),
    };
    let (batches, per_batch) = (40, 500);
    let now = vigil_core::time::now_millis();
    let mut total = Duration::ZERO;
    for b in 0..batches {
        let items: Vec<serde_json::Value> = (0..per_batch)
            .map(|i| mix.event(now - 3_600_000 + (b * per_batch + i) as i64 * 50))
            .collect();
        let mut validated = pipeline::validate(items, now, 90 * 24 * HOUR_MS);
        let started = Instant::now();
        conn.execute("BEGIN IMMEDIATE", ()).await?;
        pipeline::commit(
            &db,
            &mut storing,
            &Sender {
                sensor: None,
                actor: &actor,
            },
            &mut validated,
            now,
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        conn.execute("COMMIT", ()).await?;
        total += started.elapsed();
    }
    let events = (batches * per_batch) as f64;
    let rollups = db.rollups.get();
    let without = total.saturating_sub(rollups);
    println!(
        "ingestion through the pipeline (native, dev build, SQLite file): {batches} batches of {per_batch}: {:.0} events/s with the rollups, {:.0} events/s without their statements; the rollups take {:.1} % of each batch's transaction ({:.2} ms of {:.1} ms per batch)",
        events / total.as_secs_f64(),
        events / without.as_secs_f64(),
        100.0 * rollups.as_secs_f64() / total.as_secs_f64(),
        rollups.as_secs_f64() * 1000.0 / batches as f64,
        total.as_secs_f64() * 1000.0 / batches as f64,
    );
    Ok(())
}

/// Rollups as `events` events and 100,000 decisions over the last 30 days leave them.
async fn seed(conn: &libsql::Connection, events: i64) -> Result<()> {
    let start = vigil_core::rollup::hour_of(vigil_core::time::now_millis()) - (HOURS - 1) * HOUR_MS;
    let per_key = (events / HOURS / KEYS_PER_HOUR).max(1);
    let types = serde_json::to_string(&[
        "port_scan",
        "brute_force",
        "credential_stuffing",
        "exploit_attempt",
        "sql_injection",
        "malware_download",
        "c2_beacon",
        "data_exfiltration",
        "dos",
        "ssh_session",
        "http_probe",
        "smb_probe",
        "wifi_deauth",
        "evil_twin",
        "ble_spam",
        "usb_hid_injection",
        "usb_mass_storage",
        "other",
    ])?;
    conn.execute(
        &format!(
            "WITH RECURSIVE h(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM h WHERE i < {HOURS} - 1),
                            k(j) AS (SELECT 0 UNION ALL SELECT j + 1 FROM k WHERE j < {KEYS_PER_HOUR} - 1)
             INSERT INTO rollup_events (hour, sensor_id, event_type, severity, zone, country, events, score_sum, max_score)
             SELECT ?1 + i * {HOUR_MS}, 'sensor-' || (j % 50), json_extract(?2, '$[' || ((j / 50) % 18) || ']'),
                    json_extract('[\"info\",\"low\",\"medium\",\"high\",\"critical\"]', '$[' || ((j / 900) % 5) || ']'),
                    '', 'C' || (j % 7), ?3, ?3 * 40, 80
               FROM h, k"
        ),
        libsql::params![start, types, per_key],
    )
    .await?;
    // ~139 decisions an hour: per hour 4 priorities × outcomes × 10 analysts, and their histograms.
    conn.execute(
        &format!(
            "WITH RECURSIVE h(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM h WHERE i < {HOURS} - 1),
                            k(j) AS (SELECT 0 UNION ALL SELECT j + 1 FROM k WHERE j < 99)
             INSERT INTO rollup_decisions (hour, priority, outcome, reason, analyst, count, decided, ttd_ms_sum, sla_breaches)
             SELECT ?1 + i * {HOUR_MS}, 1 + j % 4,
                    json_extract('[\"submitted\",\"approved\",\"dismissed\",\"rejected\",\"escalated\"]', '$[' || ((j / 4) % 5) || ']'),
                    CASE WHEN (j / 4) % 5 = 2 THEN 'false_positive' ELSE '' END, 'analyst-' || (j / 20), 2, 1, 600000, 0
               FROM h, k;
             "
        ),
        libsql::params![start],
    )
    .await?;
    conn.execute(
        &format!(
            "WITH RECURSIVE h(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM h WHERE i < {HOURS} - 1),
                            k(j) AS (SELECT 0 UNION ALL SELECT j + 1 FROM k WHERE j < 79)
             INSERT INTO rollup_durations (hour, series, bucket, count)
             SELECT ?1 + i * {HOUR_MS}, json_extract('[\"tta\",\"ttd:P1\",\"ttd:P2\",\"ttd:P3\",\"ttd:P4\"]', '$[' || (j / 16) || ']'), j % 16, 3
               FROM h, k"
        ),
        libsql::params![start],
    )
    .await?;
    conn.execute(
        &format!(
            "WITH RECURSIVE h(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM h WHERE i < {HOURS} - 1)
             INSERT INTO rollup_alerts (hour, severity, opened, acknowledged, resolved, ack_ms_sum)
             SELECT ?1 + i * {HOUR_MS}, s.value, 20, 15, 10, 15 * 300000
               FROM h, json_each('[\"high\",\"critical\"]') AS s"
        ),
        libsql::params![start],
    )
    .await?;
    Ok(())
}

fn quantile(sorted: &[f64], p: f64) -> f64 {
    sorted[((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1]
}

fn query_latency(runtime: Runtime, events: i64, requests: usize) -> Result<()> {
    use vigil_core::Role;
    let dir = tempfile::Builder::new()
        .prefix("vigil-bench-metrics-")
        .tempdir()?;
    let db = Target::Local(dir.path().join("vigil.db"));
    vigil_e2e::migrate(&db)?;
    vigil_e2e::seed_principals(&db)?;
    let seeding = Instant::now();
    vigil_e2e::block_on(async { seed(&db.connect().await?, events).await })?;
    let rows = vigil_e2e::block_on(async {
        vigil_db::target::query_i64(
            &db.connect().await?,
            "SELECT count(*) FROM rollup_events",
            (),
        )
        .await
    })?
    .unwrap_or(0);
    println!(
        "seeded rollups for {events} events over 30 days: {rows} event rows ({KEYS_PER_HOUR} keys an hour), 72,000 decision rows, in {:.1} s",
        seeding.elapsed().as_secs_f64()
    );
    let config = dir.path().join("runtime-config.toml");
    std::fs::write(
        &config,
        format!(
            "[sqlite_database.default]\ntype = \"spin\"\npath = {:?}\n",
            dir.path().join("vigil.db").display().to_string()
        ),
    )?;
    let signer = vigil_core::token::TokenSigner::generate("bench");
    let running = launch(LaunchOptions {
        runtime,
        manifest: crate::root().join("spin.toml"),
        runtime_config: Some(config),
        env: vigil_e2e::app_variables(&signer),
        workdir: dir.path().to_path_buf(),
    })?;
    let (user, session) = vigil_e2e::test_principal(Role::Viewer);
    let token = signer.sign(&vigil_core::token::Claims::user_access(
        "vigil",
        "vigil",
        &user,
        Role::Viewer,
        &session,
        vigil_core::time::now_millis() / 1000,
    ));
    let auth = format!("Bearer {token}");
    for path in [
        "/api/metrics/summary?range=30d",
        "/api/metrics/trends?metric=events&bucket=hour&range=30d",
        "/api/metrics/trends?metric=events&bucket=hour&range=30d&group_by=severity",
    ] {
        let mut times = Vec::with_capacity(requests);
        for _ in 0..requests {
            let started = Instant::now();
            let r = vigil_e2e::client::request(
                "GET",
                &format!("{}{path}", running.base_url),
                &[("authorization", &auth)],
                None,
            )?;
            times.push(started.elapsed().as_secs_f64() * 1000.0);
            if r.status != 200 {
                bail!("{path} answered {}: {}", r.status, r.text());
            }
        }
        times.sort_by(|a, b| a.total_cmp(b));
        println!(
            "{} {path}: p50 {:.1} ms, p99 {:.1} ms ({requests} sequential requests)",
            runtime.name(),
            quantile(&times, 0.5),
            quantile(&times, 0.99)
        );
    }
    Ok(())
}
