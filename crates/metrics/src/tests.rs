//! The rules on a real, migrated SQLite database (through libsql): a
//! fixture whose every KPI is computed by hand in the comments; the
//! Prometheus text read back by a real parser; and a mixed workload through
//! the real writers (the ingestion pipeline, decision transitions, alert
//! acknowledgements) after which a rebuild gives exactly the incremental rollups.

use vigil_core::audit::Actor as AuditActor;
use vigil_core::decision::change::{Change, Rules, apply};
use vigil_core::decision::record::{self, NewDecision, Subject, SubjectKind};
use vigil_core::decision::transitions;
use vigil_core::decision::{
    Action, Actor, Command, DismissReason, SafetyPolicy, SlaPolicy, ThreatLevel, wire,
};
use vigil_core::rollup::{self, AlertChange, EventSample, HOUR_MS};
use vigil_db::Target;
use vigil_db::sql::LibsqlSql;
use vigil_ingest::sensor::Liveness;

use crate::summary::SummarySettings;
use crate::trends::Metric;
use crate::window::{Bucket, Window, parse_date};
use crate::{fleet, prometheus, rebuild, summary, trends, weekly};

/// Wednesday 25 November 2026, 12:30 UTC; `H` is the start of its hour.
fn now() -> i64 {
    parse_date("2026-11-25").unwrap() + 12 * HOUR_MS + 30 * 60_000
}
fn h() -> i64 {
    rollup::hour_of(now())
}
const MIN: i64 = 60_000;

async fn migrated() -> (tempfile::TempDir, libsql::Connection) {
    let dir = tempfile::tempdir().unwrap();
    let target = Target::Local(dir.path().join("v.db"));
    vigil_db::migrations::migrate(&target, &vigil_db::migrations::embedded())
        .await
        .unwrap();
    let conn = target.connect().await.unwrap();
    conn.execute_batch(
        "INSERT INTO sensors (id, name, kind, version, created_by, created_at, updated_at, last_heartbeat)
           VALUES ('s1', 'edge', 'honeypot', 1, 'test', 0, 0, NULL),
                  ('s2', 'gate', 'network', 1, 'test', 0, 0, NULL),
                  ('s3', 'quiet', 'network', 1, 'test', 0, 0, NULL);",
    )
    .await
    .unwrap();
    (dir, conn)
}

fn sample<'a>(
    at: i64,
    sensor: &'a str,
    kind: &'a str,
    severity: &'a str,
    zone: Option<&'a str>,
    country: Option<&'a str>,
    score: i64,
) -> EventSample<'a> {
    EventSample {
        observed_at: at,
        sensor_id: sensor,
        event_type: kind,
        severity,
        zone,
        country,
        score,
    }
}

/// A decision row (priority `p`, submitted at `at`, deadline `sla` later),
/// counted as submitted.
async fn decision(conn: &libsql::Connection, id: &str, p: i64, at: i64, sla: i64) {
    conn.execute(
        "INSERT INTO decisions (id, source, subject_kind, subject_id, action, parameters, threat_level, confidence,
            summary, rationale, evidence, priority, sla_deadline, status, version, submitted_by, created_at, updated_at)
         VALUES (?1, 'engine', 'alert', 'a', 'monitor', '{}', 'high', 1.0, 's', 'r', '{}', ?2, ?3, 'pending', 1, 'e', ?4, ?4)",
        libsql::params![id, p, at + sla, at],
    )
    .await
    .unwrap();
    rollup::decision_submitted(&LibsqlSql(conn), p, at)
        .await
        .unwrap();
}

/// The fixture, written through the rollup writers:
/// - events (hour H−1 unless noted): s1 port_scan low 30 US ×2; s1
///   exploit_attempt high 70 ot CN; s2 exploit_attempt critical 90 ot CN ×2;
///   s2 brute_force medium 50 (hour H−3, no country). 6 events, 3 alerting.
/// - alerts: one high and one critical opened at H−1; the high acknowledged
///   after 300 s, the critical after 900 s; the high resolved.
/// - decisions submitted at H−2: d1 P1 approved by ana after 60 s; d2 P2
///   dismissed (false_positive_motion) by ana after 600 s; d3 P2 escalated
///   by bob after 120 s, then dismissed (duplicate) by sup after 7200 s,
///   past its 60-minute deadline; d4 P3 still pending.
async fn fixture(conn: &libsql::Connection) {
    let db = LibsqlSql(conn);
    let (h1, h3) = (h() - HOUR_MS, h() - 3 * HOUR_MS);
    rollup::add_events(
        &db,
        &[
            sample(h1 + 1, "s1", "port_scan", "low", None, Some("US"), 30),
            sample(h1 + 2, "s1", "port_scan", "low", None, Some("US"), 30),
            sample(
                h1 + 3,
                "s1",
                "exploit_attempt",
                "high",
                Some("ot"),
                Some("CN"),
                70,
            ),
            sample(
                h1 + 4,
                "s2",
                "exploit_attempt",
                "critical",
                Some("ot"),
                Some("CN"),
                90,
            ),
            sample(
                h1 + 5,
                "s2",
                "exploit_attempt",
                "critical",
                Some("ot"),
                Some("CN"),
                90,
            ),
            sample(h3 + 6, "s2", "brute_force", "medium", None, None, 50),
        ],
    )
    .await
    .unwrap();
    let opened = h1 + 10 * MIN;
    rollup::add_alert_changes(
        &db,
        &[
            AlertChange::Opened {
                at: opened,
                severity: "high",
            },
            AlertChange::Opened {
                at: opened,
                severity: "critical",
            },
            AlertChange::Acknowledged {
                at: opened + 300_000,
                opened_at: opened,
                severity: "high",
            },
            AlertChange::Acknowledged {
                at: opened + 900_000,
                opened_at: opened,
                severity: "critical",
            },
            AlertChange::Resolved {
                at: opened + 1_000_000,
                severity: "high",
            },
        ],
    )
    .await
    .unwrap();
    let t = h() - 2 * HOUR_MS;
    decision(conn, "d1", 1, t, 15 * MIN).await;
    decision(conn, "d2", 2, t, 60 * MIN).await;
    decision(conn, "d3", 2, t, 60 * MIN).await;
    decision(conn, "d4", 3, t, 240 * MIN).await;
    let step = |id: &'static str,
                from: &'static str,
                to: &'static str,
                who: &'static str,
                reason: Option<&'static str>,
                after: i64| {
        let db = LibsqlSql(conn);
        async move {
            rollup::decision_transition(&db, id, from, to, who, reason, t + after)
                .await
                .unwrap()
        }
    };
    step("d1", "claimed", "approved", "ana", None, 60_000).await;
    step(
        "d2",
        "claimed",
        "dismissed",
        "ana",
        Some("false_positive_motion"),
        600_000,
    )
    .await;
    step("d3", "claimed", "escalated", "bob", None, 120_000).await;
    step(
        "d3",
        "escalated",
        "dismissed",
        "sup",
        Some("duplicate"),
        7_200_000,
    )
    .await;
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[tokio::test]
async fn every_kpi_matches_the_hand_computed_fixture() {
    let (_dir, conn) = migrated().await;
    fixture(&conn).await;
    let db = LibsqlSql(&conn);
    let w = Window::parse(Some("24h"), None, None, now()).unwrap();
    let s = summary::summary(
        &db,
        &w,
        &SummarySettings {
            ack_sla_seconds: 900.0,
        },
    )
    .await
    .unwrap();

    assert_eq!(s.events, 6);
    assert_eq!(s.events_by_severity["critical"], 2);
    assert_eq!(s.events_by_severity["low"], 2);
    assert_eq!(
        (s.alerts.opened, s.alerts.acknowledged, s.alerts.resolved),
        (2, 2, 1)
    );
    // (300 + 900) / 2
    assert_eq!(s.alerts.mean_time_to_acknowledge_seconds, Some(600.0));
    let d = &s.decisions;
    assert_eq!(
        (d.submitted, d.decided, d.approved, d.dismissed, d.rejected),
        (4, 3, 1, 2, 0)
    );
    assert_eq!((d.escalated, d.sla_breaches), (1, 1));
    assert!(close(s.dismissed_rate, 2.0 / 3.0));
    assert!(close(s.approval_rate, 1.0 / 3.0));
    assert!(close(s.escalation_rate, 0.25));
    assert!(close(s.sla_breach_rate, 1.0 / 3.0));
    // 60 s, 600 s, 7200 s: mean 2620 s. Buckets [60,120), [600,900), [7200,14400):
    // the median (rank 1.5) is halfway through [600, 900) = 750 s; p90 (rank
    // 2.7) is 0.7 through [7200, 14400) = 12,240 s.
    let ttd = s.time_to_decision.as_ref().unwrap();
    assert_eq!(ttd.count, 3);
    assert!(close(ttd.mean_seconds, 2620.0));
    assert!(close(ttd.median_seconds, 750.0), "{ttd:?}");
    assert!(close(ttd.p90_seconds, 12_240.0), "{ttd:?}");
    assert!(close(
        d.time_to_decision_by_priority["P1"].mean_seconds,
        60.0
    ));
    assert!(close(
        d.time_to_decision_by_priority["P2"].mean_seconds,
        3900.0
    ));
    assert_eq!(s.dismiss_reasons["false_positive_motion"], 1);
    assert_eq!(s.dismiss_reasons["duplicate"], 1);
    assert_eq!(d.by_analyst["ana"]["dismissed"], 1);
    assert_eq!(d.by_analyst["sup"]["dismissed"], 1);

    // Fatigue: false positives 1 of 3 decided; 2 alerts / (2 analysts × 24 h)
    // = 1/24 per analyst-hour, a load of 1/288; 3 alerting events for 2
    // alerts, a repeat share of 1/3; acknowledgements in [300,600) and
    // [900,1800): the median (rank 1) is the end of [300, 600) = 600 s, 2/3 of
    // the 900 s SLA.
    let f = &s.fatigue;
    assert!(close(f.false_positive_share, 1.0 / 3.0));
    assert!(close(f.alerts_per_analyst_hour, 1.0 / 24.0));
    assert!(close(f.alert_load, 1.0 / 288.0));
    assert!(close(f.repeat_alert_share, 1.0 / 3.0));
    assert_eq!(f.median_time_to_acknowledge_seconds, Some(600.0));
    assert!(close(f.ack_delay, 2.0 / 3.0));
    let score = 0.35 / 3.0 + 0.25 / 288.0 + 0.2 / 3.0 + 0.2 * 2.0 / 3.0;
    assert!(close(f.score, score), "{} vs {score}", f.score);

    let keys = |v: &[summary::Ranked]| {
        v.iter()
            .map(|r| (r.key.clone(), r.events))
            .collect::<Vec<_>>()
    };
    assert_eq!(keys(&s.top.sensors), [("s1".into(), 3), ("s2".into(), 3)]);
    assert_eq!(keys(&s.top.zones), [("ot".into(), 3)]);
    assert_eq!(
        keys(&s.top.event_types),
        [
            ("exploit_attempt".into(), 3),
            ("port_scan".into(), 2),
            ("brute_force".into(), 1)
        ]
    );
    assert_eq!(
        keys(&s.top.source_countries),
        [("CN".into(), 3), ("US".into(), 2)]
    );
    assert_eq!(s.top.techniques.len(), 3);
    assert_eq!(s.top.techniques[0].events, 3);

    // Outside the window nothing counts.
    let before = Window::parse(
        None,
        Some("2026-11-20T00:00:00Z"),
        Some("2026-11-21T00:00:00Z"),
        now(),
    )
    .unwrap();
    let empty = summary::summary(
        &db,
        &before,
        &SummarySettings {
            ack_sla_seconds: 900.0,
        },
    )
    .await
    .unwrap();
    assert_eq!(
        (empty.events, empty.decisions.submitted, empty.fatigue.score),
        (0, 0, 0.0)
    );

    // Map: CN 3 events (max 90), US 2 (max 30), one without a country.
    let m = fleet::map(&db, &w).await.unwrap();
    assert_eq!(m.countries.len(), 2);
    assert_eq!(
        (
            m.countries[0].country.as_str(),
            m.countries[0].events,
            m.countries[0].max_score
        ),
        ("CN", 3, 90)
    );
    assert!(close(m.countries[0].mean_score, 250.0 / 3.0));
    assert_eq!(
        (
            m.countries[1].country.as_str(),
            m.countries[1].events,
            m.countries[1].max_score
        ),
        ("US", 2, 30)
    );
    assert_eq!(m.unknown, 1);

    // Fleet: s3 heard from just now, s1 five minutes ago, s2 never.
    conn.execute(
        "UPDATE sensors SET last_heartbeat = CASE id WHEN 's3' THEN ?1 WHEN 's1' THEN ?1 - 300000 END",
        libsql::params![now()],
    )
    .await
    .unwrap();
    let fl = fleet::fleet(&db, &w, &Liveness::default(), now())
        .await
        .unwrap();
    assert_eq!((fl.total, fl.online, fl.stale, fl.offline), (3, 1, 1, 1));
    assert_eq!(fl.silent, ["s3"]);
    assert_eq!(fl.sensors[0].events, 3);

    // Risk now: hour H−1 (age 1) has 310 over 5 events, H−3 (age 3) 50 over 1.
    let (w1, w3) = (0.5f64.powf(1.0 / 6.0), 0.5f64.powf(3.0 / 6.0));
    let s_ew = (w1 * 310.0 + w3 * 50.0) / (w1 * 5.0 + w3);
    let r = trends::risk(&db, &w, now()).await.unwrap();
    assert!(
        close(r.weighted_mean_score, s_ew),
        "{} vs {s_ew}",
        r.weighted_mean_score
    );
    assert_eq!(r.open_critical_alerts, 0);
    assert_eq!(r.risk, (0.7 * s_ew).round() as u8);
    assert_eq!(r.history.len(), 24);
    // At the end of hour H−1 (the ages are one less), the critical alert
    // opened then is still open (C = 1).
    let at_h = &r.history[22];
    assert_eq!(at_h.at, vigil_core::time::rfc3339(h()));
    let w2 = 0.5f64.powf(2.0 / 6.0);
    let s_h = (310.0 + w2 * 50.0) / (5.0 + w2);
    assert_eq!(
        at_h.risk,
        (0.7 * s_h + 30.0 * (1.0 - (-1.0f64 / 3.0).exp())).round() as u8
    );
}

#[tokio::test]
async fn trends_are_zero_filled_and_bad_input_is_refused() {
    let (_dir, conn) = migrated().await;
    fixture(&conn).await;
    let db = LibsqlSql(&conn);
    let w = Window::parse(Some("24h"), None, None, now()).unwrap();
    let t = trends::trend(&db, &w, Metric::Events, Bucket::Hour, None)
        .await
        .unwrap();
    assert_eq!(t.buckets.len(), 24);
    assert_eq!(t.series.len(), 1);
    let v = &t.series[0].values;
    assert_eq!(v.len(), 24);
    // The last bucket is hour H; H−1 holds 5 events, H−3 one, the rest none.
    assert_eq!((v[23], v[22], v[21], v[20]), (0.0, 5.0, 0.0, 1.0));
    assert_eq!(v.iter().sum::<f64>(), 6.0);

    let by = trends::trend(
        &db,
        &w,
        Metric::Events,
        Bucket::Hour,
        Some("severity".into()),
    )
    .await
    .unwrap();
    let keys: Vec<&str> = by.series.iter().map(|s| s.key.as_str()).collect();
    assert_eq!(keys, ["critical", "high", "low", "medium"]);
    let zone = trends::trend(&db, &w, Metric::Events, Bucket::Day, Some("zone".into()))
        .await
        .unwrap();
    assert_eq!(zone.buckets.len(), 2);
    let keys: Vec<&str> = zone.series.iter().map(|s| s.key.as_str()).collect();
    assert_eq!(keys, ["none", "ot"]);

    let d = trends::trend(
        &db,
        &w,
        Metric::Decisions,
        Bucket::Hour,
        Some("outcome".into()),
    )
    .await
    .unwrap();
    let dismissed = d.series.iter().find(|s| s.key == "dismissed").unwrap();
    assert_eq!((dismissed.values[21], dismissed.values[23]), (1.0, 1.0));
    let a = trends::trend(&db, &w, Metric::Alerts, Bucket::Hour, None)
        .await
        .unwrap();
    assert_eq!(a.series[0].values[22], 2.0);

    // An empty window still has its zero-filled buckets.
    let quiet = Window::parse(
        None,
        Some("2026-11-01T00:00:00Z"),
        Some("2026-11-01T06:00:00Z"),
        now(),
    )
    .unwrap();
    let t = trends::trend(&db, &quiet, Metric::Alerts, Bucket::Hour, None)
        .await
        .unwrap();
    assert_eq!(t.series.len(), 1);
    assert_eq!(t.series[0].values, vec![0.0; 6]);

    let e = Metric::Alerts.group_by(Some("sensor")).unwrap_err();
    assert_eq!(e.status, 422);
    assert_eq!(e.errors[0].field, "group_by");
    assert!(e.errors[0].message.contains("severity"));
    assert!(Metric::Risk.group_by(Some("severity")).is_err());
    let e = Metric::parse(Some("cpu")).unwrap_err();
    assert!(
        e.errors[0]
            .message
            .contains("events, alerts, decisions, risk")
    );
    let long = Window::parse(
        None,
        Some("2020-01-01T00:00:00Z"),
        Some("2026-01-01T00:00:00Z"),
        now(),
    )
    .unwrap();
    let e = trends::trend(&db, &long, Metric::Events, Bucket::Hour, None)
        .await
        .unwrap_err();
    assert_eq!(e.errors[0].field, "bucket");
    assert!(
        trends::trend(&db, &long, Metric::Events, Bucket::Day, None)
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn the_weekly_report_is_computed_and_stored_once() {
    let (_dir, conn) = migrated().await;
    fixture(&conn).await;
    let db = LibsqlSql(&conn);
    let sunday = parse_date("2026-11-29").unwrap();
    let r = weekly::compute(&db, sunday, now()).await.unwrap();
    assert_eq!(r.week_ending, "2026-11-29");
    assert_eq!(r.from, "2026-11-23T00:00:00.000Z");
    assert_eq!(
        (r.events, r.incidents, r.decided, r.dismissed),
        (6, 2, 3, 2)
    );
    assert!(close(r.dismissed_rate, 2.0 / 3.0));
    assert_eq!(r.mean_time_to_decision_seconds, Some(2620.0));
    assert_eq!(r.top_sensors.len(), 2);
    assert_eq!(r.top_zones[0].key, "ot");
    assert_eq!(r.dismiss_reasons["duplicate"], 1);
    assert!(!r.stored);
    // The week before is empty.
    let before = weekly::compute(&db, sunday - 7 * 24 * HOUR_MS, now())
        .await
        .unwrap();
    assert_eq!((before.events, before.incidents), (0, 0));

    // The job, on Tuesday 1 December, stores the week ending 29 November, once.
    let tuesday = parse_date("2026-12-01").unwrap();
    assert_eq!(
        weekly::persist_last_week(&db, tuesday).await.unwrap(),
        ("2026-11-29".to_string(), true)
    );
    assert_eq!(
        weekly::persist_last_week(&db, tuesday + HOUR_MS)
            .await
            .unwrap(),
        ("2026-11-29".to_string(), false)
    );
    let stored = weekly::report(&db, sunday, tuesday + 2 * HOUR_MS)
        .await
        .unwrap();
    assert!(stored.stored);
    assert_eq!(stored.generated_at, vigil_core::time::rfc3339(tuesday));
    assert_eq!(stored.events, 6);
}

#[tokio::test]
async fn prometheus_text_parses_and_matches_the_fixture() {
    let (_dir, conn) = migrated().await;
    fixture(&conn).await;
    conn.execute_batch(
        "INSERT INTO alerts (id, group_key, status, source_ip, event_type, sensor_id, severity, max_score,
                             event_count, first_seen, last_seen, version, created_at, updated_at)
           VALUES ('a1', 'k1', 'open', '1.2.3.4', 'dos', 's1', 'critical', 90, 1, 0, 0, 1, 0, 0),
                  ('a2', 'k2', 'acknowledged', '1.2.3.4', 'dos', 's1', 'high', 70, 1, 0, 0, 1, 0, 0),
                  ('a3', 'k3', 'resolved', '1.2.3.4', 'dos', 's1', 'high', 70, 1, 0, 0, 1, 0, 0);",
    )
    .await
    .unwrap();
    let db = LibsqlSql(&conn);
    let families = prometheus::scrape(&db, &Liveness::default(), now())
        .await
        .unwrap();
    let text = prometheus::render(&families);
    let lines = text.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("parses as Prometheus text");
    let value = |name: &str, label: Option<(&str, &str)>| -> f64 {
        let s = scrape
            .samples
            .iter()
            .find(|s| s.metric == name && label.is_none_or(|(k, v)| s.labels.get(k) == Some(v)))
            .unwrap_or_else(|| panic!("{name} {label:?} missing from:\n{text}"));
        match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => panic!("{name} is not a plain sample"),
        }
    };
    // Each family has its HELP and TYPE.
    for f in &families {
        assert!(scrape.docs.contains_key(f.name), "no HELP for {}", f.name);
        assert!(text.contains(&format!("# TYPE {} {}", f.name, f.kind)));
    }
    assert_eq!(
        value("vigil_events_total", Some(("severity", "critical"))),
        2.0
    );
    assert_eq!(value("vigil_events_total", Some(("severity", "low"))), 2.0);
    assert_eq!(value("vigil_events_total", Some(("severity", "info"))), 0.0);
    assert_eq!(
        value("vigil_alerts_opened_total", Some(("severity", "high"))),
        1.0
    );
    assert_eq!(
        value("vigil_alerts_open", Some(("severity", "critical"))),
        1.0
    );
    assert_eq!(value("vigil_alerts_open", Some(("severity", "high"))), 1.0);
    // d1–d4 are stored as pending (the fixture only counted their transitions).
    assert_eq!(
        value("vigil_decisions_pending", Some(("priority", "P2"))),
        2.0
    );
    assert_eq!(
        value("vigil_decisions_pending", Some(("priority", "P4"))),
        0.0
    );
    assert_eq!(value("vigil_decision_sla_breaches_total", None), 1.0);
    assert_eq!(value("vigil_sensors", Some(("status", "offline"))), 3.0);
    assert_eq!(value("vigil_audit_entries_total", None), 0.0);
    // d1's 15-minute deadline and d2's, d3's hour have passed; d4's 4 hours have not.
    assert_eq!(value("vigil_decisions_overdue", None), 3.0);
}

/// An event as the tests write it: observed at, sensor, type, severity, zone, country, score.
type Event = (
    i64,
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
    i64,
);

/// Windows read the day rows of the whole days inside them and the hour
/// rows at their edges: over ten days of events, alerts and
/// acknowledgements, every window (named, and from/to at odd hours, short
/// and long) gives exactly what counting the samples themselves gives, by
/// every dimension, per hour and per day bucket, and per sensor.
#[tokio::test]
async fn windows_over_day_and_hour_rows_count_exactly_the_samples() {
    use std::collections::BTreeMap;

    use crate::read::{self, Dim};

    let (_dir, conn) = migrated().await;
    let db = LibsqlSql(&conn);
    let start = now() - 10 * 24 * HOUR_MS;
    let sensors = ["s1", "s2", "s3"];
    let kinds = ["port_scan", "exploit_attempt", "brute_force", "c2_beacon"];
    let severities = ["low", "medium", "high", "critical"];
    // 680 events up to now, one every 21 minutes (so hours and days hold uneven counts).
    let events: Vec<Event> = (0..680i64)
        .map(|i| {
            (
                start + i * 21 * MIN + i % 7,
                sensors[(i % 3) as usize],
                kinds[(i / 3 % 4) as usize],
                severities[(i / 5 % 4) as usize],
                [None, Some("ot"), Some("dmz")][(i % 5 % 3) as usize],
                [None, Some("CN"), Some("US"), Some("BR")][(i % 4) as usize],
                (i * 37) % 101,
            )
        })
        .collect();
    for chunk in events.chunks(97) {
        let samples: Vec<EventSample> = chunk
            .iter()
            .map(|&(at, s, k, v, z, c, score)| sample(at, s, k, v, z, c, score))
            .collect();
        rollup::add_events(&db, &samples).await.unwrap();
    }
    // An alert opened every 5 hours, acknowledged 17·k minutes later.
    let alerts: Vec<(i64, &str, i64)> = (0..48i64)
        .map(|i| {
            (
                start + i * 5 * HOUR_MS + 7 * MIN,
                ["high", "critical"][(i % 2) as usize],
                17 * MIN * (i % 9 + 1),
            )
        })
        .collect();
    for &(at, severity, after) in &alerts {
        rollup::add_alert_changes(
            &db,
            &[
                AlertChange::Opened { at, severity },
                AlertChange::Acknowledged {
                    at: at + after,
                    opened_at: at,
                    severity,
                },
            ],
        )
        .await
        .unwrap();
    }

    let windows = [
        Window::parse(Some("24h"), None, None, now()).unwrap(),
        Window::parse(Some("7d"), None, None, now()).unwrap(),
        Window::parse(Some("30d"), None, None, now()).unwrap(),
        Window::parse(Some("all"), None, None, now()).unwrap(),
        // Mid-day to mid-day over several days; within one day; across one midnight.
        Window::parse(
            None,
            Some("2026-11-16T05:10:00Z"),
            Some("2026-11-22T19:00:00Z"),
            now(),
        )
        .unwrap(),
        Window::parse(
            None,
            Some("2026-11-18T02:00:00Z"),
            Some("2026-11-18T09:30:00Z"),
            now(),
        )
        .unwrap(),
        Window::parse(
            None,
            Some("2026-11-19T22:00:00Z"),
            Some("2026-11-20T03:00:00Z"),
            now(),
        )
        .unwrap(),
        // Exactly whole days.
        Window::parse(
            None,
            Some("2026-11-17T00:00:00Z"),
            Some("2026-11-21T00:00:00Z"),
            now(),
        )
        .unwrap(),
    ];
    let dims = [
        Dim::Severity,
        Dim::Type,
        Dim::Sensor,
        Dim::Zone,
        Dim::Country,
    ];
    for w in &windows {
        let inside = |at: i64| {
            let h = rollup::hour_of(at);
            h >= w.from_or_min() && h < w.to
        };
        let mut expected = vec![BTreeMap::<String, read::EventAgg>::new(); dims.len()];
        let mut by_hour = BTreeMap::<i64, i64>::new();
        let mut by_day = BTreeMap::<(i64, String), i64>::new();
        let mut s2 = BTreeMap::<String, i64>::new();
        for &(at, sensor, kind, severity, zone, country, score) in &events {
            if !inside(at) {
                continue;
            }
            let keys = [
                severity,
                kind,
                sensor,
                zone.unwrap_or(""),
                country.unwrap_or(""),
            ];
            for (map, key) in expected.iter_mut().zip(keys) {
                let a = map.entry(key.into()).or_default();
                a.events += 1;
                a.score_sum += score;
                a.max_score = a.max_score.max(score);
            }
            *by_hour.entry(rollup::hour_of(at)).or_default() += 1;
            *by_day
                .entry((rollup::day_of(at), sensor.into()))
                .or_default() += 1;
            if sensor == "s2" {
                *s2.entry(kind.into()).or_default() += 1;
            }
        }
        let label = format!("{w:?}");
        assert_eq!(
            read::events_by(&db, w, &dims).await.unwrap(),
            expected,
            "{label}"
        );
        let hourly: BTreeMap<i64, i64> = read::events_series(&db, w, HOUR_MS, None)
            .await
            .unwrap()
            .into_iter()
            .map(|(at, key, a)| {
                assert_eq!(key, "total");
                (at, a.events)
            })
            .collect();
        assert_eq!(hourly, by_hour, "{label}");
        let daily: BTreeMap<(i64, String), i64> =
            read::events_series(&db, w, 24 * HOUR_MS, Some(Dim::Sensor))
                .await
                .unwrap()
                .into_iter()
                .map(|(at, key, a)| ((at, key), a.events))
                .collect();
        assert_eq!(daily, by_day, "{label}");
        let [own] = read::events_by_of(&db, w, "s2", &[Dim::Type])
            .await
            .unwrap()
            .try_into()
            .unwrap();
        let own: BTreeMap<String, i64> = own.into_iter().map(|(k, a)| (k, a.events)).collect();
        assert_eq!(own, s2, "{label}");

        let mut opened = BTreeMap::<String, i64>::new();
        let mut tta = vec![0i64; rollup::BUCKET_BOUNDS_S.len() + 1];
        for &(at, severity, after) in &alerts {
            if inside(at) {
                *opened.entry(severity.into()).or_default() += 1;
            }
            if inside(at + after) {
                tta[rollup::bucket_of(after) as usize] += 1;
            }
        }
        let got: BTreeMap<String, i64> = read::alerts_by_severity(&db, w)
            .await
            .unwrap()
            .into_iter()
            .filter(|(_, a)| a.opened > 0)
            .map(|(k, a)| (k, a.opened))
            .collect();
        assert_eq!(got, opened, "{label}");
        let h = read::histograms(&db, w).await.unwrap();
        let got = h.get("tta").cloned().unwrap_or_else(|| vec![0; tta.len()]);
        assert_eq!(got, tta, "{label}");
    }
}

#[test]
fn a_window_is_cut_into_whole_days_and_the_hours_at_its_edges() {
    use crate::read::parts;
    let day = 24 * HOUR_MS;
    let d = parse_date("2026-11-20").unwrap();
    let w = |from: Option<i64>, to: i64| Window {
        label: "custom".into(),
        from,
        to,
        open_end: false,
    };
    assert_eq!(
        parts(&w(Some(d - 3 * HOUR_MS), d + 2 * day + 5 * HOUR_MS), true),
        [
            ("hour", d - 3 * HOUR_MS, d),
            ("day", d, d + 2 * day),
            ("hour", d + 2 * day, d + 2 * day + 5 * HOUR_MS)
        ]
    );
    assert_eq!(parts(&w(Some(d), d + day), true), [("day", d, d + day)]);
    // Less than a whole day: hours only; and an hourly series never reads days.
    assert_eq!(
        parts(&w(Some(d + HOUR_MS), d + day + HOUR_MS), true),
        [("hour", d + HOUR_MS, d + day + HOUR_MS)]
    );
    assert_eq!(
        parts(&w(Some(d), d + 3 * day), false),
        [("hour", d, d + 3 * day)]
    );
    assert_eq!(
        parts(&w(None, d + 7 * HOUR_MS), true),
        [("day", i64::MIN, d), ("hour", d, d + 7 * HOUR_MS)]
    );
    // A window up to now reads its last day's row: nothing later is counted yet.
    let open = |from: Option<i64>, to: i64| Window {
        open_end: true,
        ..w(from, to)
    };
    assert_eq!(
        parts(&open(Some(d - 29 * day), d + 7 * HOUR_MS), true),
        [("day", d - 29 * day, d + day)]
    );
    assert_eq!(
        parts(&open(Some(d - 17 * HOUR_MS), d + 7 * HOUR_MS), true),
        [("hour", d - 17 * HOUR_MS, d), ("day", d, d + day)]
    );
    assert_eq!(
        parts(&open(None, d + day), true),
        [("day", i64::MIN, d + day)]
    );
    assert_eq!(
        parts(&open(Some(d + 2 * HOUR_MS), d + 7 * HOUR_MS), true),
        [("hour", d + 2 * HOUR_MS, d + 7 * HOUR_MS)]
    );
}

/// A database that already held 0012's rollups (one events row per hour ×
/// sensor × type × severity × zone × country, hour rows only) comes out of
/// migration 0015 with exactly the rows today's writers keep for the same
/// events, alerts and decisions: per dimension and per sensor, hours and days.
#[tokio::test]
async fn rollups_of_0012_migrate_to_the_rows_the_writers_keep() {
    use std::collections::BTreeMap;

    let dir = tempfile::tempdir().unwrap();
    let old = Target::Local(dir.path().join("old.db"));
    let before_0015: Vec<_> = vigil_db::migrations::embedded()
        .into_iter()
        .filter(|m| m.version < 15)
        .collect();
    vigil_db::migrations::migrate(&old, &before_0015)
        .await
        .unwrap();
    let old_conn = old.connect().await.unwrap();
    let (_new_dir, new_conn) = migrated().await;
    let new_db = LibsqlSql(&new_conn);

    // Events over two days and a midnight, as 0012's writer summed them and as today's does.
    let start = parse_date("2026-11-20").unwrap() + 20 * HOUR_MS;
    let events: Vec<Event> = (0..120i64)
        .map(|i| {
            (
                start + i * 17 * MIN,
                ["s1", "s2"][(i % 2) as usize],
                ["port_scan", "brute_force", "exploit_attempt"][(i % 3) as usize],
                ["low", "high"][(i / 4 % 2) as usize],
                [None, Some("ot")][(i % 5 % 2) as usize],
                [None, Some("CN"), Some("US")][(i % 3) as usize],
                (i * 13) % 100,
            )
        })
        .collect();
    type WideKey<'a> = (i64, &'a str, &'a str, &'a str, &'a str, &'a str);
    let mut wide: BTreeMap<WideKey, (i64, i64, i64)> = BTreeMap::new();
    for &(at, sensor, kind, severity, zone, country, score) in &events {
        let w = wide
            .entry((
                rollup::hour_of(at),
                sensor,
                kind,
                severity,
                zone.unwrap_or(""),
                country.unwrap_or(""),
            ))
            .or_default();
        w.0 += 1;
        w.1 += score;
        w.2 = w.2.max(score);
    }
    for ((hour, sensor, kind, severity, zone, country), (n, sum, max)) in wide {
        old_conn
            .execute(
                "INSERT INTO rollup_events (hour, sensor_id, event_type, severity, zone, country, events, score_sum, max_score)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                libsql::params![hour, sensor, kind, severity, zone, country, n, sum, max],
            )
            .await
            .unwrap();
    }
    let samples: Vec<EventSample> = events
        .iter()
        .map(|&(at, s, k, v, z, c, score)| sample(at, s, k, v, z, c, score))
        .collect();
    rollup::add_events(&new_db, &samples).await.unwrap();

    // Alerts opened each 3 hours and acknowledged 20 minutes later (across midnight too).
    for i in 0..10i64 {
        let at = start + i * 3 * HOUR_MS + 50 * MIN;
        let ack = at + 20 * MIN;
        let severity = ["high", "critical"][(i % 2) as usize];
        for (hour, opened, acknowledged, ms) in [
            (rollup::hour_of(at), 1, 0, 0),
            (rollup::hour_of(ack), 0, 1, ack - at),
        ] {
            old_conn
                .execute(
                    "INSERT INTO rollup_alerts (hour, severity, opened, acknowledged, resolved, ack_ms_sum)
                     VALUES (?1, ?2, ?3, ?4, 0, ?5)
                     ON CONFLICT (hour, severity) DO UPDATE SET opened = opened + excluded.opened,
                         acknowledged = acknowledged + excluded.acknowledged, ack_ms_sum = ack_ms_sum + excluded.ack_ms_sum",
                    libsql::params![hour, severity, opened, acknowledged, ms],
                )
                .await
                .unwrap();
        }
        old_conn
            .execute(
                "INSERT INTO rollup_durations (hour, series, bucket, count) VALUES (?1, 'tta', ?2, 1)
                 ON CONFLICT (hour, series, bucket) DO UPDATE SET count = count + 1",
                libsql::params![rollup::hour_of(ack), rollup::bucket_of(ack - at)],
            )
            .await
            .unwrap();
        rollup::add_alert_changes(
            &new_db,
            &[
                AlertChange::Opened { at, severity },
                AlertChange::Acknowledged {
                    at: ack,
                    opened_at: at,
                    severity,
                },
            ],
        )
        .await
        .unwrap();
        // And a decision submitted with each.
        old_conn
            .execute(
                "INSERT INTO rollup_decisions (hour, priority, outcome, reason, analyst, count, decided, ttd_ms_sum, sla_breaches)
                 VALUES (?1, 2, 'submitted', '', '', 1, 0, 0, 0)
                 ON CONFLICT (hour, priority, outcome, reason, analyst) DO UPDATE SET count = count + 1",
                libsql::params![rollup::hour_of(at)],
            )
            .await
            .unwrap();
        rollup::decision_submitted(&new_db, 2, at).await.unwrap();
    }

    vigil_db::migrations::migrate(&old, &vigil_db::migrations::embedded())
        .await
        .unwrap();
    let migrated_rows = snapshot(&old.connect().await.unwrap()).await;
    assert!(migrated_rows.iter().any(|r| r.contains("\"day\"")));
    assert_eq!(migrated_rows, snapshot(&new_conn).await);
}

/// Every rollup row, in key order, as text.
async fn snapshot(conn: &libsql::Connection) -> Vec<String> {
    let mut out = Vec::new();
    for (table, order) in [
        ("rollup_events_by", "span, sensor_id, dim, start, key"),
        ("rollup_alerts", "span, start, severity"),
        (
            "rollup_decisions",
            "span, start, priority, outcome, reason, analyst",
        ),
        ("rollup_durations", "span, start, series, bucket"),
    ] {
        let mut rows = conn
            .query(&format!("SELECT * FROM {table} ORDER BY {order}"), ())
            .await
            .unwrap();
        while let Some(row) = rows.next().await.unwrap() {
            let cols: Vec<String> = (0..row.column_count())
                .map(|i| format!("{:?}", row.get_value(i).unwrap()))
                .collect();
            out.push(format!("{table}: {}", cols.join(" ")));
        }
    }
    out
}

/// A mixed workload through the real writers: events over HTTP's and MQTT's
/// pipeline (several batches, duplicates, alerts opened and joined),
/// acknowledgements and resolutions as the threats component writes them,
/// decisions submitted, claimed, escalated, approved (twice), rejected and
/// dismissed, the SLA job's escalations. Then the rollups are rebuilt from
/// the raw rows: every row is the same.
#[tokio::test]
async fn rebuild_equals_incremental_after_a_mixed_workload() {
    use vigil_ingest::geo::GeoLookup;
    use vigil_ingest::pipeline::{self, Sender, Storing};

    let (_dir, conn) = migrated().await;
    let db = LibsqlSql(&conn);
    let actor = AuditActor {
        actor: "key:k1".into(),
        request_id: None,
        client_addr: None,
    };
    let base = now() - 20 * HOUR_MS;
    for batch in 0..6i64 {
        let items: Vec<serde_json::Value> = (0..40i64)
            .map(|i| {
                let n = batch * 40 + i;
                let kind = [
                    "port_scan",
                    "exploit_attempt",
                    "brute_force",
                    "c2_beacon",
                    "http_probe",
                ][(n % 5) as usize];
                serde_json::json!({
                    "sensor_id": (["s1", "s2"][((n / 3) % 2) as usize]),
                    // Every third event again is a duplicate of the one before it.
                    "event_id": format!("e{}", if n % 3 == 2 { n - 1 } else { n }),
                    "event_type": kind,
                    "observed_at": vigil_core::time::rfc3339(base + n * 4 * MIN),
                    "source_ip": format!("203.0.113.{}", n % 7),
                    "dest_ip": if n % 4 == 0 { "10.0.0.5" } else { "192.168.1.9" },
                })
            })
            .collect();
        let at = base + (batch + 1) * 3 * HOUR_MS;
        let sender = Sender {
            sensor: None,
            actor: &actor,
        };
        let mut validated = pipeline::validate(items, at, 90 * 24 * HOUR_MS);
        validated.ingested_by(&actor);
        let storing = Storing {
            zones: vigil_ingest::classify::ZoneMap::parse("10.0.0.0/8=ot:critical").unwrap(),
            alert_window_ms: 15 * MIN,
            geo: GeoLookup::new(vec![], |_| {}),
        };
        let prepared = validated.prepare(&storing);
        conn.execute("BEGIN IMMEDIATE", ()).await.unwrap();
        pipeline::commit(&db, &storing, &sender, &validated, &prepared, at)
            .await
            .unwrap();
        conn.execute("COMMIT", ()).await.unwrap();
    }
    // Acknowledge every other alert and resolve every third, as the threats component does.
    let mut rows = conn
        .query(
            "SELECT id, created_at, opened_severity FROM alerts ORDER BY id",
            (),
        )
        .await
        .unwrap();
    let mut alerts = Vec::new();
    while let Some(r) = rows.next().await.unwrap() {
        alerts.push((
            r.get::<String>(0).unwrap(),
            r.get::<i64>(1).unwrap(),
            r.get::<String>(2).unwrap(),
        ));
    }
    assert!(alerts.len() >= 3, "the workload opens alerts");
    for (i, (id, created, severity)) in alerts.iter().enumerate() {
        let at = created + (i as i64 + 1) * 4 * MIN;
        let to = match i % 3 {
            0 => "acknowledged",
            1 => "resolved",
            _ => continue,
        };
        conn.execute(
            "UPDATE alerts SET status = ?2, acknowledged_at = CASE WHEN ?2 = 'acknowledged' THEN ?3 ELSE acknowledged_at END,
                    resolved_at = CASE WHEN ?2 = 'resolved' THEN ?3 ELSE resolved_at END WHERE id = ?1",
            libsql::params![id.as_str(), to, at],
        )
        .await
        .unwrap();
        let change = if to == "acknowledged" {
            AlertChange::Acknowledged {
                at,
                opened_at: *created,
                severity,
            }
        } else {
            AlertChange::Resolved { at, severity }
        };
        rollup::add_alert_changes(&db, &[change]).await.unwrap();
    }

    // Decisions through the state machine and `record`.
    let sla = SlaPolicy::default();
    let person = |id: &str, role| Actor {
        id: id.into(),
        role: Some(role),
    };
    let ana = person("ana", vigil_core::Role::Analyst);
    let sup = person("sup", vigil_core::Role::Supervisor);
    let boss = person("boss", vigil_core::Role::Supervisor);
    let audit = AuditActor {
        actor: "u".into(),
        request_id: None,
        client_addr: None,
    };
    let safety = SafetyPolicy::default();
    let rules = Rules {
        dispatch_type: &[Action::Dispatch],
        safety: &safety,
    };
    let levels = [
        ThreatLevel::Critical,
        ThreatLevel::High,
        ThreatLevel::Medium,
        ThreatLevel::Low,
    ];
    let mut clock = base;
    for i in 0..12usize {
        let id = format!("d{i}");
        let action = if i % 6 == 3 {
            Action::Dispatch
        } else {
            Action::BlockIp
        };
        let new = NewDecision {
            source: "engine".into(),
            subject: Subject {
                kind: SubjectKind::Alert,
                id: "a".into(),
            },
            action,
            parameters: Default::default(),
            threat_level: levels[i % 4],
            confidence: 0.9,
            summary: "s".into(),
            rationale: "r".into(),
            evidence: Default::default(),
            ingested_by: vec![],
        };
        clock += 13 * MIN;
        conn.execute("BEGIN IMMEDIATE", ()).await.unwrap();
        let entry = audit.entry("decision.submitted", "decision", &id, clock);
        let mut d = record::open_pending(&db, &id, &new, "engine", entry, &sla, clock)
            .await
            .unwrap();
        let plan: Vec<(Command, &Actor)> = match i % 6 {
            0 => vec![(Command::Claim, &ana), (Command::Approve, &ana)],
            1 => vec![
                (Command::Claim, &ana),
                (
                    Command::Dismiss {
                        reason: DismissReason::FalsePositiveMotion,
                        note: None,
                    },
                    &ana,
                ),
            ],
            2 => vec![
                (Command::Claim, &ana),
                (Command::Escalate { note: "n".into() }, &ana),
                (Command::Claim, &sup),
                (Command::Reject { note: "no".into() }, &sup),
            ],
            3 => vec![
                (Command::Claim, &sup),
                (Command::Approve, &sup),
                (Command::SecondApproval { approve: true }, &boss),
            ],
            4 => vec![
                (Command::Claim, &ana),
                (
                    Command::Dismiss {
                        reason: DismissReason::Duplicate,
                        note: None,
                    },
                    &ana,
                ),
            ],
            _ => vec![],
        };
        for (step, (command, who)) in plan.into_iter().enumerate() {
            let at = clock + (step as i64 + 1) * (i as i64 + 1) * 11 * MIN;
            let reason = match &command {
                Command::Dismiss { reason, .. } => Some(wire(reason)),
                _ => None,
            };
            let change = Change {
                command: &command,
                actor: who,
                note: None,
                reason: reason.as_deref(),
                outcome_detail: None,
            };
            let applied = apply(&d, &change, &rules, &audit, at).unwrap();
            transitions::record_transition(&db, &d, &change, &applied, at)
                .await
                .unwrap();
            d = applied.after;
        }
        conn.execute("COMMIT", ()).await.unwrap();
    }
    // The SLA job escalates what is left pending past its deadline.
    conn.execute("BEGIN IMMEDIATE", ()).await.unwrap();
    let escalated = transitions::escalate_overdue(&db, &audit, now())
        .await
        .unwrap();
    conn.execute("COMMIT", ()).await.unwrap();
    assert!(!escalated.is_empty());

    let incremental = snapshot(&conn).await;
    assert!(
        incremental
            .iter()
            .any(|r| r.starts_with("rollup_decisions"))
    );
    assert!(incremental.iter().any(|r| r.contains("\"tta\"")));
    assert!(incremental.iter().any(|r| r.contains("ttd:P")));
    conn.execute("BEGIN IMMEDIATE", ()).await.unwrap();
    let done = rebuild::rebuild(&db, None, None).await.unwrap();
    conn.execute("COMMIT", ()).await.unwrap();
    assert!(done.events > 0 && done.decisions > 0);
    assert_eq!(snapshot(&conn).await, incremental);

    // Rebuilding a few hours only leaves the same rollups too; and a range
    // whose rollups were lost is restored.
    conn.execute(
        "DELETE FROM rollup_events_by WHERE start >= ?1",
        libsql::params![base + 5 * HOUR_MS],
    )
    .await
    .unwrap();
    conn.execute("BEGIN IMMEDIATE", ()).await.unwrap();
    rebuild::rebuild(&db, Some(base + 5 * HOUR_MS), Some(now() + HOUR_MS))
        .await
        .unwrap();
    conn.execute("COMMIT", ()).await.unwrap();
    assert_eq!(snapshot(&conn).await, incremental);

    // The summary over the raw rows' counts agrees with them.
    let w = Window::parse(Some("all"), None, None, now()).unwrap();
    let s = summary::summary(
        &db,
        &w,
        &SummarySettings {
            ack_sla_seconds: 900.0,
        },
    )
    .await
    .unwrap();
    let count = |sql: &'static str| {
        let conn = &conn;
        async move {
            vigil_db::target::query_i64(conn, sql, ())
                .await
                .unwrap()
                .unwrap()
        }
    };
    assert_eq!(s.events, count("SELECT count(*) FROM threat_events").await);
    assert_eq!(s.alerts.opened, count("SELECT count(*) FROM alerts").await);
    assert_eq!(s.decisions.submitted, 12);
    assert_eq!(
        s.decisions.decided,
        count("SELECT count(*) FROM decision_transitions WHERE to_status IN ('approved', 'awaiting_second_approval', 'rejected', 'dismissed') AND from_status IN ('pending', 'claimed', 'escalated')").await
    );
}
