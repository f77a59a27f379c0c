//! Sensor events in, alerts out: a batch with valid, duplicate and invalid
//! items; a flood grouped into one alert; sensor keys only for their sensor;
//! reading threats back with their score breakdown.

use serde_json::{Value, json};
use vigil_core::Role;
use vigil_e2e::{Resp, TestApp, just_now, unique};

use crate::Case;

pub const CASES: &[Case] = &[
    (
        "a_batch_accepts_valid_items_and_explains_the_rest",
        a_batch_accepts_valid_items_and_explains_the_rest,
    ),
    (
        "a_flood_becomes_one_alert_with_a_count",
        a_flood_becomes_one_alert_with_a_count,
    ),
    (
        "a_sensor_key_speaks_only_for_its_sensor",
        a_sensor_key_speaks_only_for_its_sensor,
    ),
    (
        "threats_are_filtered_and_paginated",
        threats_are_filtered_and_paginated,
    ),
    (
        "json_nested_to_the_parsers_limit_is_answered_not_a_crash",
        json_nested_to_the_parsers_limit_is_answered_not_a_crash,
    ),
];

fn event(sensor: &str, id: &str, kind: &str, source: &str) -> Value {
    json!({
        "event_id": id, "sensor_id": sensor, "observed_at": just_now(), "event_type": kind,
        "source_ip": source, "dest_ip": "10.20.1.5", "dest_port": 502, "protocol": "tcp",
        "severity_hint": "high", "payload": {"note": "e2e"}
    })
}

fn post(app: &TestApp, bearer: &str, body: &Value) -> Resp {
    app.post_json("/api/threats/events", body, Some(bearer))
}

fn a_batch_accepts_valid_items_and_explains_the_rest(app: &TestApp) {
    let token = app.token(Role::Analyst);
    let stored_after = vigil_core::time::now_millis();
    let sensor = unique("hp");
    let mut bad = event(&sensor, "e-3", "port_scan", "not-an-ip");
    bad["observed_at"] = json!("2099-01-01T00:00:00Z");
    let body = json!({"events": [
        event(&sensor, "e-1", "exploit_attempt", "198.51.100.7"),
        event(&sensor, "e-1", "exploit_attempt", "198.51.100.7"),
        bad,
        {"event_id": "e-4", "sensor_id": sensor, "observed_at": just_now(), "event_type": "alien_probe", "source_ip": "8.8.8.8"},
        event(&sensor, "e-5", "port_scan", "2001:db8::9"),
    ]});
    let r = post(app, &token, &body);
    assert_eq!(r.status, 200, "{}", r.text());
    let out = r.json();
    let accepted: Vec<_> = out["accepted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["index"].as_u64().unwrap())
        .collect();
    assert_eq!(accepted, [0, 4]);
    assert_eq!(out["duplicates"][0]["index"], 1);
    let rejected = out["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 2);
    let fields: Vec<_> = rejected[0]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap().to_string())
        .collect();
    assert!(
        fields.contains(&"events[2].source_ip".to_string())
            && fields.contains(&"events[2].observed_at".to_string()),
        "{fields:?}"
    );
    assert_eq!(rejected[1]["errors"][0]["field"], "events[3].event_type");

    // A retry of the same batch stores nothing twice.
    let again = post(app, &token, &body).json();
    assert_eq!(again["accepted"].as_array().unwrap().len(), 0);
    assert_eq!(again["duplicates"].as_array().unwrap().len(), 3);

    let id = out["accepted"][0]["id"].as_str().unwrap();
    let t = app.get_as(Role::Viewer, &format!("/api/threats/{id}"));
    assert_eq!(t.status, 200, "{}", t.text());
    let t = t.json();
    assert_eq!(t["technique"], "T1190");
    // When Vigil stored it, besides when the sensor saw it.
    let received = vigil_core::time::parse_rfc3339(t["received_at"].as_str().unwrap());
    assert!(received.is_some_and(|at| at >= stored_after), "{t}");
    assert_eq!(t["dest_zone"], "ot");
    assert_eq!(t["source_class"], "reserved");
    let sum: f64 = t["breakdown"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["points"].as_f64().unwrap())
        .sum();
    assert_eq!(sum.round() as i64, t["score"].as_i64().unwrap(), "{t}");
    // Only bad items: 422; too many: 413; not JSON: 400.
    post(app, &token, &json!({"events": [{"event_id": "x"}]})).assert_problem(422, "validation");
    let many: Vec<Value> = (0..1001).map(|i| json!({"event_id": i})).collect();
    post(app, &token, &json!({"events": many})).assert_problem(413, "payload-too-large");
    let auth = format!("Bearer {token}");
    app.request(
        "POST",
        "/api/threats/events",
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
        ],
        Some(b"[{"),
    )
    .assert_problem(400, "malformed-json");
    app.post_json("/api/threats/events", &body, Some(&app.token(Role::Viewer)))
        .assert_problem(403, "forbidden");
}

/// The components run on a 256 KiB stack (`components/stack_size.rs`); the
/// deepest a request goes is serde_json's nesting limit (128). A payload
/// nested just inside it is parsed, one past it is a 400, and neither traps.
fn json_nested_to_the_parsers_limit_is_answered_not_a_crash(app: &TestApp) {
    let auth = format!("Bearer {}", app.token(Role::Analyst));
    let sensor = unique("deep");
    let body = |depth: usize, id: &str| {
        let mut item = event(&sensor, id, "port_scan", "198.51.100.9");
        item["payload"] = json!({"deep": "PAYLOAD"});
        // `{"events":[{"payload":{"deep": …}}]}`: four levels before the nesting.
        let nested = format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
        json!({ "events": [item] })
            .to_string()
            .replace("\"PAYLOAD\"", &nested)
    };
    let post_raw = |body: String| {
        app.request(
            "POST",
            "/api/threats/events",
            &[
                ("authorization", &auth),
                ("content-type", "application/json"),
            ],
            Some(body.as_bytes()),
        )
    };
    let r = post_raw(body(128 - 5, "deep-1"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["accepted"].as_array().map(Vec::len),
        Some(1),
        "{}",
        r.text()
    );
    post_raw(body(128 - 4, "deep-2")).assert_problem(400, "malformed-json");
    post_raw(body(100_000, "deep-3")).assert_problem(400, "malformed-json");
}

fn a_flood_becomes_one_alert_with_a_count(app: &TestApp) {
    let token = app.token(Role::Analyst);
    let sensor = unique("ids");
    let events: Vec<Value> = (0..20)
        .map(|i| {
            event(
                &sensor,
                &format!("f-{i}"),
                "exploit_attempt",
                "198.51.100.66",
            )
        })
        .collect();
    let out = post(app, &token, &json!({"events": events})).json();
    let alerts: std::collections::BTreeSet<_> = out["accepted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["alert_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(alerts.len(), 1, "{out}");
    let alert_id = alerts.into_iter().next().unwrap();
    let a = app
        .get_as(Role::Viewer, &format!("/api/alerts/{alert_id}"))
        .json();
    assert_eq!(a["event_count"], 20);
    assert_eq!(a["status"], "open");
    assert_eq!(a["events"].as_array().unwrap().len(), 20);
    let listed = app.get_as(Role::Viewer, "/api/alerts?status=open").json();
    assert!(
        listed["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["id"] == alert_id.as_str())
    );
    // Low-severity events raise no alert.
    let quiet = post(app, &token, &json!({"events": [{"event_id": "q", "sensor_id": sensor, "observed_at": just_now(), "event_type": "http_probe", "source_ip": "198.51.100.67"}]})).json();
    assert!(quiet["accepted"][0]["alert_id"].is_null());
    app.get_as(Role::Viewer, "/api/alerts?status=lost")
        .assert_problem(422, "validation");
}

fn a_sensor_key_speaks_only_for_its_sensor(app: &TestApp) {
    let sensor = unique("wifi");
    let key = app.post_json_as(Role::Admin, "/api/auth/api-keys", &json!({"name": sensor, "kind": "sensor", "sensor_id": sensor, "scopes": ["sensors:ingest"]}));
    let secret = key.json()["secret"].as_str().unwrap().to_string();
    let mine = post(
        app,
        &secret,
        &json!(event(&sensor, "k-1", "wifi_deauth", "192.168.1.50")),
    );
    assert_eq!(mine.status, 200, "{}", mine.text());
    let theirs = post(
        app,
        &secret,
        &json!({"events": [event(&sensor, "k-2", "wifi_deauth", "192.168.1.50"), event("someone-else", "k-3", "wifi_deauth", "192.168.1.50")]}),
    );
    theirs.assert_problem(403, "forbidden");
    let stored = app
        .get_as(Role::Viewer, &format!("/api/threats?sensor_id={sensor}"))
        .json();
    assert_eq!(
        stored["threats"].as_array().unwrap().len(),
        1,
        "nothing of a refused batch is stored"
    );
    app.with_bearer("GET", "/api/threats", &secret)
        .assert_problem(403, "forbidden");
}

fn threats_are_filtered_and_paginated(app: &TestApp) {
    let token = app.token(Role::Analyst);
    let sensor = unique("pg");
    let events: Vec<Value> = (0..5)
        .map(|i| event(&sensor, &format!("p-{i}"), "port_scan", "198.51.100.80"))
        .collect();
    post(app, &token, &json!({"events": events}));
    let page = |q: &str| app.get_as(Role::Viewer, &format!("/api/threats?sensor_id={sensor}{q}"));
    let first = page("&limit=2").json();
    assert_eq!(first["threats"].as_array().unwrap().len(), 2);
    let cursor = first["next_cursor"].as_str().unwrap().to_string();
    let second = page(&format!("&limit=2&cursor={cursor}")).json();
    assert_eq!(second["threats"].as_array().unwrap().len(), 2);
    assert_ne!(first["threats"][0]["id"], second["threats"][0]["id"]);
    assert_eq!(
        page("&event_type=port_scan&technique=T1046").json()["threats"]
            .as_array()
            .unwrap()
            .len(),
        5
    );
    assert_eq!(
        page("&event_type=brute_force").json()["threats"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    page("&cursor=bm9wZQ").assert_problem(400, "bad-request");
    page("&since=yesterday").assert_problem(422, "validation");
    page("&severity=apocalyptic").assert_problem(422, "validation");
    app.get_as(Role::Viewer, "/api/threats/no-such-event")
        .assert_problem(404, "not-found");
}
