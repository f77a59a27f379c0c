//! The decision queue end to end: idempotent submission, claim and approve
//! with ETags, the two-person rule, illegal and stale transitions, the safety
//! validator, ordering and pagination, overdue escalation, dismissal reasons.

use serde_json::{Value, json};
use vigil_core::Role;
use vigil_e2e::{Resp, TestApp, count, execute};

use crate::Case;

pub const CASES: &[Case] = &[
    ("submission_is_idempotent", submission_is_idempotent),
    (
        "a_plain_action_is_claimed_approved_and_executed",
        a_plain_action_is_claimed_approved_and_executed,
    ),
    (
        "dispatch_needs_a_second_different_approver",
        dispatch_needs_a_second_different_approver,
    ),
    (
        "illegal_and_stale_transitions_change_nothing",
        illegal_and_stale_transitions_change_nothing,
    ),
    (
        "the_safety_validator_refuses_unsafe_proposals",
        the_safety_validator_refuses_unsafe_proposals,
    ),
    (
        "the_queue_is_ordered_filtered_and_paginated",
        the_queue_is_ordered_filtered_and_paginated,
    ),
    (
        "overdue_decisions_escalate_to_supervisors",
        overdue_decisions_escalate_to_supervisors,
    ),
    ("dismissal_needs_a_reason", dismissal_needs_a_reason),
    (
        "concurrent_decisions_never_overwrite_each_other",
        concurrent_decisions_never_overwrite_each_other,
    ),
    (
        "stats_count_the_decisions_and_how_they_went",
        stats_count_the_decisions_and_how_they_went,
    ),
];

fn proposal(action: &str, level: &str) -> Value {
    json!({
        "source": "e2e-engine",
        "subject": {"kind": "alert", "id": vigil_core::id::new_id()},
        "proposed_action": action,
        "parameters": {"target": "203.0.113.7"},
        "threat_level": level,
        "confidence": 0.9,
        "summary": "Brute force from 203.0.113.7 against the SSH honeypot",
        "rationale": "412 failed logins in 3 minutes",
        "evidence": {"refs": ["event:1", "event:2"]}
    })
}

fn submit_as(app: &TestApp, role: Role, body: &Value, key: &str) -> Resp {
    let auth = format!("Bearer {}", app.token(role));
    let body = body.to_string();
    app.request(
        "POST",
        "/api/decisions",
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
            ("idempotency-key", key),
        ],
        Some(body.as_bytes()),
    )
}

/// Submit (as the admin, so analysts may approve) and return (id, etag).
fn submit(app: &TestApp, body: &Value) -> (String, String) {
    let r = submit_as(app, Role::Admin, body, &vigil_core::id::new_id());
    assert_eq!(r.status, 201, "{}", r.text());
    (
        r.json()["id"].as_str().unwrap().to_string(),
        r.header("etag").unwrap().to_string(),
    )
}

/// POST a command with If-Match; returns the response.
fn act(app: &TestApp, role: Role, id: &str, command: &str, etag: &str, body: Value) -> Resp {
    act_with(app, &app.token(role), id, command, etag, body)
}

fn act_with(app: &TestApp, bearer: &str, id: &str, command: &str, etag: &str, body: Value) -> Resp {
    let auth = format!("Bearer {bearer}");
    let body = body.to_string();
    app.request(
        "POST",
        &format!("/api/decisions/{id}/{command}"),
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
            ("if-match", etag),
        ],
        Some(body.as_bytes()),
    )
}

fn ok(r: &Resp) -> (Value, String) {
    assert_eq!(r.status, 200, "{}", r.text());
    (r.json(), r.header("etag").unwrap().to_string())
}

fn submission_is_idempotent(app: &TestApp) {
    let body = proposal("block_ip", "high");
    let key = vigil_core::id::new_id();
    let first = submit_as(app, Role::Analyst, &body, &key);
    assert_eq!(first.status, 201, "{}", first.text());
    let d = first.json();
    assert_eq!(d["status"], "pending");
    assert_eq!(d["priority"], "P2");
    assert_eq!(d["version"], 1);
    assert_eq!(first.header("etag"), Some("\"1\""));
    let retry = submit_as(app, Role::Analyst, &body, &key);
    assert_eq!(retry.status, 201);
    assert_eq!(retry.json()["id"], d["id"], "a retry returns the original");
    let other = submit_as(app, Role::Analyst, &proposal("notify", "low"), &key);
    other.assert_problem(409, "idempotency-key-reused");
    let auth = format!("Bearer {}", app.token(Role::Analyst));
    let no_key = app.request(
        "POST",
        "/api/decisions",
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
        ],
        Some(body.to_string().as_bytes()),
    );
    no_key.assert_problem(400, "idempotency-key-required");
    if app.db.is_some() {
        let q = format!(
            "SELECT count(*) FROM decisions WHERE id = '{}'",
            d["id"].as_str().unwrap()
        );
        assert_eq!(count(app, &q), Some(1));
    }
    submit_as(app, Role::Viewer, &body, &vigil_core::id::new_id()).assert_problem(403, "forbidden");
    // An engine submits with an API key scoped to submissions.
    let key = app.post_json_as(
        Role::Admin,
        "/api/auth/api-keys",
        &json!({"name": "engine", "kind": "service", "scopes": ["decisions:submit"]}),
    );
    let secret = key.json()["secret"].as_str().unwrap().to_string();
    let r = app.request(
        "POST",
        "/api/decisions",
        &[
            ("authorization", &format!("Bearer {secret}")),
            ("content-type", "application/json"),
            ("idempotency-key", "engine-1"),
        ],
        Some(body.to_string().as_bytes()),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert!(
        r.json()["submitted_by"]
            .as_str()
            .unwrap()
            .starts_with("key:")
    );
}

fn a_plain_action_is_claimed_approved_and_executed(app: &TestApp) {
    let (id, etag) = submit(app, &proposal("block_ip", "critical"));
    let (claimed, etag) = ok(&act(app, Role::Analyst, &id, "claim", &etag, json!({})));
    assert_eq!(claimed["status"], "claimed");
    assert_eq!(
        claimed["assignee"],
        vigil_e2e::test_principal(Role::Analyst).0
    );
    let (approved, etag) = ok(&act(
        app,
        Role::Analyst,
        &id,
        "approve",
        &etag,
        json!({"note": "confirmed in the SIEM"}),
    ));
    assert_eq!(approved["status"], "approved");

    // The executor is a service with an API key for outcomes only.
    let key = app.post_json_as(
        Role::Admin,
        "/api/auth/api-keys",
        &json!({"name": "executor", "kind": "service", "scopes": ["decisions:report_outcome"]}),
    );
    let secret = key.json()["secret"].as_str().unwrap().to_string();
    act(
        app,
        Role::Admin,
        &id,
        "outcome",
        &etag,
        json!({"result": "executed", "detail": "x"}),
    )
    .assert_problem(403, "forbidden");
    let (done, _) = ok(&act_with(
        app,
        &secret,
        &id,
        "outcome",
        &etag,
        json!({"result": "executed", "detail": "blocked on fw-1"}),
    ));
    assert_eq!(done["status"], "executed");
    assert_eq!(done["outcome_detail"], "blocked on fw-1");

    let r = app.get_as(Role::Viewer, &format!("/api/decisions/{id}"));
    assert_eq!(r.status, 200);
    let commands: Vec<_> = r.json()["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["command"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(commands, ["submit", "claim", "approve", "outcome"]);
    if app.db.is_some() {
        let audited = count(
            app,
            &format!(
                "SELECT count(*) FROM audit_log WHERE subject_kind = 'decision' AND subject_id = '{id}'"
            ),
        );
        assert_eq!(audited, Some(4));
        let events = count(
            app,
            &format!(
                "SELECT count(*) FROM events WHERE json_extract(payload, '$.decision.id') = '{id}' OR json_extract(payload, '$.id') = '{id}'"
            ),
        );
        assert_eq!(events, Some(4));
    }
}

fn dispatch_needs_a_second_different_approver(app: &TestApp) {
    let (id, etag) = submit(app, &proposal("dispatch", "critical"));
    let (_, etag) = ok(&act(app, Role::Supervisor, &id, "claim", &etag, json!({})));
    let (d, etag) = ok(&act(
        app,
        Role::Supervisor,
        &id,
        "approve",
        &etag,
        json!({}),
    ));
    assert_eq!(d["status"], "awaiting_second_approval");
    let same = act(
        app,
        Role::Supervisor,
        &id,
        "second-approval",
        &etag,
        json!({"approve": true}),
    );
    let doc = same.assert_problem(403, "not-allowed");
    assert!(
        doc["detail"].as_str().unwrap().contains("different"),
        "{doc}"
    );
    act(
        app,
        Role::Analyst,
        &id,
        "second-approval",
        &etag,
        json!({"approve": true}),
    )
    .assert_problem(403, "forbidden");
    let (d, _) = ok(&act(
        app,
        Role::Admin,
        &id,
        "second-approval",
        &etag,
        json!({"approve": true}),
    ));
    assert_eq!(d["status"], "authorized");
}

fn illegal_and_stale_transitions_change_nothing(app: &TestApp) {
    let (id, etag) = submit(app, &proposal("block_ip", "medium"));
    let doc = act(app, Role::Analyst, &id, "approve", &etag, json!({}))
        .assert_problem(409, "illegal-transition");
    assert!(doc["detail"].as_str().unwrap().contains("pending"), "{doc}");
    act(app, Role::Analyst, &id, "claim", "\"99\"", json!({}))
        .assert_problem(412, "precondition-failed");
    let auth = format!("Bearer {}", app.token(Role::Analyst));
    let no_if_match = app.request(
        "POST",
        &format!("/api/decisions/{id}/claim"),
        &[("authorization", &auth)],
        None,
    );
    no_if_match.assert_problem(428, "precondition-required");
    let (_, new_etag) = ok(&act(app, Role::Analyst, &id, "claim", &etag, json!({})));
    // A second analyst working from the old ETag cannot overwrite the claim.
    act(app, Role::Supervisor, &id, "claim", &etag, json!({}))
        .assert_problem(412, "precondition-failed");
    act(
        app,
        Role::Analyst,
        &id,
        "reject",
        &new_etag,
        json!({"note": ""}),
    )
    .assert_problem(422, "validation");
    act(
        app,
        Role::Analyst,
        &id,
        "reject",
        &new_etag,
        json!({"nope": 1}),
    )
    .assert_problem(422, "validation");
    let r = app.get_as(Role::Viewer, &format!("/api/decisions/{id}"));
    assert_eq!(r.json()["status"], "claimed");
    assert_eq!(r.header("etag"), Some(new_etag.as_str()));
    app.get_as(Role::Viewer, "/api/decisions/no-such-decision")
        .assert_problem(404, "not-found");
}

fn the_safety_validator_refuses_unsafe_proposals(app: &TestApp) {
    let mut low = proposal("block_ip", "high");
    low["confidence"] = json!(0.2);
    let doc = submit_as(app, Role::Admin, &low, &vigil_core::id::new_id())
        .assert_problem(422, "validation");
    assert_eq!(doc["errors"][0]["field"], "safety.confidence_floor");
    low["proposed_action"] = json!("monitor");
    assert_eq!(
        submit_as(app, Role::Admin, &low, &vigil_core::id::new_id()).status,
        201
    );

    let mut claim = proposal("notify", "high");
    claim["summary"] = json!("Visitor identified as the suspect from camera 4");
    let doc = submit_as(app, Role::Admin, &claim, &vigil_core::id::new_id())
        .assert_problem(422, "validation");
    assert_eq!(doc["errors"][0]["field"], "safety.identity_claim");
    claim["evidence"]["watchlist_match"] = json!(true);
    let (id, etag) = submit(app, &claim);
    let (_, etag) = ok(&act(app, Role::Analyst, &id, "claim", &etag, json!({})));
    let doc =
        act(app, Role::Analyst, &id, "approve", &etag, json!({})).assert_problem(422, "validation");
    assert_eq!(doc["errors"][0]["field"], "safety.identity_claim_approver");

    let mut bad = proposal("block_ip", "high");
    bad["confidence"] = json!(1.5);
    bad["summary"] = json!("");
    let doc = submit_as(app, Role::Admin, &bad, &vigil_core::id::new_id())
        .assert_problem(422, "validation");
    let fields: Vec<_> = doc["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap().to_string())
        .collect();
    assert!(
        fields.contains(&"confidence".to_string()) && fields.contains(&"summary".to_string()),
        "{doc}"
    );
}

fn the_queue_is_ordered_filtered_and_paginated(app: &TestApp) {
    let source = format!("engine-{}", &vigil_core::id::new_id()[..8]);
    for level in ["low", "critical", "medium"] {
        let mut p = proposal("monitor", level);
        p["source"] = json!(source);
        submit(app, &p);
    }
    let page = |q: &str| {
        app.get_as(Role::Viewer, &format!("/api/decisions?source={source}{q}"))
            .json()
    };
    let all = page("");
    let priorities: Vec<_> = all["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["priority"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(priorities, ["P1", "P3", "P4"]);
    let first = page("&limit=2");
    assert_eq!(first["decisions"].as_array().unwrap().len(), 2);
    let cursor = first["next_cursor"].as_str().unwrap().to_string();
    let second = page(&format!("&limit=2&cursor={cursor}"));
    assert_eq!(second["decisions"][0]["priority"], "P4");
    assert!(second["next_cursor"].is_null());
    assert_eq!(
        page("&priority=P1")["decisions"].as_array().unwrap().len(),
        1
    );
    for bad in ["&priority=P9", "&status=lost", "&limit=0", "&overdue=maybe"] {
        let r = app.get_as(
            Role::Viewer,
            &format!("/api/decisions?source={source}{bad}"),
        );
        r.assert_problem(422, "validation");
    }
    let r = app.get_as(
        Role::Viewer,
        &format!("/api/decisions?source={source}&cursor=bm90LWEtY3Vyc29y"),
    );
    r.assert_problem(400, "bad-request");
}

fn overdue_decisions_escalate_to_supervisors(app: &TestApp) {
    app.needs_own_app(); // Making one overdue takes the database.
    let (id, etag) = submit(app, &proposal("block_ip", "critical"));
    execute(
        app,
        &format!("UPDATE decisions SET sla_deadline = sla_deadline - 3600000 WHERE id = '{id}'"),
    );
    assert_eq!(
        app.get_as(Role::Viewer, &format!("/api/decisions/{id}"))
            .json()["overdue"],
        true
    );
    app.post_json_as(Role::Analyst, "/api/decisions/escalate-overdue", &json!({}))
        .assert_problem(403, "forbidden");
    let r = app.post_json_as(
        Role::Supervisor,
        "/api/decisions/escalate-overdue",
        &json!({}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.json()["escalated"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e == id.as_str())
    );
    let d = app.get_as(Role::Viewer, &format!("/api/decisions/{id}"));
    assert_eq!(d.json()["status"], "escalated");
    let etag_now = d.header("etag").unwrap().to_string();
    assert_ne!(etag_now, etag);
    act(app, Role::Analyst, &id, "claim", &etag_now, json!({})).assert_problem(403, "not-allowed");
    let (claimed, _) = ok(&act(
        app,
        Role::Supervisor,
        &id,
        "claim",
        &etag_now,
        json!({}),
    ));
    assert_eq!(claimed["status"], "claimed");
}

fn dismissal_needs_a_reason(app: &TestApp) {
    let (id, etag) = submit(app, &proposal("block_ip", "low"));
    let (_, etag) = ok(&act(app, Role::Analyst, &id, "claim", &etag, json!({})));
    act(app, Role::Analyst, &id, "dismiss", &etag, json!({})).assert_problem(422, "validation");
    act(
        app,
        Role::Analyst,
        &id,
        "dismiss",
        &etag,
        json!({"reason": "aliens"}),
    )
    .assert_problem(422, "validation");
    let doc = act(
        app,
        Role::Analyst,
        &id,
        "dismiss",
        &etag,
        json!({"reason": "unknown"}),
    )
    .assert_problem(422, "validation");
    assert_eq!(doc["errors"][0]["field"], "note");
    let (d, _) = ok(&act(
        app,
        Role::Analyst,
        &id,
        "dismiss",
        &etag,
        json!({"reason": "weather", "note": "storm"}),
    ));
    assert_eq!(d["status"], "dismissed");
    let history = app
        .get_as(Role::Viewer, &format!("/api/decisions/{id}"))
        .json();
    assert_eq!(history["history"][2]["reason"], "weather");
}

pub fn stats_count_the_decisions_and_how_they_went(app: &TestApp) {
    let (id, etag) = submit(app, &proposal("block_ip", "high"));
    let (_, etag) = ok(&act(app, Role::Analyst, &id, "claim", &etag, json!({})));
    ok(&act(
        app,
        Role::Analyst,
        &id,
        "dismiss",
        &etag,
        json!({"reason": "duplicate"}),
    ));
    let r = app.get_as(Role::Viewer, "/api/decisions/stats?range=24h");
    assert_eq!(r.status, 200, "{}", r.text());
    let s = r.json();
    assert_eq!(s["range"], "24h");
    assert!(s["submitted"].as_i64().unwrap() >= 1);
    assert!(s["dismissed_by_reason"]["duplicate"].as_i64().unwrap() >= 1);
    let analyst = vigil_e2e::test_principal(Role::Analyst).0;
    assert!(
        s["by_analyst"][analyst.as_str()]["dismissed"]
            .as_i64()
            .unwrap()
            >= 1,
        "{s}"
    );
    assert!(s["time_to_decision"]["count"].as_i64().unwrap() >= 1);
    assert!(
        s["time_to_decision_by_priority"]["P2"]["median_seconds"]
            .as_f64()
            .unwrap()
            >= 0.0
    );
    let rate = s["sla_breach_rate"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&rate));
    assert!(s["queue_depth"].is_object());
    app.get_as(Role::Viewer, "/api/decisions/stats?range=1y")
        .assert_problem(422, "validation");
    app.get("/api/decisions/stats")
        .assert_problem(401, "unauthenticated");
}

/// Two analysts decide the same decision at the same moment from the same
/// ETag: exactly one wins, the other is told (412 or 409), nothing is lost.
pub fn concurrent_decisions_never_overwrite_each_other(app: &TestApp) {
    for _ in 0..5 {
        let (id, etag) = submit(app, &proposal("block_ip", "high"));
        let results: Vec<u16> = std::thread::scope(|s| {
            let racers: Vec<_> = [Role::Analyst, Role::Supervisor]
                .into_iter()
                .map(|role| {
                    let (id, etag) = (&id, &etag);
                    s.spawn(move || act(app, role, id, "claim", etag, json!({})).status)
                })
                .collect();
            racers.into_iter().map(|r| r.join().unwrap()).collect()
        });
        let winners = results.iter().filter(|s| **s == 200).count();
        assert_eq!(winners, 1, "{results:?}");
        assert!(
            results.iter().all(|s| [200, 409, 412].contains(s)),
            "{results:?}"
        );
        let history = app
            .get_as(Role::Viewer, &format!("/api/decisions/{id}"))
            .json();
        assert_eq!(
            history["history"].as_array().unwrap().len(),
            2,
            "submit and one claim: {history}"
        );
        assert_eq!(history["version"], 2);
    }
}
