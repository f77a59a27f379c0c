//! Playbooks: an alert that matches a playbook's trigger runs it (in the
//! relay's `playbooks` job, which the suite's relay runs); actions
//! that change systems open decisions instead of acting; webhooks reach the
//! configured origin and their failures are recorded; bad playbooks are
//! refused field by field. Each case deletes its playbooks, so they never
//! answer another case's alerts.

use serde_json::{Value, json};
use vigil_core::Role;
use vigil_e2e::{TestApp, count, unique};

use crate::Case;

pub const CASES: &[Case] = &[
    (
        "a_playbook_requiring_approval_opens_a_decision",
        a_playbook_requiring_approval_opens_a_decision,
    ),
    (
        "a_failed_webhook_is_recorded_not_hidden",
        a_failed_webhook_is_recorded_not_hidden,
    ),
    (
        "bad_playbooks_are_refused_field_by_field",
        bad_playbooks_are_refused_field_by_field,
    ),
];

/// A critical USB keystroke-injection event (no other case uses the type,
/// so only this module's playbooks answer it).
fn usb_event(sensor: &str, id: &str, source: &str) -> Value {
    json!({
        "event_id": id, "sensor_id": sensor,
        "observed_at": vigil_core::time::rfc3339(vigil_core::time::now_millis() - 1000),
        "event_type": "usb_hid_injection", "source_ip": source, "dest_ip": "10.20.3.3",
        "severity_hint": "critical", "payload": {"username": "ops-admin"}
    })
}

fn origin(app: &TestApp) -> String {
    app.webhooks
        .as_ref()
        .map(|w| w.origin.clone())
        .unwrap_or_else(|| "https://webhooks.invalid".into())
}

fn create(app: &TestApp, spec: &Value) -> Value {
    let r = app.send_as(Role::Supervisor, "POST", "/api/playbooks", &[], Some(spec));
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()
}

fn delete(app: &TestApp, id: &str) {
    let r = app.send_as(
        Role::Supervisor,
        "DELETE",
        &format!("/api/playbooks/{id}"),
        &[],
        None,
    );
    assert_eq!(r.status, 204, "{}", r.text());
}

/// Wait until the relay's playbooks job has answered every outbox event so
/// far (with the database at hand; otherwise a short pause).
fn playbooks_caught_up(app: &TestApp) {
    if app.db.is_none() {
        std::thread::sleep(std::time::Duration::from_secs(2));
        return;
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while count(
        app,
        "SELECT (SELECT position FROM job_leases WHERE job = 'playbooks') >= (SELECT max(id) FROM events)",
    ) != Some(1)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the relay's playbooks job did not catch up: {}",
            app.relay_logs()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

fn executions_for(app: &TestApp, alert: &str) -> Vec<Value> {
    let r = app.get_as(
        Role::Viewer,
        &format!("/api/playbooks/executions?alert_id={alert}"),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["executions"].as_array().unwrap().clone()
}

fn a_playbook_requiring_approval_opens_a_decision(app: &TestApp) {
    let hook = format!("/hooks/{}", unique("soc"));
    let playbook = create(
        app,
        &json!({
            "name": unique("usb-injection"),
            "trigger": {"event_types": ["usb_hid_injection"], "min_severity": "high", "techniques": ["T1200"]},
            "actions": [
                {"kind": "isolate_host", "requires_approval": true},
                {"kind": "disable_account", "requires_approval": true},
                {"kind": "notify_webhook", "url": format!("{}{hook}", origin(app))},
            ],
        }),
    );
    let id = playbook["id"].as_str().unwrap().to_string();

    // The alert the event opens runs the playbook, in the relay.
    let sensor = unique("usb");
    let r = app.post_json(
        "/api/threats/events",
        &usb_event(&sensor, "u-1", "10.9.9.9"),
        Some(&app.token(Role::Analyst)),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let alert = r.json()["accepted"][0]["alert_id"]
        .as_str()
        .unwrap()
        .to_string();
    playbooks_caught_up(app);
    let runs = executions_for(app, &alert);
    assert_eq!(runs.len(), 1, "{runs:?}");
    let run = &runs[0];
    assert_eq!(run["mode"], "automatic");
    assert_eq!(run["playbook_id"], id.as_str());
    assert_eq!(run["status"], "completed", "{run}");
    let outcomes = run["outcomes"].as_array().unwrap();
    assert_eq!(outcomes[0]["outcome"], "decision_opened");
    assert_eq!(outcomes[0]["target"], "10.20.3.3");
    assert_eq!(outcomes[1]["target"], "ops-admin");
    if let Some(webhooks) = &app.webhooks {
        assert_eq!(outcomes[2]["outcome"], "sent", "{run}");
        let delivered = webhooks.deliveries();
        let mine: Vec<_> = delivered.iter().filter(|d| d.path == hook).collect();
        assert_eq!(mine.len(), 1);
        let body: Value = serde_json::from_str(&mine[0].body).unwrap();
        // Signed with the shared secret over the exact body, with its time.
        let signature = mine[0].signature.clone().expect("a signed webhook");
        let t: i64 = signature[2..signature.find(',').unwrap()].parse().unwrap();
        assert_eq!(
            signature,
            vigil_ingest::playbook::webhook_signature(
                vigil_e2e::TEST_WEBHOOK_SECRET,
                t,
                mine[0].body.as_bytes()
            )
        );
        assert!((vigil_core::time::now_millis() / 1000 - t).abs() < 300);
        assert_eq!(body["alert"]["id"], alert.as_str());
        assert_eq!(body["execution_id"], run["id"]);
    }

    // The decision waits in the queue for a person, about the alert.
    let decision_id = outcomes[0]["decision_id"].as_str().unwrap();
    let d = app.get_as(Role::Viewer, &format!("/api/decisions/{decision_id}"));
    assert_eq!(d.status, 200, "{}", d.text());
    let d = d.json();
    assert_eq!(d["status"], "pending");
    assert_eq!(d["proposed_action"], "isolate_host");
    assert_eq!(d["subject"], json!({"kind": "alert", "id": alert}));
    assert_eq!(d["parameters"]["target"], "10.20.3.3");
    assert_eq!(d["threat_level"], "critical");
    assert_eq!(d["priority"], "P1");

    // A second event of the same group updates the alert; it does not run again.
    app.post_json(
        "/api/threats/events",
        &usb_event(&sensor, "u-2", "10.9.9.9"),
        Some(&app.token(Role::Analyst)),
    );
    playbooks_caught_up(app);
    assert_eq!(executions_for(app, &alert).len(), 1);

    // By hand: an analyst runs it against the alert.
    let path = format!("/api/playbooks/{id}/execute");
    app.send_as(
        Role::Viewer,
        "POST",
        &path,
        &[],
        Some(&json!({"alert_id": alert})),
    )
    .assert_problem(403, "forbidden");
    app.send_as(
        Role::Analyst,
        "POST",
        &path,
        &[],
        Some(&json!({"alert_id": "no-such-alert"})),
    )
    .assert_problem(422, "validation");
    let r = app.send_as(
        Role::Analyst,
        "POST",
        &path,
        &[],
        Some(&json!({"alert_id": alert})),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["mode"], "manual");
    assert_eq!(
        r.json()["started_by"],
        app.claims(Role::Analyst).sub.as_str()
    );
    assert_eq!(executions_for(app, &alert).len(), 2);
    let page = app
        .get_as(
            Role::Viewer,
            &format!("/api/playbooks/executions?playbook_id={id}&limit=1"),
        )
        .json();
    assert_eq!(page["executions"].as_array().unwrap().len(), 1);
    assert!(page["next_cursor"].is_string());
    delete(app, &id);
}

fn a_failed_webhook_is_recorded_not_hidden(app: &TestApp) {
    let playbook = create(
        app,
        &json!({
            "name": unique("notify-fail"),
            "enabled": false,
            "trigger": {"min_severity": "critical"},
            "actions": [{"kind": "notify_webhook", "url": format!("{}/hooks/fail", origin(app))},
                        {"kind": "open_decision", "proposed_action": "monitor"}],
        }),
    );
    let id = playbook["id"].as_str().unwrap().to_string();
    // Disabled: the alert does not run it.
    let r = app.post_json(
        "/api/threats/events",
        &usb_event(&unique("usb"), "f-1", "10.8.8.8"),
        Some(&app.token(Role::Analyst)),
    );
    let alert = r.json()["accepted"][0]["alert_id"]
        .as_str()
        .unwrap()
        .to_string();
    playbooks_caught_up(app);
    assert!(
        executions_for(app, &alert)
            .iter()
            .all(|e| e["playbook_id"] != id.as_str())
    );
    let r = app.send_as(
        Role::Analyst,
        "POST",
        &format!("/api/playbooks/{id}/execute"),
        &[],
        Some(&json!({"alert_id": alert})),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let run = r.json();
    assert_eq!(run["status"], "completed_with_errors");
    assert_eq!(run["outcomes"][0]["outcome"], "failed");
    if app.webhooks.is_some() {
        assert_eq!(run["outcomes"][0]["detail"], "HTTP 500");
    }
    assert_eq!(
        run["outcomes"][1]["outcome"], "decision_opened",
        "the other actions still run"
    );
    delete(app, &id);
}

fn bad_playbooks_are_refused_field_by_field(app: &TestApp) {
    let name = unique("bad");
    let spec = json!({
        "name": name,
        "trigger": {"techniques": ["T12"]},
        "actions": [{"kind": "block_ip"}, {"kind": "notify_webhook", "url": "https://elsewhere.example/x"}],
    });
    let r = app
        .send_as(Role::Supervisor, "POST", "/api/playbooks", &[], Some(&spec))
        .assert_problem(422, "validation");
    let fields: Vec<&str> = r["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "trigger.techniques[0]",
            "actions[0].requires_approval",
            "actions[1].url"
        ]
    );
    let empty = json!({"name": name, "trigger": {}, "actions": [{"kind": "open_decision"}]});
    let r = app
        .send_as(
            Role::Supervisor,
            "POST",
            "/api/playbooks",
            &[],
            Some(&empty),
        )
        .assert_problem(422, "validation");
    assert_eq!(r["errors"][0]["field"], "trigger");
    app.send_as(Role::Supervisor, "POST", "/api/playbooks", &[], Some(&json!({"name": name, "trigger": {"min_severity": "high"}, "actions": [{"kind": "launch_missiles"}]})))
        .assert_problem(422, "validation");
    app.send_as(Role::Analyst, "POST", "/api/playbooks", &[], Some(&empty))
        .assert_problem(403, "forbidden");
    let listed = app.get_as(Role::Viewer, "/api/playbooks").json();
    assert!(!listed.to_string().contains(&name), "nothing was stored");

    // Names are unique; PUT replaces with If-Match.
    let good = json!({"name": name, "enabled": false, "trigger": {"zones": ["ot"]}, "actions": [{"kind": "block_ip", "requires_approval": true}]});
    let created = create(app, &good);
    let id = created["id"].as_str().unwrap();
    app.send_as(Role::Supervisor, "POST", "/api/playbooks", &[], Some(&good))
        .assert_problem(409, "conflict");
    let path = format!("/api/playbooks/{id}");
    let mut changed = good.clone();
    changed["description"] = json!("Block sources that reach OT");
    app.send_as(Role::Supervisor, "PUT", &path, &[], Some(&changed))
        .assert_problem(428, "precondition-required");
    app.send_as(
        Role::Supervisor,
        "PUT",
        &path,
        &[("if-match", "\"9\"")],
        Some(&changed),
    )
    .assert_problem(412, "precondition-failed");
    let r = app.send_as(
        Role::Supervisor,
        "PUT",
        &path,
        &[("if-match", "\"1\"")],
        Some(&changed),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["version"], 2);
    assert_eq!(
        app.get_as(Role::Viewer, &path).json()["description"],
        "Block sources that reach OT"
    );
    delete(app, id);
    app.get_as(Role::Viewer, &path)
        .assert_problem(404, "not-found");
    app.get_as(Role::Viewer, "/api/playbooks/executions?cursor=bm9wZQ")
        .assert_problem(400, "bad-request");
}
