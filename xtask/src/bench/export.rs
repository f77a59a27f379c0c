//! `cargo xtask bench export`: what building an evidence pack costs, and how
//! fast the audit chain is re-walked. Both run the `vigil-evidence` code the
//! export component runs, natively over a local SQLite file (libsql):
//!
//! - a pack for one alert with 1,000 and with 10,000 events (seeded): build
//!   time, ZIP size, and the process's peak resident memory growth during the
//!   build (Linux: `VmHWM` after resetting it through `/proc/self/clear_refs`),
//!   to show it does not follow the event count beyond the ZIP itself. This
//!   runs natively in xtask's (unoptimised, dev) build, so its times are an
//!   upper bound; the same packs are then built by the real `export`
//!   component (release Wasm under the built-in host) over HTTP, whose
//!   times are the ones that count (end to end, and inside the component
//!   from its request log);
//! - the audit chain over 1,000,000 entries (seeded with real chain hashes):
//!   entries/s through the component's page-by-page walk and through
//!   `vigil audit verify`'s single query.
//!
//! It prints figures and asserts nothing about time.

use std::time::Instant;

use anyhow::{Result, bail};
use vigil_core::audit::{AuditEntry, GENESIS, chain_hash};
use vigil_db::Target;
use vigil_db::sql::LibsqlSql;
use vigil_evidence::audit_log::{self, ChainVerdict};
use vigil_evidence::pack::{self, PackMeta};
use vigil_evidence::scope::{self, SubjectKind};
use vigil_evidence::signing::ExportSigner;
use vigil_host::launch::{LaunchOptions, Runtime, launch};

const AUDIT_ENTRIES: i64 = 1_000_000;

pub fn run(args: &[String]) -> Result<()> {
    let packs_only = args.iter().any(|a| a == "--packs-only");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    crate::build::build()?;
    rt.block_on(async {
        for events in [1_000, 10_000] {
            pack_figures(events).await?;
        }
        anyhow::Ok(())
    })?;
    for runtime in [Runtime::Host, Runtime::Spin] {
        if runtime == Runtime::Spin && Runtime::spin_binary().is_none() {
            println!("pack via the export component under spin up: SKIPPED (spin not found)");
            continue;
        }
        for events in [1_000, 10_000] {
            component_figures(runtime, events)?;
        }
    }
    if packs_only {
        return Ok(());
    }
    rt.block_on(audit_figures())
}

/// The same pack through `POST /api/export/packs` on the built-in host.
fn component_figures(runtime: Runtime, events: usize) -> Result<()> {
    use vigil_core::Role;
    let dir = tempfile::Builder::new()
        .prefix("vigil-bench-export-")
        .tempdir()?;
    let db = Target::Local(dir.path().join("vigil.db"));
    vigil_e2e::migrate(&db)?;
    vigil_e2e::seed_principals(&db)?;
    vigil_e2e::block_on(async { seed_alert(&db.connect().await?, events).await })?;
    let config = dir.path().join("runtime-config.toml");
    std::fs::write(&config, db.spin_runtime_config())?;
    let signer = vigil_core::token::TokenSigner::generate("bench");
    let mut env: Vec<(String, String)> = vigil_e2e::app_variables(&signer)
        .into_iter()
        .filter(|(k, _)| k != "SPIN_VARIABLE_EXPORT_MAX_EVENTS")
        .collect();
    env.push(("SPIN_VARIABLE_EXPORT_MAX_EVENTS".into(), "1000000".into()));
    let running = launch(LaunchOptions {
        runtime,
        manifest: crate::root().join("spin.toml"),
        runtime_config: Some(config),
        env,
        workdir: dir.path().to_path_buf(),
    })?;
    let (user, session) = vigil_e2e::test_principal(Role::Analyst);
    let now = vigil_core::time::now_millis() / 1000;
    let token = signer.sign(&vigil_core::token::Claims::user_access(
        "vigil",
        "vigil",
        &user,
        Role::Analyst,
        &session,
        now,
    ));
    let auth = format!("Bearer {token}");
    let body = br#"{"subject":"alert","id":"a1"}"#;
    let mut times = Vec::new();
    let mut size = 0;
    for _ in 0..3 {
        let started = Instant::now();
        let r = vigil_e2e::client::request(
            "POST",
            &format!("{}/api/export/packs", running.base_url),
            &[
                ("authorization", &auth),
                ("content-type", "application/json"),
            ],
            Some(body),
        )?;
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        if r.status != 201 {
            bail!("POST /api/export/packs answered {}: {}", r.status, r.text());
        }
        size = r.json()["size"].as_i64().unwrap_or(0);
    }
    // The request log: Spin's log files, or the host's stderr.
    let mut logs = String::new();
    for file in std::fs::read_dir(dir.path().join("spin-logs"))
        .into_iter()
        .flatten()
        .flatten()
    {
        logs += &std::fs::read_to_string(file.path()).unwrap_or_default();
    }
    if logs.is_empty() {
        logs = running.stderr();
    }
    let inside: Vec<f64> = logs
        .lines()
        .filter(|l| l.contains("\"path\":\"/api/export/packs\""))
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["ms"].as_f64())
        .collect();
    println!(
        "pack via the export component ({}, release Wasm): alert with {events:>6} events: {} ms end to end, {} ms inside the component (3 builds), ZIP {:.1} MiB",
        runtime.name(),
        times
            .iter()
            .map(|t| format!("{t:.0}"))
            .collect::<Vec<_>>()
            .join("/"),
        inside
            .iter()
            .map(|t| format!("{t:.0}"))
            .collect::<Vec<_>>()
            .join("/"),
        size as f64 / (1024.0 * 1024.0)
    );
    Ok(())
}

async fn fresh() -> Result<(tempfile::TempDir, libsql::Connection)> {
    let dir = tempfile::Builder::new()
        .prefix("vigil-bench-export-")
        .tempdir()?;
    let target = Target::Local(dir.path().join("bench.db"));
    vigil_db::migrations::migrate(&target, &vigil_db::migrations::embedded()).await?;
    let conn = target.connect().await?;
    Ok((dir, conn))
}

/// Peak resident memory of this process in KiB (Linux), optionally reset first.
fn peak_kib(reset: bool) -> Option<u64> {
    if reset {
        std::fs::write("/proc/self/clear_refs", "5").ok()?;
    }
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// Alert `a1` with `events` critical events of one source, ~300-byte payloads.
async fn seed_alert(conn: &libsql::Connection, events: usize) -> Result<()> {
    conn.execute(
        "INSERT INTO alerts (id, group_key, status, source_ip, event_type, sensor_id, severity, max_score,
                             event_count, first_seen, last_seen, version, created_at, updated_at)
         VALUES ('a1', 'k', 'open', '198.51.100.7', 'brute_force', 's1', 'critical', 90, ?1, 0, 0, 1, 0, 0)",
        [events as i64],
    )
    .await?;
    conn.execute("BEGIN", ()).await?;
    // ~300-byte payloads, like a honeypot's session summary.
    let payload = format!(
        r#"{{"username":"root","attempts":412,"note":"{}"}}"#,
        "x".repeat(240)
    );
    for chunk in (0..events).collect::<Vec<_>>().chunks(500) {
        let mut sql = String::from(
            "INSERT INTO threat_events (id, sensor_id, event_id, observed_at, received_at, event_type, source_ip,
               source_class, dest_ip, dest_port, technique, score, severity, breakdown, confidence, payload, tags, alert_id) VALUES ",
        );
        let rows: Vec<String> = chunk
            .iter()
            .map(|i| {
                format!(
                    "('e{i:08}', 's1', 'n{i}', {t}, {t}, 'brute_force', '198.51.100.7', 'public', '10.20.0.5', 22, 'T1110',
                      90, 'critical', '{{\"type\":25,\"zone\":20}}', 1.0, '{payload}', '[\"ssh\"]', 'a1')",
                    t = 1_790_000_000_000i64 + *i as i64
                )
            })
            .collect();
        sql += &rows.join(",");
        conn.execute(&sql, ()).await?;
    }
    conn.execute("COMMIT", ()).await?;
    Ok(())
}

async fn pack_figures(events: usize) -> Result<()> {
    let (_dir, conn) = fresh().await?;
    let seeding = Instant::now();
    seed_alert(&conn, events).await?;
    let seeded = seeding.elapsed();

    let signer =
        ExportSigner::from_seed_b64("bench", "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc")
            .map_err(anyhow::Error::msg)?;
    let db = LibsqlSql(&conn);
    let before = peak_kib(true);
    let started = Instant::now();
    let subject = scope::resolve(&db, SubjectKind::Alert, "a1")
        .await?
        .expect("seeded");
    let meta = PackMeta {
        pack_id: "bench".into(),
        created_at: 0,
        created_by: "bench".into(),
        vigil_version: env!("CARGO_PKG_VERSION").into(),
    };
    let built = pack::build(&db, &subject, &meta, &signer).await?;
    let took = started.elapsed();
    let after = peak_kib(false);
    if built.events as usize != events {
        bail!("the pack holds {} events, not {events}", built.events);
    }
    let growth = match (before, after) {
        (Some(b), Some(a)) => format!("{:.1} MiB", a.saturating_sub(b) as f64 / 1024.0),
        _ => "n/a (no /proc)".into(),
    };
    println!(
        "pack: alert with {events:>6} events: built in {:>6.0} ms ({:.0} events/s), ZIP {:.1} MiB, {} files; \
         peak memory growth during the build {growth} (seeding took {:.1} s)",
        took.as_secs_f64() * 1000.0,
        events as f64 / took.as_secs_f64(),
        built.bytes.len() as f64 / (1024.0 * 1024.0),
        built.manifest.files.len(),
        seeded.as_secs_f64()
    );
    Ok(())
}

async fn audit_figures() -> Result<()> {
    let (_dir, conn) = fresh().await?;
    let seeding = Instant::now();
    conn.execute("BEGIN", ()).await?;
    let mut prev = GENESIS.to_string();
    let mut id = 0i64;
    while id < AUDIT_ENTRIES {
        let mut sql = String::from(
            "INSERT INTO audit_log (at, actor, action, subject_kind, subject_id, request_id, client_addr, before, after, prev_hash, hash) VALUES ",
        );
        let mut rows = Vec::new();
        for _ in 0..1000 {
            id += 1;
            let entry = AuditEntry {
                at: 1_790_000_000_000 + id,
                actor: "u-analyst".into(),
                action: "decision.approved".into(),
                subject_kind: Some("decision".into()),
                subject_id: Some(format!("d-{id}")),
                request_id: Some(format!("r-{id}")),
                client_addr: Some("203.0.113.5".into()),
                before: Some(r#"{"status":"claimed"}"#.into()),
                after: Some(r#"{"status":"approved"}"#.into()),
            };
            let hash = chain_hash(&prev, &entry);
            rows.push(format!(
                "({}, 'u-analyst', 'decision.approved', 'decision', 'd-{id}', 'r-{id}', '203.0.113.5', '{{\"status\":\"claimed\"}}', '{{\"status\":\"approved\"}}', '{prev}', '{hash}')",
                entry.at
            ));
            prev = hash;
        }
        sql += &rows.join(",");
        conn.execute(&sql, ()).await?;
    }
    conn.execute("COMMIT", ()).await?;
    println!(
        "audit: seeded {AUDIT_ENTRIES} chained entries in {:.1} s",
        seeding.elapsed().as_secs_f64()
    );

    let started = Instant::now();
    let verdict = audit_log::verify(&LibsqlSql(&conn)).await?;
    let took = started.elapsed();
    let ChainVerdict::Ok { entries, .. } = verdict else {
        bail!("the seeded chain does not verify: {verdict:?}");
    };
    println!(
        "audit: GET /api/export/audit/verify's walk (pages of {}): {entries} entries in {:.2} s, {:.0} entries/s",
        audit_log::PAGE,
        took.as_secs_f64(),
        entries as f64 / took.as_secs_f64()
    );
    let started = Instant::now();
    let verdict = vigil_db::audit::verify(&conn).await?;
    let took = started.elapsed();
    let vigil_db::audit::Verdict::Intact { entries, .. } = verdict else {
        bail!("the seeded chain does not verify: {verdict:?}");
    };
    println!(
        "audit: `vigil audit verify` (one query): {entries} entries in {:.2} s, {:.0} entries/s",
        took.as_secs_f64(),
        entries as f64 / took.as_secs_f64()
    );
    Ok(())
}
