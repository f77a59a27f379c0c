//! API keys: created by admins with scopes, shown once, accepted by every
//! component for exactly those scopes, revoked at once.

use serde_json::json;
use vigil_core::Role;
use vigil_e2e::TestApp;

use crate::Case;

pub const CASES: &[Case] = &[
    (
        "an_api_key_acts_for_its_scopes_until_revoked",
        an_api_key_acts_for_its_scopes_until_revoked,
    ),
    (
        "only_admins_manage_api_keys_and_bad_input_is_rejected",
        only_admins_manage_api_keys_and_bad_input_is_rejected,
    ),
];

fn an_api_key_acts_for_its_scopes_until_revoked(app: &TestApp) {
    let body = json!({"name": "collector-7", "kind": "service", "scopes": ["sensors:ingest", "threats:read"]});
    let r = app.post_json_as(Role::Admin, "/api/auth/api-keys", &body);
    assert_eq!(r.status, 201, "{}", r.text());
    let created = r.json();
    let secret = created["secret"].as_str().unwrap().to_string();
    let id = created["id"].as_str().unwrap().to_string();
    assert!(secret.starts_with("vgk_"));
    assert_eq!(created["prefix"].as_str().unwrap(), &secret[4..12]);

    let me = app.with_bearer("GET", "/api/auth/me", &secret);
    assert_eq!(me.status, 200, "{}", me.text());
    assert_eq!(me.json()["kind"], "api_key");
    assert_eq!(me.json()["subject"], format!("key:{id}"));
    assert_eq!(
        me.json()["permissions"],
        json!(["threats:read", "sensors:ingest"])
    );
    app.with_bearer("GET", "/api/auth/users", &secret)
        .assert_problem(403, "forbidden");

    let listed = app.get_as(Role::Admin, "/api/auth/api-keys");
    assert!(
        !listed.text().contains(&secret[13..]),
        "a list never shows secrets"
    );
    assert!(
        listed.json()["api_keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["id"] == id.as_str())
    );

    let auth = format!("Bearer {}", app.token(Role::Admin));
    let r = app.request(
        "DELETE",
        &format!("/api/auth/api-keys/{id}"),
        &[("authorization", &auth)],
        None,
    );
    assert_eq!(r.status, 204, "{}", r.text());
    app.with_bearer("GET", "/api/auth/me", &secret)
        .assert_problem(401, "unauthenticated");
    app.request(
        "DELETE",
        &format!("/api/auth/api-keys/{id}"),
        &[("authorization", &auth)],
        None,
    )
    .assert_problem(404, "not-found");
    // A forged key with a real prefix does not pass.
    let forged = format!("{}{}", &secret[..13], "A".repeat(43));
    app.with_bearer("GET", "/api/auth/me", &forged)
        .assert_problem(401, "unauthenticated");
}

fn only_admins_manage_api_keys_and_bad_input_is_rejected(app: &TestApp) {
    let good = json!({"name": "soar", "kind": "service", "scopes": ["decisions:submit"]});
    for role in [Role::Viewer, Role::Analyst, Role::Supervisor] {
        app.post_json_as(role, "/api/auth/api-keys", &good)
            .assert_problem(403, "forbidden");
        app.get_as(role, "/api/auth/api-keys")
            .assert_problem(403, "forbidden");
    }
    app.post_json("/api/auth/api-keys", &good, None)
        .assert_problem(401, "unauthenticated");
    let cases = [
        (
            json!({"name": "x", "kind": "service", "scopes": ["root:all"]}),
            "scopes[0]",
        ),
        (
            json!({"name": "x", "kind": "sensor", "scopes": ["sensors:ingest"]}),
            "sensor_id",
        ),
        (
            json!({"name": "x", "kind": "service", "sensor_id": "s", "scopes": ["threats:read"]}),
            "sensor_id",
        ),
        (
            json!({"name": "x", "kind": "service", "scopes": []}),
            "scopes",
        ),
        (
            json!({"name": "", "kind": "service", "scopes": ["threats:read"]}),
            "name",
        ),
        (
            json!({"name": "x", "kind": "robot", "scopes": ["threats:read"]}),
            "kind",
        ),
    ];
    for (body, field) in cases {
        let doc = app
            .post_json_as(Role::Admin, "/api/auth/api-keys", &body)
            .assert_problem(422, "validation");
        assert!(
            doc["errors"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["field"] == field),
            "{field}: {doc}"
        );
    }
}
