//! `cargo xtask bench metrics [--events N] [--requests N] [--legs ingest,host,spin,spin+sqld]`:
//! what the metrics rollups cost and what they buy.
//!
//! - **Ingestion cost** (`ingest`): 40 batches of 500 events of the
//!   realistic mix (`vigil-traffic`) through the real pipeline
//!   (`vigil_ingest::pipeline`) into a local SQLite file, natively; the time
//!   of each transaction and, measured on the same run by a statement timer
//!   around the connection, the part spent in the rollup upserts (`INSERT
//!   INTO rollup_…`). The share is what ingestion would be faster without them.
//! - **Query latency** (`host`, `spin`, `spin+sqld`): rollups as `--events`
//!   (default 10,000,000) events and 100,000 decisions over 30 days leave
//!   them, seeded by SQL on the leg's database (an assumption, printed:
//!   each hour's events spread over 50 sensors, 16 types, 5 severities, 3
//!   zones and 60 countries, every sensor seeing every type and severity;
//!   ~100 decision keys an hour), the day rows then derived from the hour
//!   rows by the code `vigil metrics rebuild` uses; then
//!   `GET /api/metrics/summary?range=30d` and hourly
//!   `GET /api/metrics/trends?range=30d` (plain and by severity) through the
//!   real component, as the suite starts it on each leg: p50 and p99 of
//!   `--requests` (default 50) sequential requests each, after 3 unmeasured.
//!
//! It prints figures and asserts nothing about time.

use std::cell::Cell;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use vigil_core::ApiError;
use vigil_core::audit::Actor;
use vigil_core::rollup::HOUR_MS;
use vigil_core::sql::{Row, Sql, Value};
use vigil_db::Target;
use vigil_db::sql::LibsqlSql;
use vigil_e2e::{Leg, TestApp};

/// Hours seeded for the query figures.
const HOURS: i64 = 30 * 24;

pub fn run(args: &[String]) -> Result<()> {
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
    };
    let number = |name: &str, default: i64| -> Result<i64> {
        Ok(flag(name)
            .map(|v| v.parse())
            .transpose()
            .with_context(|| format!("{name} takes a number"))?
            .unwrap_or(default))
    };
    let events = number("--events", 10_000_000)?;
    let requests = number("--requests", 50)?.max(1) as usize;
    let legs: Vec<&str> = flag("--legs")
        .map_or("ingest,host,spin,spin+sqld", String::as_str)
        .split(',')
        .collect();
    if legs.contains(&"ingest") {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(ingestion_cost())?;
    }
    let wanted: Vec<Leg> = [Leg::Host, Leg::Spin, Leg::SpinSqld]
        .into_iter()
        .filter(|l| legs.contains(&l.name()))
        .collect();
    if !wanted.is_empty() {
        crate::build::build()?;
    }
    for leg in wanted {
        if let Some(why) = leg.missing() {
            println!("metrics on {}: SKIPPED ({why})", leg.name());
            continue;
        }
        query_latency(leg, events, requests)?;
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
    let storing = Storing {
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
        validated.ingested_by(&actor);
        let started = Instant::now();
        let prepared = validated.prepare(&storing);
        conn.execute("BEGIN IMMEDIATE", ()).await?;
        pipeline::commit(
            &db,
            &storing,
            &Sender {
                sensor: None,
                actor: &actor,
            },
            &validated,
            &prepared,
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

/// Rollups as `events` events and 100,000 decisions over the last 30 days
/// leave them: hour rows by SQL (see the module's assumption), then the
/// day rows from them as `vigil metrics rebuild` derives them.
async fn seed(conn: &libsql::Connection, events: i64) -> Result<()> {
    let start = vigil_core::rollup::hour_of(vigil_core::time::now_millis()) - (HOURS - 1) * HOUR_MS;
    let per_hour = (events / HOURS).max(1);
    let types = serde_json::to_string(&[
        "port_scan",
        "http_probe",
        "brute_force",
        "ssh_session",
        "smb_probe",
        "exploit_attempt",
        "sql_injection",
        "credential_stuffing",
        "malware_download",
        "c2_beacon",
        "dos",
        "wifi_deauth",
        "data_exfiltration",
        "evil_twin",
        "ble_spam",
        "usb_hid_injection",
    ])?;
    // (sensor_id, dim, number of keys, key expression over j): each hour's
    // events split evenly over the keys of each dimension.
    let dims: [(&str, &str, i64, &str); 7] = [
        (
            "''",
            "severity",
            5,
            "json_extract('[\"info\",\"low\",\"medium\",\"high\",\"critical\"]', '$[' || j || ']')",
        ),
        ("''", "type", 16, "json_extract(?2, '$[' || j || ']')"),
        ("''", "sensor", 50, "printf('sensor-%02d', j)"),
        (
            "''",
            "zone",
            3,
            "json_extract('[\"\",\"ot\",\"internal\"]', '$[' || j || ']')",
        ),
        ("''", "country", 60, "'C' || j"),
        (
            "printf('sensor-%02d', j / 5)",
            "severity",
            250,
            "json_extract('[\"info\",\"low\",\"medium\",\"high\",\"critical\"]', '$[' || (j % 5) || ']')",
        ),
        (
            "printf('sensor-%02d', j / 16)",
            "type",
            800,
            "json_extract(?2, '$[' || (j % 16) || ']')",
        ),
    ];
    for (sensor, dim, keys, key) in dims {
        let per_key = (per_hour / keys).max(1);
        conn.execute(
            &format!(
                "WITH RECURSIVE h(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM h WHERE i < {HOURS} - 1),
                                k(j) AS (SELECT 0 UNION ALL SELECT j + 1 FROM k WHERE j < {keys} - 1)
                 INSERT INTO rollup_events_by (span, sensor_id, dim, start, key, events, score_sum, max_score)
                 SELECT 'hour', {sensor}, '{dim}', ?1 + i * {HOUR_MS}, {key}, ?3, ?3 * 40, 80 FROM h, k"
            ),
            libsql::params![start, types.clone(), per_key],
        )
        .await?;
    }
    // ~139 decisions an hour: per hour 4 priorities × outcomes × 5 analysts, and their histograms.
    conn.execute(
        &format!(
            "WITH RECURSIVE h(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM h WHERE i < {HOURS} - 1),
                            k(j) AS (SELECT 0 UNION ALL SELECT j + 1 FROM k WHERE j < 99)
             INSERT INTO rollup_decisions (span, start, priority, outcome, reason, analyst, count, decided, ttd_ms_sum, sla_breaches)
             SELECT 'hour', ?1 + i * {HOUR_MS}, 1 + j % 4,
                    json_extract('[\"submitted\",\"approved\",\"dismissed\",\"rejected\",\"escalated\"]', '$[' || ((j / 4) % 5) || ']'),
                    CASE WHEN (j / 4) % 5 = 2 THEN 'false_positive' ELSE '' END, 'analyst-' || (j / 20), 2, 1, 600000, 0
               FROM h, k"
        ),
        libsql::params![start],
    )
    .await?;
    conn.execute(
        &format!(
            "WITH RECURSIVE h(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM h WHERE i < {HOURS} - 1),
                            k(j) AS (SELECT 0 UNION ALL SELECT j + 1 FROM k WHERE j < 79)
             INSERT INTO rollup_durations (span, start, series, bucket, count)
             SELECT 'hour', ?1 + i * {HOUR_MS},
                    json_extract('[\"tta\",\"ttd:P1\",\"ttd:P2\",\"ttd:P3\",\"ttd:P4\"]', '$[' || (j / 16) || ']'), j % 16, 3
               FROM h, k"
        ),
        libsql::params![start],
    )
    .await?;
    conn.execute(
        &format!(
            "WITH RECURSIVE h(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM h WHERE i < {HOURS} - 1)
             INSERT INTO rollup_alerts (span, start, severity, opened, acknowledged, resolved, ack_ms_sum)
             SELECT 'hour', ?1 + i * {HOUR_MS}, s.value, 20, 15, 10, 15 * 300000
               FROM h, json_each('[\"high\",\"critical\"]') AS s"
        ),
        libsql::params![start],
    )
    .await?;
    vigil_metrics_rules::rebuild::days_from_hours(&LibsqlSql(conn), i64::MIN, i64::MAX)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(())
}

/// The same reads natively through `vigil-metrics-rules` on the seeded
/// file (xtask's dev build; SQLite itself is optimised): what the SQL costs
/// without the runtime, the connection and the response.
fn native_reads(db: &Target, requests: usize) -> Result<()> {
    use vigil_metrics_rules::summary::{SummarySettings, summary};
    use vigil_metrics_rules::trends::{Metric, trend};
    use vigil_metrics_rules::window::{Bucket, Window};
    vigil_e2e::block_on(async {
        let conn = db.connect().await?;
        let sql = LibsqlSql(&conn);
        let now = vigil_core::time::now_millis();
        let w = Window::parse(Some("30d"), None, None, now).map_err(|e| anyhow::anyhow!("{e}"))?;
        let settings = SummarySettings {
            ack_sla_seconds: 900.0,
        };
        let mut summaries = Vec::new();
        let mut trends = Vec::new();
        for _ in 0..requests.min(20) {
            let started = Instant::now();
            summary(&sql, &w, &settings)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            summaries.push(started.elapsed().as_secs_f64() * 1000.0);
            let started = Instant::now();
            trend(&sql, &w, Metric::Events, Bucket::Hour, None)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            trends.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        summaries.sort_by(|a, b| a.total_cmp(b));
        trends.sort_by(|a, b| a.total_cmp(b));
        println!(
            "natively on the same file: the summary's reads p50 {:.1} ms, the hourly trend's p50 {:.1} ms",
            quantile(&summaries, 0.5),
            quantile(&trends, 0.5)
        );
        Ok(())
    })
}

fn quantile(sorted: &[f64], p: f64) -> f64 {
    sorted[((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1]
}

fn query_latency(leg: Leg, events: i64, requests: usize) -> Result<()> {
    use vigil_core::Role;
    let app = TestApp::start(leg)?;
    let db = app.db.clone().context("the bench started this app")?;
    let seeding = Instant::now();
    let count = |sql: &'static str| {
        let db = db.clone();
        vigil_e2e::block_on(async move {
            vigil_db::target::query_i64(&db.connect().await?, sql, ()).await
        })
        .map(Option::unwrap_or_default)
    };
    vigil_e2e::block_on(async { seed(&db.connect().await?, events).await })?;
    println!(
        "{}: seeded rollups for {events} events and 100,000 decisions over 30 days in {:.1} s: {} event rows ({} of them day rows), {} decision rows",
        leg.name(),
        seeding.elapsed().as_secs_f64(),
        count("SELECT count(*) FROM rollup_events_by")?,
        count("SELECT count(*) FROM rollup_events_by WHERE span = 'day'")?,
        count("SELECT count(*) FROM rollup_decisions")?,
    );
    if let Target::Local(_) = db {
        native_reads(&db, requests)?;
    }
    for path in [
        // The floor: an authenticated request of two small statements.
        "/api/auth/me",
        "/api/metrics/summary?range=30d",
        "/api/metrics/trends?metric=events&bucket=hour&range=30d",
        "/api/metrics/trends?metric=events&bucket=hour&range=30d&group_by=severity",
    ] {
        let mut times = Vec::with_capacity(requests);
        for i in 0..requests + 3 {
            let started = Instant::now();
            let r = app.get_as(Role::Viewer, path);
            if r.status != 200 {
                bail!("{path} answered {}: {}", r.status, r.text());
            }
            if i >= 3 {
                times.push(started.elapsed().as_secs_f64() * 1000.0);
            }
        }
        times.sort_by(|a, b| a.total_cmp(b));
        println!(
            "{} {path}: p50 {:.1} ms, p99 {:.1} ms ({requests} sequential requests)",
            leg.name(),
            quantile(&times, 0.5),
            quantile(&times, 0.99)
        );
    }
    Ok(())
}
