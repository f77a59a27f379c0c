//! The metrics component end to end: the KPIs count exactly what a case
//! ingested and decided (read as deltas, or by a sensor of its own: the
//! leg's database is shared by every case), trends are zero-filled, the
//! fleet, map, risk and weekly report answer from the rollups, the stats
//! of decisions and threats agree with them; bad input is a 422 naming the
//! allowed values; `/metrics` needs a `metrics:scrape` key and its text is
//! read back by a real Prometheus parser.

use serde_json::{Value, json};
use vigil_core::Role;
use vigil_e2e::{Resp, TestApp, count, just_now, unique, vigil_command, workspace_root};

use crate::Case;

pub const CASES: &[Case] = &[
    (
        "metrics_count_what_a_case_ingested_and_decided",
        metrics_count_what_a_case_ingested_and_decided,
    ),
    (
        "metrics_bad_input_is_a_422_naming_the_allowed_values",
        metrics_bad_input_is_a_422_naming_the_allowed_values,
    ),
    (
        "metrics_prometheus_text_needs_a_scrape_key_and_parses",
        metrics_prometheus_text_needs_a_scrape_key_and_parses,
    ),
    (
        "metrics_rebuild_from_the_cli_leaves_the_figures_as_they_were",
        metrics_rebuild_from_the_cli_leaves_the_figures_as_they_were,
    ),
    (
        "metrics_public_serves_the_prometheus_text_to_anyone_and_nothing_else",
        metrics_public_serves_the_prometheus_text_to_anyone_and_nothing_else,
    ),
];

fn get(app: &TestApp, path: &str) -> Value {
    let r = app.get_as(Role::Viewer, path);
    assert_eq!(r.status, 200, "{path}: {}", r.text());
    r.json()
}

fn n(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

/// An event; exploit attempts come with a critical hint, so they raise an alert.
fn event(sensor: &str, id: &str, kind: &str, source: &str, dest: &str) -> Value {
    let hint = if kind == "exploit_attempt" {
        "critical"
    } else {
        "low"
    };
    json!({
        "event_id": id, "sensor_id": sensor, "observed_at": just_now(),
        "event_type": kind, "source_ip": source, "dest_ip": dest, "severity_hint": hint,
    })
}

fn post_events(app: &TestApp, events: Vec<Value>) -> Value {
    let r = app.post_json(
        "/api/threats/events",
        &json!({"events": events}),
        Some(&app.token(Role::Admin)),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

fn submit_and_dismiss(app: &TestApp, reason: &str) {
    let body = json!({
        "source": "metrics-e2e", "subject": {"kind": "alert", "id": vigil_core::id::new_id()},
        "proposed_action": "block_ip", "parameters": {"target": "81.2.69.10"},
        "threat_level": "high", "confidence": 0.9, "summary": "s", "rationale": "r",
        "evidence": {"refs": []}
    });
    let auth = format!("Bearer {}", app.token(Role::Admin));
    let key = vigil_core::id::new_id();
    let r = app.request(
        "POST",
        "/api/decisions",
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
            ("idempotency-key", &key),
        ],
        Some(body.to_string().as_bytes()),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_string();
    let mut etag = r.header("etag").unwrap().to_string();
    for (command, body) in [("claim", json!({})), ("dismiss", json!({"reason": reason}))] {
        let auth = format!("Bearer {}", app.token(Role::Analyst));
        let r: Resp = app.request(
            "POST",
            &format!("/api/decisions/{id}/{command}"),
            &[
                ("authorization", &auth),
                ("content-type", "application/json"),
                ("if-match", &etag),
            ],
            Some(body.to_string().as_bytes()),
        );
        assert_eq!(r.status, 200, "{command}: {}", r.text());
        etag = r.header("etag").unwrap().to_string();
    }
}

fn metrics_count_what_a_case_ingested_and_decided(app: &TestApp) {
    let sensor = unique("metrics");
    let r = app.post_json_as(
        Role::Admin,
        "/api/sensors",
        &json!({"id": sensor, "name": "metrics probe", "kind": "honeypot"}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let before = get(app, "/api/metrics/summary?range=24h");
    let map_before = get(app, "/api/metrics/map");
    let threats_before = get(app, "/api/threats/stats?range=24h");

    // Five events: three scans from a GB address (GeoIP), two exploit
    // attempts against the OT zone (critical: they raise one alert).
    let tag = vigil_core::id::new_id();
    let mut events: Vec<Value> = (0..3)
        .map(|i| {
            event(
                &sensor,
                &format!("{tag}-s{i}"),
                "port_scan",
                "81.2.69.10",
                "10.1.1.1",
            )
        })
        .collect();
    events.extend((0..2).map(|i| {
        event(
            &sensor,
            &format!("{tag}-x{i}"),
            "exploit_attempt",
            "198.51.100.99",
            "10.20.3.3",
        )
    }));
    let stored = post_events(app, events);
    assert_eq!(stored["accepted"].as_array().unwrap().len(), 5);
    let critical = stored["accepted"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["severity"] == "critical")
        .count() as i64;
    submit_and_dismiss(app, "false_positive");

    let after = get(app, "/api/metrics/summary?range=24h");
    assert_eq!(n(&after["events"]) - n(&before["events"]), 5, "{after}");
    assert_eq!(
        n(&after["events_by_severity"]["critical"]) - n(&before["events_by_severity"]["critical"]),
        critical
    );
    assert!(n(&after["alerts"]["opened"]) > n(&before["alerts"]["opened"]));
    // Jobs may decide other things meanwhile: at least ours.
    assert!(n(&after["decisions"]["decided"]) > n(&before["decisions"]["decided"]));
    assert!(
        n(&after["dismiss_reasons"]["false_positive"])
            > n(&before["dismiss_reasons"]["false_positive"])
    );
    for rate in [
        "dismissed_rate",
        "escalation_rate",
        "approval_rate",
        "sla_breach_rate",
    ] {
        let v = after[rate].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&v), "{rate} = {v}");
    }
    let fatigue = &after["fatigue"];
    let score = fatigue["score"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&score));
    for part in [
        "false_positive_share",
        "alert_load",
        "repeat_alert_share",
        "ack_delay",
    ] {
        assert!(fatigue[part].is_f64(), "{part}: {fatigue}");
    }
    assert!(after["top"]["sensors"].is_array());
    assert!(
        after["time_to_decision"]["median_seconds"].is_f64(),
        "{after}"
    );

    // The threats stats read the same rollups.
    let threats = get(app, "/api/threats/stats?range=24h");
    assert_eq!(threats["by_sensor"][&sensor], 5);
    assert_eq!(n(&threats["total"]) - n(&threats_before["total"]), 5);

    // Trends: this sensor's series sums to 5, every hour present.
    let t = get(
        app,
        "/api/metrics/trends?metric=events&bucket=hour&group_by=sensor&range=24h",
    );
    assert_eq!(t["buckets"].as_array().unwrap().len(), 24);
    let ours = t["series"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == sensor.as_str())
        .unwrap_or_else(|| panic!("no series for {sensor}: {t}"));
    let values = ours["values"].as_array().unwrap();
    assert_eq!(values.len(), 24);
    assert_eq!(values.iter().map(|v| v.as_f64().unwrap()).sum::<f64>(), 5.0);
    assert!(values.iter().filter(|v| v.as_f64() == Some(0.0)).count() >= 21);
    let days = get(app, "/api/metrics/trends?metric=alerts&bucket=day&range=7d");
    assert_eq!(days["series"][0]["key"], "total");
    assert_eq!(
        days["buckets"].as_array().unwrap().len(),
        days["series"][0]["values"].as_array().unwrap().len()
    );
    let decisions = get(app, "/api/metrics/trends?metric=decisions&group_by=outcome");
    assert!(
        decisions["series"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["key"] == "dismissed")
    );
    let risk_trend = get(app, "/api/metrics/trends?metric=risk&bucket=hour&range=24h");
    assert_eq!(risk_trend["series"][0]["key"], "risk");

    // Fleet: ours is registered, silent never (it sent five), offline (no heartbeat).
    let fleet = get(app, "/api/metrics/sensors?range=24h");
    let row = fleet["sensors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == sensor.as_str())
        .unwrap()
        .clone();
    assert_eq!(
        (row["events"].clone(), row["status"].clone()),
        (json!(5), json!("offline"))
    );
    assert!(
        !fleet["silent"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s == sensor.as_str())
    );
    assert_eq!(
        n(&fleet["total"]),
        count(app, "SELECT count(*) FROM sensors").unwrap_or(n(&fleet["total"]))
    );
    assert_eq!(
        n(&fleet["online"]) + n(&fleet["stale"]) + n(&fleet["offline"]),
        n(&fleet["total"])
    );

    // Map: three events from GB, with their highest score.
    let map = get(app, "/api/metrics/map");
    let gb = |m: &Value| {
        m["countries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["country"] == "GB")
            .map_or(0, |c| n(&c["events"]))
    };
    assert_eq!(gb(&map) - gb(&map_before), 3, "{map}");

    // Risk: a number 0–100 and 24 hours of history.
    let risk = get(app, "/api/metrics/risk");
    let value = n(&risk["risk"]);
    assert!((0..=100).contains(&value));
    assert_eq!(risk["history"].as_array().unwrap().len(), 24);
    assert!(n(&risk["open_critical_alerts"]) >= 0);

    // Weekly: the current week (computed) holds our events; the default is the last ended week.
    let today = vigil_core::time::now_millis();
    let day = 86_400_000;
    let midnight = today / day * day;
    let sunday = midnight + (6 - (midnight / day + 3).rem_euclid(7)) * day;
    let week = &vigil_core::time::rfc3339(sunday)[..10];
    let weekly = get(app, &format!("/api/metrics/weekly?week_ending={week}"));
    assert_eq!(weekly["week_ending"], week);
    assert!(n(&weekly["events"]) >= 5);
    assert!(n(&weekly["dismissed"]) >= 1);
    assert!(
        weekly["dismiss_reasons"]["false_positive"]
            .as_i64()
            .unwrap()
            >= 1
    );
    let last = get(app, "/api/metrics/weekly");
    assert_eq!(
        last["week_ending"].as_str().unwrap(),
        &vigil_core::time::rfc3339(sunday - 7 * day)[..10]
    );
}

fn metrics_bad_input_is_a_422_naming_the_allowed_values(app: &TestApp) {
    let problem = |path: &str, field: &str, mentions: &str| {
        let p = app
            .get_as(Role::Viewer, path)
            .assert_problem(422, "validation");
        let errors = p["errors"].as_array().unwrap();
        assert!(
            errors
                .iter()
                .any(|e| e["field"] == field && e["message"].as_str().unwrap().contains(mentions)),
            "{path}: {p}"
        );
    };
    problem(
        "/api/metrics/summary?range=1y",
        "range",
        "24h, 7d, 30d, all",
    );
    problem("/api/metrics/trends?bucket=week", "bucket", "hour, day");
    problem(
        "/api/metrics/trends?metric=cpu",
        "metric",
        "events, alerts, decisions, risk",
    );
    problem(
        "/api/metrics/trends?metric=events&group_by=country",
        "group_by",
        "severity, type, sensor, zone",
    );
    problem(
        "/api/metrics/trends?metric=alerts&group_by=sensor",
        "group_by",
        "severity",
    );
    problem(
        "/api/metrics/summary?from=2026-11-02T00:00:00Z&to=2026-11-01T00:00:00Z",
        "from",
        "after",
    );
    problem("/api/metrics/map?from=yesterday", "from", "RFC 3339");
    problem(
        "/api/metrics/trends?bucket=hour&from=2020-01-01T00:00:00Z&to=2026-01-01T00:00:00Z",
        "bucket",
        "10000",
    );
    problem(
        "/api/metrics/weekly?week_ending=2026-11-28",
        "week_ending",
        "Sunday",
    );
    problem(
        "/api/metrics/weekly?week_ending=soon",
        "week_ending",
        "YYYY-MM-DD",
    );
    problem(
        "/api/metrics/sensors?range=7d&from=2026-11-01T00:00:00Z",
        "range",
        "not both",
    );
    problem("/api/decisions/stats?range=1y", "range", "24h");
    problem("/api/threats/stats?range=1y", "range", "24h");
    // Days over the same six years are fine.
    let r = app.get_as(
        Role::Viewer,
        "/api/metrics/trends?bucket=day&from=2020-01-01T00:00:00Z&to=2026-01-01T00:00:00Z",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["buckets"].as_array().unwrap().len(), 2192);
    app.get("/api/metrics/summary")
        .assert_problem(401, "unauthenticated");
}

fn metrics_prometheus_text_needs_a_scrape_key_and_parses(app: &TestApp) {
    app.get("/metrics").assert_problem(401, "unauthenticated");
    // People never scrape: even an admin is refused.
    app.get_as(Role::Admin, "/metrics")
        .assert_problem(403, "forbidden");
    let key = |scopes: Value| {
        let r = app.post_json_as(
            Role::Admin,
            "/api/auth/api-keys",
            &json!({"name": unique("scraper"), "kind": "service", "scopes": scopes}),
        );
        assert_eq!(r.status, 201, "{}", r.text());
        r.json()["secret"].as_str().unwrap().to_string()
    };
    let other = key(json!(["metrics:read"]));
    app.with_bearer("GET", "/metrics", &other)
        .assert_problem(403, "forbidden");
    let scraper = key(json!(["metrics:scrape"]));
    let scrape = || {
        let r = app.with_bearer("GET", "/metrics", &scraper);
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(
            r.header("content-type")
                .unwrap()
                .starts_with("text/plain; version=0.0.4")
        );
        let text = r.text();
        let parsed = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string())))
            .unwrap_or_else(|e| panic!("not Prometheus text ({e}):\n{text}"));
        (text, parsed)
    };
    let value = |s: &prometheus_parse::Scrape, name: &str, label: Option<(&str, &str)>| -> f64 {
        s.samples
            .iter()
            .filter(|x| x.metric == name && label.is_none_or(|(k, v)| x.labels.get(k) == Some(v)))
            .map(|x| match x.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                _ => 0.0,
            })
            .sum()
    };
    let (text, before) = scrape();
    for family in [
        "vigil_events_total",
        "vigil_alerts_opened_total",
        "vigil_alerts_open",
        "vigil_decisions_pending",
        "vigil_decision_sla_breaches_total",
        "vigil_decisions_overdue",
        "vigil_sensors",
        "vigil_audit_entries_total",
    ] {
        assert!(
            before.docs.contains_key(family),
            "no HELP for {family}:\n{text}"
        );
        assert!(
            text.contains(&format!("# TYPE {family} ")),
            "no TYPE for {family}"
        );
    }
    if let Some(sensors) = count(app, "SELECT count(*) FROM sensors") {
        assert_eq!(value(&before, "vigil_sensors", None) as i64, sensors);
    }

    // Two critical events of a sensor of this case add two to the critical counter.
    let sensor = unique("scrape");
    let tag = vigil_core::id::new_id();
    let stored = post_events(
        app,
        (0..2)
            .map(|i| {
                event(
                    &sensor,
                    &format!("{tag}-{i}"),
                    "exploit_attempt",
                    "198.51.100.98",
                    "10.20.3.4",
                )
            })
            .collect(),
    );
    let critical = stored["accepted"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["severity"] == "critical")
        .count() as f64;
    let (_, after) = scrape();
    assert_eq!(
        value(&after, "vigil_events_total", Some(("severity", "critical")))
            - value(
                &before,
                "vigil_events_total",
                Some(("severity", "critical"))
            ),
        critical
    );
    assert_eq!(
        value(&after, "vigil_events_total", None) - value(&before, "vigil_events_total", None),
        2.0
    );
    assert!(
        value(&after, "vigil_audit_entries_total", None)
            > value(&before, "vigil_audit_entries_total", None)
    );
}

/// `vigil metrics rebuild` recomputes the leg's rollups from its raw rows:
/// the events and alerts every other case wrote over HTTP give the same
/// figures rebuilt as they did incrementally. (Decisions are left out: some
/// cases move deadlines in the database behind the API's back.)
fn metrics_rebuild_from_the_cli_leaves_the_figures_as_they_were(app: &TestApp) {
    let Some(db) = &app.db else { return };
    let bin = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("vigil");
    let figures = |s: &Value| {
        json!({"events": s["events"], "by_severity": s["events_by_severity"], "alerts": s["alerts"],
               "sensors": s["top"]["sensors"], "countries": s["top"]["source_countries"]})
    };
    let before = figures(&get(app, "/api/metrics/summary?range=all"));
    let run = |args: &[&str]| {
        vigil_command(&bin, db)
            .args(args)
            .current_dir(workspace_root())
            .output()
            .expect("vigil runs")
    };
    let out = run(&["metrics", "rebuild"]);
    let said =
        String::from_utf8_lossy(&out.stdout).to_string() + &*String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("rebuilt the rollups"), "{said}");
    assert_eq!(figures(&get(app, "/api/metrics/summary?range=all")), before);
    let today = &vigil_core::time::rfc3339(vigil_core::time::now_millis())[..10];
    let out = run(&["metrics", "rebuild", "--from", today]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(figures(&get(app, "/api/metrics/summary?range=all")), before);
    let bad = run(&["metrics", "rebuild", "--from", "last tuesday"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--from"));
}

/// `metrics_public = true` (a second app on the leg's runtime and
/// database): `/metrics` answers without a key, with the same text a
/// scrape key gets; the KPIs under `/api/metrics/` still need a token.
fn metrics_public_serves_the_prometheus_text_to_anyone_and_nothing_else(app: &TestApp) {
    let Some((open, _dir)) = app.with_variables(&[("metrics_public", "true")]) else {
        vigil_e2e::skip(vigil_e2e::NEEDS_OWN_APP)
    };
    let get = |path: &str, auth: Option<&str>| {
        let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", *a)).collect();
        vigil_e2e::client::request("GET", &format!("{}{path}", open.base_url), &headers, None)
            .expect("an answer")
    };
    let r = get("/metrics", None);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = r.text();
    let parsed = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string())))
        .unwrap_or_else(|e| panic!("not Prometheus text ({e}):\n{text}"));
    assert!(parsed.docs.contains_key("vigil_events_total"), "{text}");
    assert!(
        parsed.docs.contains_key("vigil_audit_entries_total"),
        "{text}"
    );
    // A token is not needed, nor refused.
    let viewer = format!("Bearer {}", app.token(Role::Viewer));
    assert_eq!(get("/metrics", Some(&viewer)).status, 200);
    // Only the scrape is opened: the KPIs still want a token, and the default app still wants a key.
    assert_eq!(get("/api/metrics/summary", None).status, 401);
    assert_eq!(get("/api/metrics/summary", Some(&viewer)).status, 200);
    app.get("/metrics").assert_problem(401, "unauthenticated");
}
