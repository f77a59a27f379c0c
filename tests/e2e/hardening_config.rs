//! Issue 22's configuration and API-core hardening, each case the attack or
//! the mistake it stops:
//!
//! - a bad setting is a 503 naming the variable (and a log line), never a
//!   silent default: one app per family of settings, started with bad values;
//! - a protected target cannot be reached by another spelling of it, and an
//!   operator's list of dispatch-type actions is honoured;
//! - an analyst cannot approve a decision a playbook opened on their own events;
//! - a token without a session, multi-byte input where bytes were sliced, and
//!   a forged `Host` in an onboarding token get nowhere;
//! - every response says `nosniff`; HSTS and CORS follow their variables.
//!
//! The cases with settings of their own start a second app on the leg's
//! runtime and database (the seeded users' tokens work on both).

use serde_json::{Value, json};
use vigil_core::Role;
use vigil_e2e::{Resp, TestApp, count, unique};
use vigil_host::launch::Running;

use crate::Case;

pub const CASES: &[Case] = &[
    (
        "config_bad_decision_settings_are_503s_naming_them",
        bad_decision_settings_are_503s_naming_them,
    ),
    (
        "config_bad_threat_settings_are_503s_naming_them",
        bad_threat_settings_are_503s_naming_them,
    ),
    (
        "config_bad_export_and_metrics_settings_are_503s_naming_them",
        bad_export_and_metrics_settings_are_503s_naming_them,
    ),
    (
        "config_bad_shared_settings_refuse_every_component",
        bad_shared_settings_refuse_every_component,
    ),
    (
        "config_protected_targets_hold_against_every_spelling",
        protected_targets_hold_against_every_spelling,
    ),
    (
        "config_an_analyst_cannot_approve_what_their_events_asked_a_playbook_for",
        an_analyst_cannot_approve_what_their_events_asked_a_playbook_for,
    ),
    (
        "config_a_token_without_a_session_is_refused",
        a_token_without_a_session_is_refused,
    ),
    (
        "config_multibyte_input_is_refused_not_a_crash",
        multibyte_input_is_refused_not_a_crash,
    ),
    (
        "config_onboarding_tokens_name_the_configured_url_not_the_host",
        onboarding_tokens_name_the_configured_url_not_the_host,
    ),
    (
        "config_every_response_says_nosniff_and_other_origins_are_refused",
        every_response_says_nosniff_and_other_origins_are_refused,
    ),
];

fn call(
    running: &Running,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> Resp {
    let body = body.map(Value::to_string);
    vigil_e2e::client::request(
        method,
        &format!("{}{path}", running.base_url),
        headers,
        body.as_deref().map(str::as_bytes),
    )
    .expect("an answer")
}

fn as_role(
    app: &TestApp,
    running: &Running,
    role: Role,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Resp {
    let auth = format!("Bearer {}", app.token(role));
    let key = vigil_core::id::new_id();
    call(
        running,
        method,
        path,
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
            ("idempotency-key", &key),
        ],
        body,
    )
}

/// Assert `r` is the 503 for bad settings naming exactly `names`.
#[track_caller]
fn names_bad_settings(r: &Resp, names: &[&str]) {
    let doc = r.assert_problem(503, "misconfigured");
    let mut named: Vec<&str> = doc["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    named.sort_unstable();
    let mut expected = names.to_vec();
    expected.sort_unstable();
    assert_eq!(named, expected, "{doc}");
    for name in names {
        assert!(doc["detail"].as_str().unwrap().contains(name), "{doc}");
    }
}

/// The component logs of a second app (Spin's log files, or the host's stderr).
fn logs_of(running: &Running, dir: &tempfile::TempDir) -> String {
    let mut logs = running.stderr();
    for entry in std::fs::read_dir(dir.path().join("spin-logs"))
        .into_iter()
        .flatten()
        .flatten()
    {
        logs += &std::fs::read_to_string(entry.path()).unwrap_or_default();
    }
    logs
}

fn submission(action: &str, target: &str) -> Value {
    json!({
        "source": "e2e-hardening", "subject": {"kind": "alert", "id": unique("a")},
        "proposed_action": action, "parameters": {"target": target},
        "threat_level": "high", "confidence": 0.9, "summary": format!("{action} {target}"),
    })
}

/// Before: each bad value silently became its default (a typo in the SLA
/// list gave the default deadlines; `10.0.0.0/abc` protected one address;
/// an unknown action name was dropped). Now every decision is refused until
/// an operator fixes them, and the log says which and why.
fn bad_decision_settings_are_503s_naming_them(app: &TestApp) {
    let Some((bad, dir)) = app.with_variables(&[
        ("decision_sla_minutes", "15,60"),
        ("decision_confidence_floor", "high"),
        ("decision_protected_targets", "10.0.0.0/abc"),
        ("decision_dispatch_actions", "dispatch,nuke"),
    ]) else {
        vigil_e2e::skip(vigil_e2e::NEEDS_OWN_APP)
    };
    let names = [
        "decision_sla_minutes",
        "decision_confidence_floor",
        "decision_protected_targets",
        "decision_dispatch_actions",
    ];
    let r = as_role(
        app,
        &bad,
        Role::Admin,
        "POST",
        "/api/decisions",
        Some(&submission("block_ip", "203.0.113.7")),
    );
    names_bad_settings(&r, &names);
    // Playbooks open decisions under the same rules: refused there too.
    let r = as_role(
        app,
        &bad,
        Role::Analyst,
        "POST",
        &format!("/api/playbooks/{}/execute", vigil_core::id::new_id()),
        Some(&json!({"alert_id": vigil_core::id::new_id()})),
    );
    names_bad_settings(&r, &names);
    let logs = logs_of(&bad, &dir);
    for name in names {
        assert!(
            logs.contains(&format!("\"variable\":\"{name}\"")),
            "no log line names {name}: {logs}"
        );
    }
}

/// Before: a retention of `ninety` days became 90, an online age above the
/// offline age silently became both defaults, and a zone without a name
/// made every event a 500. Now ingestion is a 503 naming each.
fn bad_threat_settings_are_503s_naming_them(app: &TestApp) {
    let Some((bad, _dir)) = app.with_variables(&[
        ("event_retention_days", "ninety"),
        ("sensor_online_seconds", "600"),
        ("sensor_offline_seconds", "120"),
        ("threat_zones", "10.0.0.0/8"),
    ]) else {
        vigil_e2e::skip(vigil_e2e::NEEDS_OWN_APP)
    };
    let event = json!({
        "event_id": unique("e"), "sensor_id": unique("s"), "observed_at": vigil_e2e::just_now(),
        "event_type": "port_scan", "source_ip": "203.0.113.9",
    });
    let r = as_role(
        app,
        &bad,
        Role::Analyst,
        "POST",
        "/api/threats/events",
        Some(&event),
    );
    names_bad_settings(&r, &["event_retention_days", "threat_zones"]);
    // The order of the two ages is checked once each parses.
    let Some((bad, _dir)) = app.with_variables(&[
        ("sensor_online_seconds", "600"),
        ("sensor_offline_seconds", "120"),
    ]) else {
        vigil_e2e::skip(vigil_e2e::NEEDS_OWN_APP)
    };
    let r = as_role(app, &bad, Role::Viewer, "GET", "/api/sensors", None);
    names_bad_settings(&r, &["sensor_offline_seconds"]);
    let r = as_role(app, &bad, Role::Viewer, "GET", "/api/metrics/sensors", None);
    names_bad_settings(&r, &["sensor_offline_seconds"]);
}

/// Before: `export_max_events=lots` allowed 100,000 and an ack SLA of 0
/// minutes became 15; onboarding tokens took their URL from the request.
/// Now each is refused naming its variable (an unset `public_base_url`
/// included: no onboarding token names a URL the operator did not give).
fn bad_export_and_metrics_settings_are_503s_naming_them(app: &TestApp) {
    let Some((bad, _dir)) = app.with_variables(&[
        ("export_max_events", "lots"),
        ("metrics_ack_sla_minutes", "0"),
        ("public_base_url", ""),
    ]) else {
        vigil_e2e::skip(vigil_e2e::NEEDS_OWN_APP)
    };
    let r = as_role(app, &bad, Role::Admin, "GET", "/api/export/audit", None);
    names_bad_settings(&r, &["export_max_events"]);
    let r = as_role(
        app,
        &bad,
        Role::Viewer,
        "GET",
        "/api/metrics/summary?range=24h",
        None,
    );
    names_bad_settings(&r, &["metrics_ack_sla_minutes"]);
    let tokens_before = count(app, "SELECT count(*) FROM sensor_onboarding_tokens");
    let r = as_role(
        app,
        &bad,
        Role::Admin,
        "POST",
        "/api/sensors/onboarding-tokens",
        Some(&json!({"ttl_minutes": 30})),
    );
    names_bad_settings(&r, &["public_base_url"]);
    assert_eq!(
        count(app, "SELECT count(*) FROM sensor_onboarding_tokens"),
        tokens_before,
        "no token is issued without the URL"
    );
}

/// Before: a bad `trusted_proxies` trusted no proxy without a word (and
/// HSTS/CORS settings did not exist). Now every component refuses every
/// request, health included, naming each bad shared variable.
fn bad_shared_settings_refuse_every_component(app: &TestApp) {
    let Some((bad, _dir)) = app.with_variables(&[
        ("trusted_proxies", "10.0.0.0/abc"),
        ("https_only", "yes"),
        ("cors_allowed_origins", "*"),
    ]) else {
        vigil_e2e::skip(vigil_e2e::NEEDS_OWN_APP)
    };
    for area in ["auth", "decisions", "threats", "metrics", "export"] {
        let r = call(&bad, "GET", &format!("/api/{area}/health"), &[], None);
        names_bad_settings(
            &r,
            &["trusted_proxies", "https_only", "cors_allowed_origins"],
        );
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    }
}

/// Before: `::ffff:10.0.0.5`, `10.0.0.5/32` and `DB.internal.` were not
/// `10.0.0.0/8` or `db.internal` to the validator, so an analyst could
/// approve blocking or isolating a protected asset. Now targets are
/// compared (and stored) canonical, and a target that is neither an
/// address nor a host name is refused. The same app adds `block_ip` to the
/// dispatch-type actions: it then needs a second approver.
fn protected_targets_hold_against_every_spelling(app: &TestApp) {
    let Some((strict, dir)) = app.with_variables(&[
        ("decision_protected_targets", "10.0.0.0/8, db.internal"),
        (
            "decision_dispatch_actions",
            "dispatch,isolate_host,disable_account,block_ip",
        ),
        ("https_only", "true"),
        ("cors_allowed_origins", "https://console.example.test"),
    ]) else {
        vigil_e2e::skip(vigil_e2e::NEEDS_OWN_APP)
    };
    let decide = |action: &str, target: &str| -> (Resp, Value) {
        let r = as_role(
            app,
            &strict,
            Role::Admin,
            "POST",
            "/api/decisions",
            Some(&submission(action, target)),
        );
        assert_eq!(
            r.status,
            201,
            "{target}: {}\n{}",
            r.text(),
            logs_of(&strict, &dir)
        );
        let d = r.json();
        let id = d["id"].as_str().unwrap().to_string();
        let analyst = format!("Bearer {}", app.token(Role::Analyst));
        let claim = call(
            &strict,
            "POST",
            &format!("/api/decisions/{id}/claim"),
            &[("authorization", &analyst), ("if-match", "\"1\"")],
            None,
        );
        assert_eq!(claim.status, 200, "{}", claim.text());
        let etag = claim.header("etag").unwrap_or("\"2\"").to_string();
        let approve = call(
            &strict,
            "POST",
            &format!("/api/decisions/{id}/approve"),
            &[("authorization", &analyst), ("if-match", &etag)],
            None,
        );
        (approve, d)
    };
    for (action, spelling, canonical) in [
        ("block_ip", "::ffff:10.0.0.5", "10.0.0.5"),
        ("block_ip", "10.0.0.5/32", "10.0.0.5"),
        ("block_ip", "0x0a.0.0.5", "10.0.0.5"),
        ("isolate_host", "DB.internal.", "db.internal"),
    ] {
        let (approve, d) = decide(action, spelling);
        assert_eq!(d["parameters"]["target"], canonical, "stored canonical");
        let doc = approve.assert_problem(422, "validation");
        assert_eq!(
            doc["errors"][0]["field"], "safety.protected_target",
            "{spelling}: {doc}"
        );
    }
    for target in ["10.0.0.0/16", "db internal", "10.0.0.256"] {
        let r = as_role(
            app,
            &strict,
            Role::Admin,
            "POST",
            "/api/decisions",
            Some(&submission("block_ip", target)),
        );
        let doc = r.assert_problem(422, "validation");
        assert_eq!(
            doc["errors"][0]["field"], "parameters.target",
            "{target}: {doc}"
        );
    }
    // The operator's list is honoured: block_ip now awaits a second approver.
    let (approve, _) = decide("block_ip", "203.0.113.77");
    assert_eq!(approve.status, 200, "{}", approve.text());
    assert_eq!(approve.json()["status"], "awaiting_second_approval");

    // Served over HTTPS: HSTS on every response; the listed origin's page
    // may call the API, any other origin's preflight is refused.
    let health = call(&strict, "GET", "/api/decisions/health", &[], None);
    assert_eq!(
        health.header("strict-transport-security"),
        Some("max-age=31536000; includeSubDomains")
    );
    let preflight = |origin: &str| {
        call(
            &strict,
            "OPTIONS",
            "/api/decisions",
            &[
                ("origin", origin),
                ("access-control-request-method", "POST"),
                (
                    "access-control-request-headers",
                    "authorization, content-type",
                ),
            ],
            None,
        )
    };
    let ok = preflight("https://console.example.test");
    assert_eq!(ok.status, 204, "{}", ok.text());
    assert_eq!(
        ok.header("access-control-allow-origin"),
        Some("https://console.example.test")
    );
    assert!(
        ok.header("access-control-allow-methods")
            .unwrap()
            .contains("POST")
    );
    assert!(
        ok.header("access-control-allow-headers")
            .unwrap()
            .contains("authorization")
    );
    preflight("https://evil.example").assert_problem(403, "cors-origin-refused");
    let read = call(
        &strict,
        "GET",
        "/api/decisions?limit=1",
        &[
            ("origin", "https://console.example.test"),
            (
                "authorization",
                &format!("Bearer {}", app.token(Role::Viewer)),
            ),
        ],
        None,
    );
    assert_eq!(read.status, 200, "{}", read.text());
    assert_eq!(
        read.header("access-control-allow-origin"),
        Some("https://console.example.test")
    );
    let foreign = call(
        &strict,
        "GET",
        "/api/decisions?limit=1",
        &[
            ("origin", "https://evil.example"),
            (
                "authorization",
                &format!("Bearer {}", app.token(Role::Viewer)),
            ),
        ],
        None,
    );
    assert_eq!(foreign.header("access-control-allow-origin"), None);
}

/// Wait until the relay's playbooks job has answered every outbox event so far.
fn playbooks_caught_up(app: &TestApp) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while count(
        app,
        "SELECT (SELECT position FROM job_leases WHERE job = 'playbooks') >= (SELECT max(id) FROM events)",
    ) != Some(1)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the playbooks job did not catch up"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Before: an analyst posted events (as a user), a playbook answered the
/// alert with a decision submitted by `playbook:<id>`, and the same analyst
/// claimed and approved it. Now whoever ingested the alert's events counts
/// as a submitter: that analyst is refused, another analyst may approve.
fn an_analyst_cannot_approve_what_their_events_asked_a_playbook_for(app: &TestApp) {
    app.needs_own_app();
    let playbook = app.send_as(
        Role::Supervisor,
        "POST",
        "/api/playbooks",
        &[],
        Some(&json!({
            "name": unique("self-approval"),
            "trigger": {"event_types": ["data_exfiltration"], "min_severity": "high"},
            "actions": [{"kind": "block_ip", "requires_approval": true}],
        })),
    );
    assert_eq!(playbook.status, 201, "{}", playbook.text());
    let playbook_id = playbook.json()["id"].as_str().unwrap().to_string();

    // Mallory: an analyst of her own, with a live session.
    let (mallory, mallory_token) = analyst_with_session(app);
    let event = json!({
        "event_id": unique("cs"), "sensor_id": unique("s"), "observed_at": vigil_e2e::just_now(),
        "event_type": "data_exfiltration", "source_ip": "198.51.100.66", "dest_ip": "10.20.3.4",
        "severity_hint": "critical",
    });
    let r = app.post_json("/api/threats/events", &event, Some(&mallory_token));
    assert_eq!(r.status, 200, "{}", r.text());
    let alert = r.json()["accepted"][0]["alert_id"]
        .as_str()
        .expect("an alert")
        .to_string();
    playbooks_caught_up(app);
    let runs = app.get_as(
        Role::Viewer,
        &format!("/api/playbooks/executions?alert_id={alert}"),
    );
    let runs = runs.json();
    let decision = runs["executions"][0]["outcomes"][0]["decision_id"]
        .as_str()
        .unwrap_or_else(|| panic!("a decision: {runs}"))
        .to_string();
    let d = app
        .get_as(Role::Viewer, &format!("/api/decisions/{decision}"))
        .json();
    assert_eq!(d["submitted_by"], format!("playbook:{playbook_id}"));
    assert_eq!(d["ingested_by"], json!([mallory]));

    // Mallory claims it and tries to approve what her own events asked for.
    let path = |c: &str| format!("/api/decisions/{decision}/{c}");
    let claim = app.send(
        "POST",
        &path("claim"),
        &mallory_token,
        &[("if-match", "\"1\"")],
        None,
    );
    assert_eq!(claim.status, 200, "{}", claim.text());
    let refused = app.send(
        "POST",
        &path("approve"),
        &mallory_token,
        &[("if-match", "\"2\"")],
        None,
    );
    let doc = refused.assert_problem(403, "not-allowed");
    assert!(
        doc["detail"].as_str().unwrap().contains("submitted"),
        "{doc}"
    );
    // Another analyst may.
    app.send(
        "POST",
        &path("release"),
        &mallory_token,
        &[("if-match", "\"2\"")],
        None,
    );
    let other = app.token(Role::Analyst);
    let claim = app.send(
        "POST",
        &path("claim"),
        &other,
        &[("if-match", "\"3\"")],
        None,
    );
    assert_eq!(claim.status, 200, "{}", claim.text());
    let ok = app.send(
        "POST",
        &path("approve"),
        &other,
        &[("if-match", "\"4\"")],
        None,
    );
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert_eq!(
        count(
            app,
            &format!(
                "SELECT count(*) FROM threat_events WHERE alert_id = '{alert}' AND ingested_by = '{mallory}'"
            )
        ),
        Some(1)
    );
    app.send_as(
        Role::Supervisor,
        "DELETE",
        &format!("/api/playbooks/{playbook_id}"),
        &[],
        None,
    );
}

/// A new analyst with a live session (made in the database, as the suite
/// seeds its users) and an access token for it.
fn analyst_with_session(app: &TestApp) -> (String, String) {
    let user = vigil_core::id::new_id();
    let session = vigil_core::id::new_id();
    let far = vigil_core::time::now_millis() + 3600 * 1000;
    vigil_e2e::execute(
        app,
        &format!(
            "INSERT INTO users (id, username, role, created_at, updated_at) VALUES ('{user}', '{}', 'analyst', 0, 0);
             INSERT INTO sessions (id, user_id, created_at, last_used_at, expires_at) VALUES ('{session}', '{user}', 0, 0, {far});",
            unique("mallory")
        ),
    );
    let claims = vigil_core::token::Claims::user_access(
        "vigil",
        "vigil",
        &user,
        Role::Analyst,
        &session,
        vigil_core::time::now_millis() / 1000,
    );
    let token = app.signer.sign(&claims);
    (user, token)
}

/// Before: a token without `sid` skipped the session check, so logout,
/// a password change or a role change could never end it. Now it is refused.
fn a_token_without_a_session_is_refused(app: &TestApp) {
    let mut claims = app.claims(Role::Admin);
    claims.sid = None;
    let token = app.signer.sign(&claims);
    let r = app.with_bearer("GET", "/api/decisions?limit=1", &token);
    let doc = r.assert_problem(401, "unauthenticated");
    assert!(doc["detail"].as_str().unwrap().contains("session"), "{doc}");
    // The same claims with their session pass.
    assert_eq!(
        app.get_as(Role::Admin, "/api/decisions?limit=1").status,
        200
    );
}

/// Before: a User-Agent with a multi-byte character across its 256th byte,
/// or an event time with one in its offset, panicked the component on a
/// string slice (500). Now the first is cut on a character boundary and
/// the second is a rejected item.
fn multibyte_input_is_refused_not_a_crash(app: &TestApp) {
    let user = app.create_user(Role::Viewer, "correct horse battery staple 13");
    let agent = format!("{}€ browser", "a".repeat(255));
    let r = app.request(
        "POST",
        "/api/auth/login",
        &[("content-type", "application/json"), ("user-agent", &agent)],
        Some(
            json!({"username": user.username, "password": user.password})
                .to_string()
                .as_bytes(),
        ),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    if app.db.is_some() {
        assert_eq!(
            count(
                app,
                &format!(
                    "SELECT length(user_agent) FROM sessions WHERE user_id = '{}'",
                    user.id
                )
            ),
            Some(255),
            "cut before the character that crosses 256 bytes"
        );
    }
    let event = json!({
        "event_id": unique("mb"), "sensor_id": unique("s"), "observed_at": "2026-11-27T16:00:00+0é00",
        "event_type": "port_scan", "source_ip": "203.0.113.9",
    });
    let r = app.post_json(
        "/api/threats/events",
        &event,
        Some(&app.token(Role::Analyst)),
    );
    // Its only item is refused: the request is a 422 naming the field.
    let doc = r.assert_problem(422, "validation");
    assert_eq!(doc["errors"][0]["field"], "events[0].observed_at", "{doc}");
}

/// Before: `register_url` came from the request's `Host`, so whoever could
/// make an admin's request carry `Host: evil.example` (a proxy, a crafted
/// link) sent sensors to register there. Now it is `public_base_url`.
fn onboarding_tokens_name_the_configured_url_not_the_host(app: &TestApp) {
    let body = json!({"ttl_minutes": 5}).to_string();
    let head = format!(
        "POST /api/sensors/onboarding-tokens HTTP/1.1\r\nHost: evil.example\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        app.token(Role::Admin),
        body.len()
    );
    let (status, text) =
        vigil_e2e::client::send_early_answered(&app.base_url, &head, body.as_bytes()).unwrap();
    assert_eq!(status, 201, "{text}");
    assert!(
        text.contains(&format!(
            "\"register_url\":\"{}/api/sensors/register\"",
            vigil_e2e::TEST_PUBLIC_BASE_URL
        )),
        "{text}"
    );
    assert!(!text.contains("evil.example"), "{text}");
}

/// Every response, of every component and every kind (a document, a
/// problem, a 404, an OPTIONS), says `nosniff`, so a browser never sniffs a
/// JSON answer into a page. The suite's app is not behind HTTPS (no HSTS)
/// and allows no other origin: a preflight from one is refused.
fn every_response_says_nosniff_and_other_origins_are_refused(app: &TestApp) {
    let token = app.token(Role::Viewer);
    for (method, path, bearer) in [
        ("GET", "/api/auth/health", None),
        ("GET", "/api/decisions?limit=1", Some(&token)),
        ("GET", "/api/threats?limit=1", Some(&token)),
        ("GET", "/api/metrics/summary?range=24h", Some(&token)),
        ("GET", "/api/export/keys", None),
        ("GET", "/api/threats/no-such-route/x", None),
        ("GET", "/api/decisions", None),
        ("OPTIONS", "/api/decisions", None),
        ("GET", "/no-such-page", None),
    ] {
        let auth = bearer.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> =
            auth.iter().map(|a| ("authorization", a.as_str())).collect();
        let r = app.request(method, path, &headers, None);
        assert_eq!(
            r.header("x-content-type-options"),
            Some("nosniff"),
            "{method} {path}: {}",
            r.status
        );
        if path.starts_with("/api/") {
            assert_eq!(r.header("strict-transport-security"), None, "{path}");
        }
    }
    let r = app.request(
        "OPTIONS",
        "/api/decisions",
        &[
            ("origin", "https://evil.example"),
            ("access-control-request-method", "POST"),
        ],
        None,
    );
    r.assert_problem(403, "cors-origin-refused");
    assert_eq!(r.header("access-control-allow-origin"), None);
}
