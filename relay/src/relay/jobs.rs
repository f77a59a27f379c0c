//! The scheduled jobs: decision SLA escalation, sensor staleness,
//! retention, automatic playbooks (answering `alert.opened` from the
//! outbox) and the weekly metrics report, each on its own interval. What a
//! job does is decided in the crates
//! (`vigil_core::decision::transitions::escalate_overdue`,
//! `vigil_ingest::sensor::publish_staleness`, `vigil_core::retention`,
//! `vigil_ingest::execution`, `vigil_metrics_rules::weekly`);
//! here is when, and where: a run happens only where the job's lease is held
//! (`vigil_db::lease`), so with several relays on one database each job has
//! one runner, and another relay takes over when a runner dies. Every job is
//! idempotent: a run repeated, or run twice at once, changes nothing more.

use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use anyhow::Result;
use serde_json::json;
use tokio::sync::watch;
use tokio::time::Instant;
use vigil_core::ApiError;
use vigil_core::audit::Actor;
use vigil_core::decision::transitions::escalate_overdue;
use vigil_core::retention::{self, Retention};
use vigil_core::sql::{Columns, Sql, Value, int};
use vigil_core::time::now_millis;
use vigil_db::Target;
use vigil_db::lease;
use vigil_db::sql::{LibsqlSql, begin_immediate, finish};
use vigil_ingest::execution::{
    DecisionRules, Mode, enabled_playbooks, facts_of, finish as finish_run, opened_alert, prepare,
};
use vigil_ingest::sensor::{Liveness, publish_staleness};

use super::webhook::{WebhookConfig, post_json};
use super::{log, stopping};

/// The jobs there are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Job {
    SlaEscalation,
    SensorStaleness,
    Retention,
    Playbooks,
    WeeklyReport,
}

/// How many jobs there are.
pub const JOBS: usize = 5;

impl Job {
    pub const ALL: [Job; JOBS] = [
        Job::SlaEscalation,
        Job::SensorStaleness,
        Job::Retention,
        Job::Playbooks,
        Job::WeeklyReport,
    ];

    pub fn parse(name: &str) -> Option<Job> {
        Job::ALL.into_iter().find(|j| j.name() == name)
    }

    /// The name in `job_leases`, in logs and in metric labels.
    pub fn name(self) -> &'static str {
        match self {
            Job::SlaEscalation => "sla_escalation",
            Job::SensorStaleness => "sensor_staleness",
            Job::Retention => "retention",
            Job::Playbooks => "playbooks",
            Job::WeeklyReport => "weekly_report",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// Which jobs run here, when, and what they keep (each in the README with
/// its default).
#[derive(Clone, Debug)]
pub struct JobsConfig {
    /// `VIGIL_RELAY_JOBS` (default `all`; `none`, or names): the jobs this
    /// relay takes part in, by [`Job::index`].
    pub enabled: [bool; JOBS],
    /// `VIGIL_JOB_SLA_ESCALATION_SECONDS` (30), `VIGIL_JOB_SENSOR_STALENESS_SECONDS`
    /// (30), `VIGIL_JOB_RETENTION_SECONDS` (3600), `VIGIL_JOB_PLAYBOOKS_MS`
    /// (500), `VIGIL_JOB_WEEKLY_REPORT_SECONDS` (3600), by [`Job::index`].
    pub every: [Duration; JOBS],
    /// `VIGIL_EVENT_RETENTION_DAYS` (90) and `VIGIL_OUTBOX_RETENTION` (`7d`).
    pub retention: Retention,
    /// The sensors' thresholds (`VIGIL_SENSOR_ONLINE_SECONDS`, `…_OFFLINE_SECONDS`).
    pub liveness: Liveness,
    /// The rules decisions opened by playbooks follow (`VIGIL_DECISION_*`).
    pub decision_rules: Arc<DecisionRules>,
    /// Where playbook webhooks may go (`VIGIL_WEBHOOK_*`).
    pub webhooks: WebhookConfig,
}

impl JobsConfig {
    pub fn every(&self, job: Job) -> Duration {
        self.every[job.index()]
    }
}

/// Who the jobs act as, in the audit log (and `system:relay` on decisions).
const ACTOR: &str = "relay";

/// A lease outlives a few missed runs, so a busy runner keeps it, and a dead
/// one hands it over within that time.
fn lease_ttl(every: Duration) -> Duration {
    (every * 3).max(Duration::from_secs(10))
}

/// At most this many retention rounds (of up to `retention::CHUNK` rows per
/// table each) per run; what is left waits for the next run.
const RETENTION_ROUNDS: usize = 200;

/// Run the jobs until `shutdown`: each when it is due, if this relay holds
/// its lease. A failed run (database unreachable) is logged and counted, and
/// retried at the next interval.
pub async fn run(
    config: JobsConfig,
    target: Target,
    metrics: Arc<JobMetrics>,
    mut shutdown: watch::Receiver<bool>,
) {
    let holder = format!(
        "{}:{}:{}",
        std::env::var("HOSTNAME").unwrap_or_else(|_| "relay".into()),
        std::process::id(),
        &vigil_core::id::new_id()[..8]
    );
    let jobs: Vec<Job> = Job::ALL
        .into_iter()
        .filter(|j| config.enabled[j.index()])
        .collect();
    if jobs.is_empty() {
        return;
    }
    let far = Instant::now() + Duration::from_secs(100 * 365 * 86_400);
    let mut due = Job::ALL.map(|j| {
        if jobs.contains(&j) {
            Instant::now()
        } else {
            far
        }
    });
    let mut conn: Option<libsql::Connection> = None;
    let mut tenures = [Tenure::default(); JOBS];
    loop {
        let next = *due.iter().min().expect("a job");
        tokio::select! {
            _ = tokio::time::sleep_until(next) => {}
            _ = stopping(&mut shutdown) => break,
        }
        for &job in &jobs {
            if due[job.index()] > Instant::now() {
                continue;
            }
            due[job.index()] = Instant::now() + config.every(job);
            if conn.is_none() {
                match target.connect().await {
                    Ok(c) => conn = Some(c),
                    Err(e) => {
                        failed(&metrics, job, &format!("{e:#}"));
                        continue;
                    }
                }
            }
            let c = conn.as_ref().expect("connected above");
            let tenure = &mut tenures[job.index()];
            match run_once(job, &config, c, &holder, tenure, &shutdown).await {
                Ok(Some(outcome)) => {
                    metrics.runs_total[job.index()].fetch_add(1, Relaxed);
                    metrics.last_success[job.index()].store(now_millis() / 1000, Relaxed);
                    if outcome.get("changed").is_some_and(|n| n != 0) {
                        log::line(
                            json!({"level": "info", "msg": "job ran", "job": job.name(), "outcome": outcome}),
                        );
                    }
                }
                Ok(None) => {} // another relay holds the lease
                Err(e) => {
                    failed(&metrics, job, &e.to_string());
                    // A remote stream may have expired: reconnect next time.
                    conn = None;
                }
            }
        }
    }
    if let Some(c) = conn {
        for &job in &jobs {
            let _ = lease::release(&LibsqlSql(&c), job.name(), &holder).await;
        }
    }
}

fn failed(metrics: &JobMetrics, job: Job, error: &str) {
    metrics.failures_total[job.index()].fetch_add(1, Relaxed);
    log::line(json!({"level": "error", "msg": "job failed", "job": job.name(), "error": error}));
}

/// What this relay knows of a job's lease and its record between runs, so
/// that a frequent job (playbooks, every half second) does not write both on
/// every run: each write waits for the database's one write lock.
#[derive(Clone, Copy, Debug, Default)]
pub struct Tenure {
    /// Until when this relay holds the lease (0: not known to).
    held_until: i64,
    /// When `last_outcome` was last written from here.
    recorded_at: i64,
}

/// One run of `job`, if this relay holds (or now takes) its lease: what it
/// did, as recorded in `job_leases.last_outcome` (`changed` counts the rows
/// it changed); `None` when another relay holds the lease.
pub async fn run_once(
    job: Job,
    config: &JobsConfig,
    conn: &libsql::Connection,
    holder: &str,
    tenure: &mut Tenure,
    shutdown: &watch::Receiver<bool>,
) -> Result<Option<serde_json::Value>, ApiError> {
    let db = LibsqlSql(conn);
    let now = now_millis();
    let ttl = lease_ttl(config.every(job)).as_millis() as i64;
    // A held lease is renewed once half of it has run out: until it expires
    // no other relay can take it.
    if now >= tenure.held_until - ttl / 2 {
        if !lease::acquire(&db, job.name(), holder, now, now + ttl).await? {
            tenure.held_until = 0;
            return Ok(None);
        }
        tenure.held_until = now + ttl;
    }
    let who = Actor::program(ACTOR);
    let outcome = match job {
        Job::SlaEscalation => {
            begin_immediate(conn).await?;
            let written = escalate_overdue(&db, &who, now).await;
            let escalated = finish(conn, written).await?;
            json!({"changed": escalated.len(), "escalated": escalated})
        }
        Job::SensorStaleness => {
            begin_immediate(conn).await?;
            let written = publish_staleness(&db, &who, &config.liveness, now).await;
            let changed = finish(conn, written).await?;
            let sensors: Vec<_> = changed
                .iter()
                .map(|(id, status)| json!({"id": id, "status": status}))
                .collect();
            json!({"changed": sensors.len(), "sensors": sensors})
        }
        Job::Retention => {
            let mut deleted = serde_json::Map::new();
            let mut total = 0u64;
            for _ in 0..RETENTION_ROUNDS {
                begin_immediate(conn).await?;
                let written = retention::sweep(&db, &config.retention, now).await;
                let round = finish(conn, written).await?;
                if round.is_empty() {
                    break;
                }
                for (table, n) in round {
                    total += n;
                    let so_far = deleted.get(table).and_then(|v| v.as_u64()).unwrap_or(0);
                    deleted.insert(table.into(), json!(so_far + n));
                }
                if *shutdown.borrow() {
                    break;
                }
            }
            json!({"changed": total, "deleted": deleted})
        }
        Job::Playbooks => run_playbooks(conn, config, &who, shutdown).await?,
        Job::WeeklyReport => {
            begin_immediate(conn).await?;
            let written = vigil_metrics_rules::weekly::persist_last_week(&db, now).await;
            let (week, stored) = finish(conn, written).await?;
            json!({"changed": u8::from(stored), "week_ending": week})
        }
    };
    // What changed something is recorded; a quiet run at most once per half lease.
    if outcome.get("changed").is_some_and(|n| n != 0) || now - tenure.recorded_at >= ttl / 2 {
        lease::record_run(&db, job.name(), now, &outcome).await?;
        tenure.recorded_at = now;
    }
    Ok(Some(outcome))
}

/// Outbox rows one playbooks run reads at most.
const PLAYBOOK_EVENTS_PER_RUN: i64 = 500;

/// Answer the `alert.opened` events after the job's position with every
/// enabled playbook whose trigger matches: for each alert, the webhooks
/// (outside any transaction, retried), then one write transaction with the
/// executions, their decisions and the new position, so a crash never
/// skips an alert nor records one twice (a webhook may then be sent again:
/// delivery is at least once). The first run ever starts at the outbox's
/// head: alerts opened before any relay ran the job are not answered.
async fn run_playbooks(
    conn: &libsql::Connection,
    config: &JobsConfig,
    who: &Actor,
    shutdown: &watch::Receiver<bool>,
) -> Result<serde_json::Value, ApiError> {
    let db = LibsqlSql(conn);
    let name = Job::Playbooks.name();
    if lease::last_run(&db, name).await?.is_none() {
        let head = db
            .query("SELECT coalesce(max(id), 0) FROM events", &[])
            .await?
            .first()
            .and_then(|r| int(r, 0))
            .unwrap_or(0);
        lease::advance(&db, name, head).await?;
        return Ok(json!({"changed": 0, "started_after": head}));
    }
    let position = lease::position(&db, name).await?;
    static OUTBOX: Columns = Columns::new("id, type, payload");
    let rows = db
        .query(
            &format!("SELECT {OUTBOX} FROM events WHERE id > ?1 ORDER BY id LIMIT ?2"),
            &[
                Value::Integer(position),
                Value::Integer(PLAYBOOK_EVENTS_PER_RUN),
            ],
        )
        .await?;
    let Some(last) = rows.last().and_then(|r| int(r, 0)) else {
        return Ok(json!({"changed": 0}));
    };
    let playbooks = enabled_playbooks(&db).await?;
    let (mut alerts, mut executions) = (0, 0);
    for row in &rows {
        if *shutdown.borrow() {
            return Ok(json!({"changed": executions, "alerts": alerts, "stopped": true}));
        }
        let row = OUTBOX.row(row);
        let (Some(id), Some(event_type), Some(payload)) =
            (row.int("id"), row.text("type"), row.text("payload"))
        else {
            continue;
        };
        let payload: serde_json::Value = serde_json::from_str(&payload).unwrap_or_default();
        let Some(alert_id) = opened_alert(&event_type, &payload) else {
            continue;
        };
        alerts += 1;
        if playbooks.is_empty() {
            continue; // nothing to run: the position moves past it below
        }
        executions += answer_alert(conn, config, who, &playbooks, &alert_id, id).await?;
    }
    lease::advance(&db, name, last).await?;
    Ok(json!({"changed": executions, "alerts": alerts, "position": last}))
}

/// Run the matching `playbooks` for alert `alert_id` (opened by outbox row
/// `event_id`); how many ran.
async fn answer_alert(
    conn: &libsql::Connection,
    config: &JobsConfig,
    who: &Actor,
    playbooks: &[vigil_ingest::execution::Playbook],
    alert_id: &str,
    event_id: i64,
) -> Result<usize, ApiError> {
    let db = LibsqlSql(conn);
    let alert = match vigil_ingest::alert::load(&db, alert_id).await {
        Ok(alert) => alert,
        Err(e) if e.status == 404 => return Ok(0), // gone since (retention)
        Err(e) => return Err(e),
    };
    let facts = facts_of(&db, &alert).await?;
    let mut runs = Vec::new();
    for p in playbooks.iter().filter(|p| p.trigger.matches(&facts)) {
        let by = format!("playbook:{}", p.id);
        let run = prepare(
            &db,
            p.clone(),
            alert.clone(),
            facts.clone(),
            Mode::Automatic,
            by,
            now_millis(),
        )
        .await?;
        let mut sent = Vec::new();
        for w in run.webhooks() {
            sent.push((w.index, post_json(&config.webhooks, &w.url, &w.body).await));
        }
        runs.push((run, sent));
    }
    begin_immediate(conn).await?;
    let written = async {
        for (run, sent) in &runs {
            finish_run(&db, run, sent, &config.decision_rules, who, now_millis()).await?;
        }
        lease::advance(&db, Job::Playbooks.name(), event_id).await
    }
    .await;
    finish(conn, written).await?;
    Ok(runs.len())
}

/// The jobs' counters, by [`Job::index`], rendered with the relay's others
/// at `/metrics`.
#[derive(Default)]
pub struct JobMetrics {
    pub runs_total: [AtomicU64; JOBS],
    pub failures_total: [AtomicU64; JOBS],
    /// Unix seconds of the last successful run here (0: none yet, or the
    /// lease is held by another relay).
    pub last_success: [AtomicI64; JOBS],
}

impl JobMetrics {
    /// Prometheus text lines, one series per job.
    pub fn render(&self, out: &mut String) {
        for (name, kind, help) in [
            (
                "vigil_relay_job_runs_total",
                "counter",
                "scheduled job runs completed here",
            ),
            (
                "vigil_relay_job_failures_total",
                "counter",
                "scheduled job runs that failed (retried at the next interval)",
            ),
            (
                "vigil_relay_job_last_success_seconds",
                "gauge",
                "Unix time of the last successful run here",
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for job in Job::ALL {
                let i = job.index();
                let value = match kind {
                    "counter" if name.contains("failures") => {
                        self.failures_total[i].load(Relaxed).to_string()
                    }
                    "counter" => self.runs_total[i].load(Relaxed).to_string(),
                    _ => self.last_success[i].load(Relaxed).to_string(),
                };
                let _ = writeln!(out, "{name}{{job=\"{}\"}} {value}", job.name());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_db::target::query_i64;

    const MIN: i64 = 60_000;
    const DAY: i64 = 24 * 60 * MIN;

    fn config() -> JobsConfig {
        JobsConfig {
            enabled: [true; JOBS],
            every: [Duration::from_secs(30); JOBS],
            retention: Retention {
                events_ms: 90 * DAY,
                outbox_ms: 7 * DAY,
            },
            liveness: Liveness::default(),
            decision_rules: Arc::new(DecisionRules {
                safety: Default::default(),
                sla: Default::default(),
            }),
            webhooks: WebhookConfig::default(),
        }
    }

    async fn database() -> (tempfile::TempDir, libsql::Connection) {
        let dir = tempfile::tempdir().unwrap();
        let target = Target::Local(dir.path().join("vigil.db"));
        vigil_db::migrations::migrate(&target, &vigil_db::migrations::embedded())
            .await
            .unwrap();
        let conn = target.connect().await.unwrap();
        (dir, conn)
    }

    async fn count(conn: &libsql::Connection, sql: &str) -> i64 {
        query_i64(conn, sql, ()).await.unwrap().unwrap_or(0)
    }

    async fn run(job: Job, conn: &libsql::Connection, holder: &str) -> Option<serde_json::Value> {
        let (_stop, stopped) = watch::channel(false);
        run_once(
            job,
            &config(),
            conn,
            holder,
            &mut Tenure::default(),
            &stopped,
        )
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn overdue_decisions_are_escalated_once_by_the_lease_holder() {
        let (_dir, conn) = database().await;
        let now = now_millis();
        for (id, status, deadline) in [
            ("d-overdue", "pending", now - MIN),
            ("d-claimed", "claimed", now - MIN),
            ("d-in-time", "pending", now + MIN),
            ("d-already", "escalated", now - MIN),
            ("d-done", "approved", now - MIN),
        ] {
            conn.execute(
                "INSERT INTO decisions (id, source, subject_kind, subject_id, action, parameters, threat_level,
                    confidence, summary, rationale, evidence, priority, sla_deadline, status, version, assignee,
                    submitted_by, created_at, updated_at)
                 VALUES (?1, 'engine', 'alert', 'a1', 'block_ip', '{}', 'high', 0.9, 's', 'r', '{}', 2, ?2, ?3, 1,
                    CASE WHEN ?3 = 'claimed' THEN 'u1' END, 'engine', 0, 0)",
                libsql::params![id, deadline, status],
            )
            .await
            .unwrap();
        }
        let outcome = run(Job::SlaEscalation, &conn, "a").await.unwrap();
        assert_eq!(outcome["changed"], 2, "{outcome}");
        assert_eq!(
            count(
                &conn,
                "SELECT count(*) FROM decisions WHERE status = 'escalated' AND version = 2"
            )
            .await,
            2
        );
        assert_eq!(
            count(&conn, "SELECT count(*) FROM decision_transitions WHERE command = 'escalate-overdue' AND actor = 'system:relay'").await,
            2
        );
        assert_eq!(
            count(
                &conn,
                "SELECT count(*) FROM audit_log WHERE action = 'decision.escalate-overdue'"
            )
            .await,
            2
        );
        assert_eq!(
            count(
                &conn,
                "SELECT count(*) FROM events WHERE type = 'decision.updated'"
            )
            .await,
            2
        );
        // Idempotent: nothing more to do.
        assert_eq!(
            run(Job::SlaEscalation, &conn, "a").await.unwrap()["changed"],
            0
        );
        // Another relay does not run it while the lease is held.
        assert_eq!(run(Job::SlaEscalation, &conn, "b").await, None);
        assert_eq!(
            count(&conn, "SELECT count(*) FROM job_leases WHERE job = 'sla_escalation' AND holder = 'a' AND last_outcome IS NOT NULL").await,
            1
        );
        assert!(matches!(
            vigil_db::audit::verify(&conn).await.unwrap(),
            vigil_db::audit::Verdict::Intact { .. }
        ));
    }

    #[tokio::test]
    async fn sensors_that_fall_silent_are_published_stale_then_offline() {
        let (_dir, conn) = database().await;
        let now = now_millis();
        for (id, heard, published) in [
            ("s-fresh", Some(now - 5_000), "online"),
            ("s-quiet", Some(now - 3 * MIN), "online"),
            ("s-gone", Some(now - 20 * MIN), "online"),
            ("s-stale", Some(now - 20 * MIN), "stale"),
            ("s-never", None, "offline"),
        ] {
            conn.execute(
                "INSERT INTO sensors (id, name, kind, last_heartbeat, published_status, version, created_by, created_at, updated_at)
                 VALUES (?1, ?1, 'network', ?2, ?3, 1, 'admin', 0, 0)",
                libsql::params![id, heard, published],
            )
            .await
            .unwrap();
        }
        let outcome = run(Job::SensorStaleness, &conn, "a").await.unwrap();
        assert_eq!(outcome["changed"], 3, "{outcome}");
        let status = |id: &'static str| {
            let conn = conn.clone();
            async move {
                let mut rows = conn
                    .query("SELECT published_status FROM sensors WHERE id = ?1", [id])
                    .await
                    .unwrap();
                rows.next()
                    .await
                    .unwrap()
                    .unwrap()
                    .get::<String>(0)
                    .unwrap()
            }
        };
        assert_eq!(status("s-fresh").await, "online");
        assert_eq!(status("s-quiet").await, "stale");
        assert_eq!(status("s-gone").await, "offline");
        assert_eq!(status("s-stale").await, "offline");
        assert_eq!(status("s-never").await, "offline");
        assert_eq!(
            count(&conn, "SELECT count(*) FROM events WHERE type = 'sensor.status' AND json_extract(payload, '$.status') IN ('stale', 'offline')").await,
            3
        );
        assert_eq!(
            count(
                &conn,
                "SELECT count(*) FROM audit_log WHERE action = 'sensor.status' AND actor = 'relay'"
            )
            .await,
            3
        );
        assert_eq!(
            run(Job::SensorStaleness, &conn, "a").await.unwrap()["changed"],
            0
        );
    }

    #[tokio::test]
    async fn weekly_report_stores_the_last_ended_week_once() {
        let (_dir, conn) = database().await;
        let sunday = vigil_metrics_rules::weekly::last_ended_week(now_millis());
        // Three events counted on the Wednesday of that week.
        conn.execute(
            "INSERT INTO rollup_events_by (span, sensor_id, dim, start, key, events, score_sum, max_score)
             VALUES ('day', '', 'severity', ?1, 'low', 3, 90, 30)",
            libsql::params![sunday - 4 * DAY],
        )
        .await
        .unwrap();
        let week = vigil_core::time::rfc3339(sunday)[..10].to_string();
        let outcome = run(Job::WeeklyReport, &conn, "a").await.unwrap();
        assert_eq!(outcome, json!({"changed": 1, "week_ending": week}));
        // Idempotent: a second run (or another relay) stores nothing more.
        let again = run(Job::WeeklyReport, &conn, "a").await.unwrap();
        assert_eq!(again["changed"], 0);
        assert_eq!(count(&conn, "SELECT count(*) FROM weekly_reports").await, 1);
        let stored = count(&conn, "SELECT report ->> '$.events' FROM weekly_reports").await;
        assert_eq!(stored, 3);
    }

    #[tokio::test]
    async fn retention_deletes_what_has_expired_and_keeps_the_rest() {
        let (_dir, conn) = database().await;
        let now = now_millis();
        let old = now - 91 * DAY;
        let week_old = now - 8 * DAY;
        // More old outbox rows than one statement deletes, so it takes rounds.
        let n = retention::CHUNK + 100;
        conn.execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
             INSERT INTO events (type, payload, created_at) SELECT 'alert.opened', '{}', ?2 FROM n",
            libsql::params![n, week_old],
        )
        .await
        .unwrap();
        conn.execute(
            "INSERT INTO events (type, payload, created_at) VALUES ('alert.opened', '{}', ?1)",
            [now],
        )
        .await
        .unwrap();
        for (id, observed) in [("e-old", old), ("e-new", now - DAY)] {
            conn.execute(
                "INSERT INTO threat_events (id, sensor_id, event_id, observed_at, received_at, event_type, source_ip,
                    source_class, score, severity, breakdown, confidence, payload, tags)
                 VALUES (?1, 's1', ?1, ?2, ?2, 'port_scan', '203.0.113.9', 'public', 10, 'low', '{}', 0.5, '{}', '[]')",
                libsql::params![id, observed],
            )
            .await
            .unwrap();
        }
        conn.execute_batch(&format!(
            "INSERT INTO users (id, username, role, created_at, updated_at) VALUES ('u1', 'u', 'viewer', 0, 0);
             INSERT INTO sessions (id, user_id, created_at, last_used_at, expires_at) VALUES
                ('gone', 'u1', 0, 0, {two_days_ago}), ('live', 'u1', 0, 0, {tomorrow}), ('just-expired', 'u1', 0, 0, {hour_ago});
             INSERT INTO mfa_challenges (token_hash, user_id, created_at, expires_at) VALUES ('c-old', 'u1', 0, {hour_ago}), ('c-new', 'u1', 0, {tomorrow});
             INSERT INTO idempotency_keys (scope, key, request_hash, response_status, response_body, created_at, expires_at)
                VALUES ('s', 'k-old', 'h', 201, '{{}}', 0, {hour_ago}), ('s', 'k-new', 'h', 201, '{{}}', 0, {tomorrow});
             INSERT INTO rate_limits (bucket, key, window_start, count) VALUES ('login:addr', 'a', {two_days_ago}, 3), ('login:addr', 'a', {now}, 1);
             INSERT INTO dead_letters (received_at, topic, reason, payload, payload_bytes) VALUES ({old}, 't', 'r', x'00', 1), ({now}, 't', 'r', x'00', 1);",
            two_days_ago = now - 2 * DAY,
            tomorrow = now + DAY,
            hour_ago = now - 60 * MIN,
        ))
        .await
        .unwrap();
        let audit_before = count(&conn, "SELECT count(*) FROM audit_log").await;

        let outcome = run(Job::Retention, &conn, "a").await.unwrap();
        let deleted = &outcome["deleted"];
        assert_eq!(deleted["events"], n, "{outcome}");
        assert_eq!(deleted["threat_events"], 1, "{outcome}");
        assert_eq!(deleted["sessions"], 1, "{outcome}");
        for table in [
            "mfa_challenges",
            "idempotency_keys",
            "rate_limits",
            "dead_letters",
        ] {
            assert_eq!(deleted[table], 1, "{table}: {outcome}");
        }
        assert_eq!(count(&conn, "SELECT count(*) FROM events").await, 1);
        assert_eq!(
            count(
                &conn,
                "SELECT count(*) FROM threat_events WHERE id = 'e-new'"
            )
            .await,
            1
        );
        assert_eq!(count(&conn, "SELECT count(*) FROM sessions").await, 2);
        assert_eq!(
            count(&conn, "SELECT count(*) FROM audit_log").await,
            audit_before
        );
        // Nothing more to delete.
        assert_eq!(run(Job::Retention, &conn, "a").await.unwrap()["changed"], 0);
    }

    /// A webhook receiver answering `status` to each POST; what it received.
    async fn receiver(status: u16) -> (String, tokio::sync::mpsc::UnboundedReceiver<String>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let origin = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                // Headers, then as many body bytes as Content-Length says.
                loop {
                    let n = socket.read(&mut buf).await.unwrap_or(0);
                    request.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&request).to_string();
                    if let Some((head, body)) = text.split_once("\r\n\r\n") {
                        let length: usize = head
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        if body.len() >= length || n == 0 {
                            let _ = tx.send(text.clone());
                            break;
                        }
                    }
                    if n == 0 {
                        break;
                    }
                }
                let reply = format!(
                    "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                );
                let _ = socket.write_all(reply.as_bytes()).await;
            }
        });
        (origin, rx)
    }

    #[tokio::test]
    async fn alerts_opened_after_the_first_run_get_their_playbooks_once() {
        let (_dir, conn) = database().await;
        let (origin, mut received) = receiver(200).await;
        let mut config = config();
        config.webhooks = WebhookConfig {
            origin: Some(origin.clone()),
            secret: Some("s3cret".into()),
        };
        let now = now_millis();
        let actions = serde_json::json!([
            {"kind": "block_ip", "requires_approval": true},
            {"kind": "notify_webhook", "url": format!("{origin}/hooks/soc")},
        ]);
        conn.execute(
            "INSERT INTO playbooks (id, name, description, enabled, trigger, actions, version, created_by, created_at, updated_at)
             VALUES ('p1', 'block scanners', '', 1, '{\"event_types\": [\"port_scan\"]}', ?1, 1, 'admin', 0, 0)",
            [actions.to_string()],
        )
        .await
        .unwrap();
        let open_alert = |id: &'static str, event_type: &'static str| {
            let conn = conn.clone();
            async move {
                conn.execute(
                    "INSERT INTO alerts (id, group_key, status, source_ip, event_type, sensor_id, severity, max_score,
                        event_count, first_seen, last_seen, version, created_at, updated_at)
                     VALUES (?1, ?1, 'open', '203.0.113.5', ?2, 's1', 'high', 80, 1, ?3, ?3, 1, ?3, ?3)",
                    libsql::params![id, event_type, now],
                )
                .await
                .unwrap();
                conn.execute(
                    "INSERT INTO events (type, payload, created_at) VALUES ('alert.opened', json_object('id', ?1), ?2)",
                    libsql::params![id, now],
                )
                .await
                .unwrap();
            }
        };
        // Opened before the job ever ran: not answered.
        open_alert("a-before", "port_scan").await;
        let first = run(Job::Playbooks, &conn, "a").await.unwrap();
        assert_eq!(first["changed"], 0, "{first}");

        open_alert("a-scan", "port_scan").await;
        open_alert("a-other", "malware").await;
        let outcome = run_once(
            Job::Playbooks,
            &config,
            &conn,
            "a",
            &mut Tenure::default(),
            &watch::channel(false).1,
        )
        .await
        .unwrap()
        .unwrap();
        assert_eq!(outcome["changed"], 1, "{outcome}");
        assert_eq!(outcome["alerts"], 2, "{outcome}");

        let executions = count(&conn, "SELECT count(*) FROM playbook_executions WHERE alert_id = 'a-scan' AND mode = 'automatic' AND started_by = 'playbook:p1' AND status = 'completed'").await;
        assert_eq!(executions, 1);
        assert_eq!(
            count(&conn, "SELECT count(*) FROM playbook_executions").await,
            1
        );
        assert_eq!(
            count(&conn, "SELECT count(*) FROM decisions WHERE source = 'playbook' AND subject_id = 'a-scan' AND status = 'pending' AND json_extract(parameters, '$.target') = '203.0.113.5'").await,
            1
        );
        let request = received.recv().await.unwrap();
        assert!(request.starts_with("POST /hooks/soc "), "{request}");
        assert!(
            request
                .to_ascii_lowercase()
                .contains("x-vigil-signature: t="),
            "{request}"
        );
        assert!(request.contains("\"a-scan\""), "{request}");

        // Run again: nothing new, nothing repeated.
        assert_eq!(run(Job::Playbooks, &conn, "a").await.unwrap()["changed"], 0);
        assert_eq!(
            count(&conn, "SELECT count(*) FROM playbook_executions").await,
            1
        );
        assert!(matches!(
            vigil_db::audit::verify(&conn).await.unwrap(),
            vigil_db::audit::Verdict::Intact { .. }
        ));
    }

    #[tokio::test]
    async fn a_webhook_outside_the_allowed_origin_is_refused_and_recorded() {
        let config = WebhookConfig {
            origin: Some("https://hooks.example.com".into()),
            secret: None,
        };
        let sent = post_json(&config, "http://127.0.0.1:9/hook", b"{}").await;
        assert!(sent.unwrap_err().starts_with("denied"));
        let none = WebhookConfig::default();
        assert!(
            post_json(&none, "https://hooks.example.com/x", b"{}")
                .await
                .is_err()
        );
    }
}
