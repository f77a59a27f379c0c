//! The sensor registry: onboarding token → register → heartbeat → status;
//! the registry's changes with If-Match; deleting a sensor revokes its key;
//! per-sensor stats; GeoIP of public sources.

use serde_json::{Value, json};
use vigil_core::Role;
use vigil_e2e::{Resp, TestApp, count, execute, just_now, unique};

use crate::Case;

pub const CASES: &[Case] = &[
    (
        "onboarding_register_heartbeat_and_status",
        onboarding_register_heartbeat_and_status,
    ),
    (
        "the_registry_changes_with_if_match_and_deleting_revokes_keys",
        the_registry_changes_with_if_match_and_deleting_revokes_keys,
    ),
    (
        "public_sources_get_country_and_asn",
        public_sources_get_country_and_asn,
    ),
    (
        "alerts_are_filtered_and_paginated",
        alerts_are_filtered_and_paginated,
    ),
];

fn event(sensor: &str, id: &str, kind: &str, source: &str) -> Value {
    json!({
        "event_id": id, "sensor_id": sensor, "observed_at": just_now(), "event_type": kind,
        "source_ip": source, "dest_ip": "10.20.1.5", "severity_hint": "critical", "payload": {}
    })
}

fn register(app: &TestApp, token: &str, name: &str) -> Resp {
    let body = json!({"token": token, "name": name, "kind": "honeypot", "location": "rack 4"});
    app.post_json("/api/sensors/register", &body, None)
}

fn onboarding_register_heartbeat_and_status(app: &TestApp) {
    // Only admins make onboarding tokens.
    app.post_json_as(
        Role::Supervisor,
        "/api/sensors/onboarding-tokens",
        &json!({}),
    )
    .assert_problem(403, "forbidden");
    app.post_json_as(
        Role::Admin,
        "/api/sensors/onboarding-tokens",
        &json!({"ttl_minutes": 1}),
    )
    .assert_problem(422, "validation");
    let r = app.post_json_as(
        Role::Admin,
        "/api/sensors/onboarding-tokens",
        &json!({"ttl_minutes": 30, "note": "edge honeypot"}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let issued = r.json();
    let token = issued["token"].as_str().unwrap().to_string();
    assert!(issued["qr_svg"].as_str().unwrap().contains("<svg"));
    assert!(
        issued["register_url"]
            .as_str()
            .unwrap()
            .ends_with("/api/sensors/register")
    );

    // Register once: the sensor, and its key, shown this one time.
    register(app, "vot_not-a-token", "x").assert_problem(401, "invalid-onboarding-token");
    let r = register(app, &token, "Edge honeypot");
    assert_eq!(r.status, 201, "{}", r.text());
    let registered = r.json();
    let sensor = registered["sensor"]["id"].as_str().unwrap().to_string();
    let key = registered["api_key"].as_str().unwrap().to_string();
    assert!(key.starts_with("vgk_"));
    assert_eq!(
        registered["sensor"]["status"], "offline",
        "never heard from"
    );
    register(app, &token, "Again").assert_problem(410, "onboarding-token-spent");

    // Admins see what became of their tokens (never the tokens), and revoke unused ones.
    let listed = app.get_as(Role::Admin, "/api/sensors/onboarding-tokens");
    assert_eq!(listed.status, 200, "{}", listed.text());
    assert!(!listed.text().contains(&token), "tokens are shown once");
    let mine = listed.json()["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == issued["id"])
        .cloned()
        .unwrap();
    assert_eq!(
        (mine["state"].as_str(), mine["sensor_id"].as_str()),
        (Some("used"), Some(sensor.as_str()))
    );
    let revoke = |id: &str| {
        app.send(
            "DELETE",
            &format!("/api/sensors/onboarding-tokens/{id}"),
            &app.token(Role::Admin),
            &[],
            None,
        )
    };
    revoke(issued["id"].as_str().unwrap()).assert_problem(409, "conflict");
    let spare = app
        .post_json_as(Role::Admin, "/api/sensors/onboarding-tokens", &json!({}))
        .json();
    assert_eq!(revoke(spare["id"].as_str().unwrap()).status, 204);
    register(app, spare["token"].as_str().unwrap(), "Spare")
        .assert_problem(410, "onboarding-token-spent");
    revoke("no-such-token").assert_problem(404, "not-found");
    app.get_as(Role::Supervisor, "/api/sensors/onboarding-tokens")
        .assert_problem(403, "forbidden");

    // A heartbeat from its own key brings it online, and says so once.
    let path = format!("/api/sensors/{sensor}/heartbeat");
    let beat = json!({"version": "2.4.1", "uptime_seconds": 3600, "metrics": {"queue": 3}});
    let r = app.send("POST", &path, &key, &[], Some(&beat));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["status"], "online");
    assert_eq!(r.json()["heartbeat"]["version"], "2.4.1");
    app.send("POST", &path, &key, &[], None);
    let published = format!(
        "SELECT count(*) FROM events WHERE type = 'sensor.status' AND json_extract(payload, '$.id') = '{sensor}'"
    );
    if let Some(n) = count(app, &published) {
        assert_eq!(n, 1, "only the change to online is published");
    }
    // Nobody else sends its heartbeats; bad bodies change nothing.
    app.send(
        "POST",
        &path,
        &app.token(Role::Analyst),
        &[],
        Some(&json!({})),
    )
    .assert_problem(403, "forbidden");
    app.send("POST", &path, &key, &[], Some(&json!({"temperature": 3})))
        .assert_problem(422, "validation");
    app.send(
        "POST",
        "/api/sensors/no-such-sensor/heartbeat",
        &key,
        &[],
        None,
    )
    .assert_problem(404, "not-found");

    // Its key posts its events; stats count them.
    let r = app.post_json(
        "/api/threats/events",
        &event(&sensor, "s-1", "ssh_session", "192.168.7.7"),
        Some(&key),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let stats = app.get_as(
        Role::Viewer,
        &format!("/api/sensors/{sensor}/stats?range=24h"),
    );
    assert_eq!(stats.status, 200, "{}", stats.text());
    let stats = stats.json();
    assert_eq!(stats["total"], 1);
    assert_eq!(stats["by_type"]["ssh_session"], 1);
    assert_eq!(stats["status"], "online");
    assert!(stats["last_event_at"].is_string());
    app.get_as(
        Role::Viewer,
        &format!("/api/sensors/{sensor}/stats?range=forever"),
    )
    .assert_problem(422, "validation");

    // Status follows the heartbeat's age (stale after 2 min, offline after 10).
    if app.db.is_some() {
        let ago = vigil_core::time::now_millis() - 5 * 60 * 1000;
        execute(
            app,
            &format!("UPDATE sensors SET last_heartbeat = {ago} WHERE id = '{sensor}'"),
        );
        let s = app
            .get_as(Role::Viewer, &format!("/api/sensors/{sensor}"))
            .json();
        assert_eq!(s["status"], "stale");
        let stale = app
            .get_as(Role::Viewer, "/api/sensors?status=stale&limit=200")
            .json();
        assert!(
            stale["sensors"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s["id"] == sensor.as_str())
        );
        let online = app
            .get_as(Role::Viewer, "/api/sensors?status=online&limit=200")
            .json();
        assert!(
            !online["sensors"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s["id"] == sensor.as_str())
        );

        // An expired token is spent too.
        let r = app.post_json_as(Role::Admin, "/api/sensors/onboarding-tokens", &json!({}));
        let expired = r.json()["token"].as_str().unwrap().to_string();
        let id = r.json()["id"].as_str().unwrap().to_string();
        execute(
            app,
            &format!("UPDATE sensor_onboarding_tokens SET expires_at = 1 WHERE id = '{id}'"),
        );
        register(app, &expired, "Late").assert_problem(410, "onboarding-token-spent");
    }
    app.get_as(Role::Viewer, "/api/sensors?status=sleepy")
        .assert_problem(422, "validation");
}

fn the_registry_changes_with_if_match_and_deleting_revokes_keys(app: &TestApp) {
    let id = unique("ids");
    let new = json!({"id": id, "name": "Core IDS", "kind": "network", "location": "DC1"});
    app.post_json_as(Role::Analyst, "/api/sensors", &new)
        .assert_problem(403, "forbidden");
    let supervisor = app.token(Role::Supervisor);
    let r = app.send("POST", "/api/sensors", &supervisor, &[], Some(&new));
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.header("etag"), Some("\"1\""));
    app.send("POST", "/api/sensors", &supervisor, &[], Some(&new))
        .assert_problem(409, "conflict");
    let bad = json!({"id": "a/b", "name": "", "kind": "network"});
    let errors = app
        .send("POST", "/api/sensors", &supervisor, &[], Some(&bad))
        .assert_problem(422, "validation");
    let fields: Vec<&str> = errors["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["name", "id"]);

    let path = format!("/api/sensors/{id}");
    let change = json!({"name": "Core IDS (east)", "location": null});
    app.send("PATCH", &path, &supervisor, &[], Some(&change))
        .assert_problem(428, "precondition-required");
    app.send(
        "PATCH",
        &path,
        &supervisor,
        &[("if-match", "\"7\"")],
        Some(&change),
    )
    .assert_problem(412, "precondition-failed");
    let r = app.send(
        "PATCH",
        &path,
        &supervisor,
        &[("if-match", "\"1\"")],
        Some(&change),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let changed = r.json();
    assert_eq!(changed["name"], "Core IDS (east)");
    assert!(changed["location"].is_null());
    assert_eq!(changed["kind"], "network");
    assert_eq!(changed["version"], 2);

    // Listing: by kind, a page at a time.
    let second = unique("ids");
    app.send(
        "POST",
        "/api/sensors",
        &supervisor,
        &[],
        Some(&json!({"id": second, "name": "Core IDS (west)", "kind": "network"})),
    );
    let first = app
        .get_as(Role::Viewer, "/api/sensors?kind=network&limit=1")
        .json();
    assert_eq!(first["sensors"].as_array().unwrap().len(), 1);
    let cursor = first["next_cursor"].as_str().unwrap();
    let next = app
        .get_as(
            Role::Viewer,
            &format!("/api/sensors?kind=network&limit=1&cursor={cursor}"),
        )
        .json();
    assert_ne!(first["sensors"][0]["id"], next["sensors"][0]["id"]);
    app.get_as(Role::Viewer, "/api/sensors?kind=toaster")
        .assert_problem(422, "validation");

    // Deleting the sensor revokes its key at once; its events stay.
    let key = app.post_json_as(
        Role::Admin,
        "/api/auth/api-keys",
        &json!({"name": id, "kind": "sensor", "sensor_id": id, "scopes": ["sensors:ingest"]}),
    );
    let secret = key.json()["secret"].as_str().unwrap().to_string();
    let r = app.post_json(
        "/api/threats/events",
        &event(&id, "d-1", "port_scan", "192.168.9.9"),
        Some(&secret),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    // Sending its own events counts as being heard from.
    let s = app.get_as(Role::Viewer, &path).json();
    assert_eq!(s["status"], "online", "{s}");
    app.send("DELETE", &path, &app.token(Role::Analyst), &[], None)
        .assert_problem(403, "forbidden");
    let r = app.send("DELETE", &path, &supervisor, &[], None);
    assert_eq!(r.status, 204, "{}", r.text());
    app.get_as(Role::Viewer, &path)
        .assert_problem(404, "not-found");
    app.post_json(
        "/api/threats/events",
        &event(&id, "d-2", "port_scan", "192.168.9.9"),
        Some(&secret),
    )
    .assert_problem(401, "unauthenticated");
    let kept = app
        .get_as(Role::Viewer, &format!("/api/threats?sensor_id={id}"))
        .json();
    assert_eq!(kept["threats"].as_array().unwrap().len(), 1);
}

fn public_sources_get_country_and_asn(app: &TestApp) {
    let sensor = unique("geo");
    let body = json!({"events": [
        event(&sensor, "g-1", "http_probe", "81.2.69.160"),
        event(&sensor, "g-2", "http_probe", "2a02:cf40::1"),
        event(&sensor, "g-3", "http_probe", "192.168.1.1"),
        event(&sensor, "g-4", "http_probe", "8.8.8.8"),
    ]});
    let r = app.post_json(
        "/api/threats/events",
        &body,
        Some(&app.token(Role::Analyst)),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let listed = app
        .get_as(
            Role::Viewer,
            &format!("/api/threats?sensor_id={sensor}&limit=10"),
        )
        .json();
    let by_source = |ip: &str| {
        listed["threats"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["source_ip"] == ip)
            .cloned()
            .unwrap()
    };
    let gb = by_source("81.2.69.160");
    assert_eq!(
        (gb["source_country"].as_str(), gb["source_asn"].as_i64()),
        (Some("GB"), Some(64_500))
    );
    assert_eq!(gb["source_as_org"], "Vigil Test Net");
    assert_eq!(by_source("2a02:cf40::1")["source_country"], "NL");
    assert!(
        by_source("192.168.1.1")["source_country"].is_null(),
        "private: not looked up"
    );
    assert!(
        by_source("8.8.8.8")["source_country"].is_null(),
        "not in the database"
    );
    let only_gb = app
        .get_as(
            Role::Viewer,
            &format!("/api/threats?sensor_id={sensor}&country=GB"),
        )
        .json();
    assert_eq!(only_gb["threats"].as_array().unwrap().len(), 1);
}

fn alerts_are_filtered_and_paginated(app: &TestApp) {
    let sensor = unique("al");
    let events: Vec<Value> = (0..3)
        .map(|i| {
            event(
                &sensor,
                &format!("a-{i}"),
                "exploit_attempt",
                &format!("198.51.100.{}", 150 + i),
            )
        })
        .collect();
    let r = app.post_json(
        "/api/threats/events",
        &json!({"events": events}),
        Some(&app.token(Role::Analyst)),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let page = |q: &str| app.get_as(Role::Viewer, &format!("/api/alerts?sensor_id={sensor}{q}"));
    let all = page("").json();
    assert_eq!(
        all["alerts"].as_array().unwrap().len(),
        3,
        "one alert per source"
    );
    let first = page("&limit=2").json();
    assert_eq!(first["alerts"].as_array().unwrap().len(), 2);
    let cursor = first["next_cursor"].as_str().unwrap();
    let rest = page(&format!("&limit=2&cursor={cursor}")).json();
    assert_eq!(rest["alerts"].as_array().unwrap().len(), 1);
    assert!(rest["next_cursor"].is_null());
    let one = page("&source_ip=198.51.100.151&status=open&event_type=exploit_attempt").json();
    assert_eq!(one["alerts"].as_array().unwrap().len(), 1);
    assert_eq!(
        page("&severity=low").json()["alerts"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    page("&cursor=bm9wZQ").assert_problem(400, "bad-request");
    page("&severity=apocalyptic").assert_problem(422, "validation");
    page("&since=then").assert_problem(422, "validation");
}
