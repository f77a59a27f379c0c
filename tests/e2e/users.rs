//! `GET`/`POST /api/auth/users`: the permission matrix, bad input that
//! changes nothing, and a creation that is audited and published atomically.

use serde_json::json;
use vigil_core::Role;
use vigil_e2e::{TestApp, count, execute, unique};

use crate::Case;

pub const CASES: &[Case] = &[
    (
        "only_admins_may_list_or_create_users",
        only_admins_may_list_or_create_users,
    ),
    (
        "creating_a_user_is_audited_and_published",
        creating_a_user_is_audited_and_published,
    ),
    (
        "bad_user_input_is_rejected_and_changes_nothing",
        bad_user_input_is_rejected_and_changes_nothing,
    ),
    ("duplicate_username_is_409", duplicate_username_is_409),
    (
        "a_write_that_fails_halfway_leaves_nothing",
        a_write_that_fails_halfway_leaves_nothing,
    ),
];

/// Run last: after every other case's activity, the chain still verifies.
pub const FINAL_CASES: &[Case] = &[(
    "the_audit_chain_verifies_after_all_that",
    the_audit_chain_verifies_after_all_that,
)];

fn the_audit_chain_verifies_after_all_that(app: &TestApp) {
    let Some(db) = &app.db else { return };
    let verdict = vigil_e2e::block_on(async {
        vigil_db::audit::verify(&db.connect().await.unwrap())
            .await
            .unwrap()
    });
    match verdict {
        vigil_db::audit::Verdict::Intact { entries, .. } => {
            assert!(entries > 20, "only {entries} entries")
        }
        broken => panic!("{broken:?}"),
    }
}

fn only_admins_may_list_or_create_users(app: &TestApp) {
    app.get("/api/auth/users")
        .assert_problem(401, "unauthenticated");
    for role in [Role::Viewer, Role::Analyst, Role::Supervisor] {
        let doc = app
            .get_as(role, "/api/auth/users")
            .assert_problem(403, "forbidden");
        assert!(doc["detail"].as_str().unwrap().contains("users:manage"));
        let body = json!({"username": unique("x"), "role": "viewer", "password": "a very long passphrase"});
        app.post_json_as(role, "/api/auth/users", &body)
            .assert_problem(403, "forbidden");
    }
    let r = app.get_as(Role::Admin, "/api/auth/users");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.json()["users"].is_array());
}

fn creating_a_user_is_audited_and_published(app: &TestApp) {
    let username = unique("analyst");
    let body = json!({"username": username, "display_name": "Ana Lyst", "role": "analyst", "password": "correct horse battery staple"});
    let r = app.post_json_as(Role::Admin, "/api/auth/users", &body);
    assert_eq!(r.status, 201, "{}", r.text());
    let user = r.json();
    let id = user["id"].as_str().unwrap().to_string();
    assert_eq!(user["username"], username.as_str());
    assert_eq!(user["role"], "analyst");
    assert!(user.get("password").is_none() && user.get("password_hash").is_none());
    assert_eq!(
        r.header("location"),
        Some(format!("/api/auth/users/{id}").as_str())
    );
    let listed = app.get_as(Role::Admin, "/api/auth/users").json();
    assert!(
        listed["users"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["id"] == id.as_str())
    );
    if app.db.is_some() {
        let audited = count(
            app,
            &format!(
                "SELECT count(*) FROM audit_log WHERE action = 'user.created' AND subject_id = '{id}' AND actor = '{}'",
                vigil_e2e::test_principal(Role::Admin).0
            ),
        );
        assert_eq!(audited, Some(1));
        let published = count(
            app,
            &format!(
                "SELECT count(*) FROM events WHERE type = 'user.created' AND json_extract(payload, '$.id') = '{id}'"
            ),
        );
        assert_eq!(published, Some(1));
    }
}

fn bad_user_input_is_rejected_and_changes_nothing(app: &TestApp) {
    let users_before = count(app, "SELECT count(*) FROM users");
    let audit_before = count(app, "SELECT count(*) FROM audit_log");
    let auth = format!("Bearer {}", app.token(Role::Admin));
    let post = |content_type: &str, body: &str| {
        app.request(
            "POST",
            "/api/auth/users",
            &[("authorization", &auth), ("content-type", content_type)],
            Some(body.as_bytes()),
        )
    };
    post("application/json", "{\"username\": ").assert_problem(400, "malformed-json");
    post("text/plain", "{}").assert_problem(415, "unsupported-media-type");
    let cases = [
        (
            json!({"username": "ok-name", "role": "root", "password": "a very long passphrase"}),
            "role",
        ),
        (
            json!({"username": "ok-name", "role": "viewer", "password": "a very long passphrase", "is_admin": true}),
            "is_admin",
        ),
        (
            json!({"username": "Bad Name", "role": "viewer", "password": "a very long passphrase"}),
            "username",
        ),
        (
            json!({"username": "ok-name", "role": "viewer", "password": "short"}),
            "password",
        ),
        (
            json!({"username": "ok-name", "role": "viewer", "password": "password1234"}),
            "password",
        ),
        (json!({"username": "ok-name", "role": "viewer"}), "$"),
    ];
    for (body, field) in cases {
        let doc = post("application/json", &body.to_string()).assert_problem(422, "validation");
        let fields: Vec<_> = doc["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap().to_string())
            .collect();
        assert!(
            fields.iter().any(|f| f == field),
            "expected an error on {field}: {doc}"
        );
    }
    assert_eq!(count(app, "SELECT count(*) FROM users"), users_before);
    assert_eq!(count(app, "SELECT count(*) FROM audit_log"), audit_before);
}

fn duplicate_username_is_409(app: &TestApp) {
    let username = unique("dup");
    let body =
        json!({"username": username, "role": "viewer", "password": "a very long passphrase"});
    assert_eq!(
        app.post_json_as(Role::Admin, "/api/auth/users", &body)
            .status,
        201
    );
    let before = count(app, "SELECT count(*) FROM audit_log");
    app.post_json_as(Role::Admin, "/api/auth/users", &body)
        .assert_problem(409, "conflict");
    assert_eq!(
        count(app, "SELECT count(*) FROM audit_log"),
        before,
        "a rejected create is not audited"
    );
}

/// The user row, its credentials and its audit entry are written before the
/// outbox event; a trigger makes that last insert fail, and the transaction
/// must leave none of the earlier writes behind.
fn a_write_that_fails_halfway_leaves_nothing(app: &TestApp) {
    app.needs_own_app(); // An external instance's database is not ours to alter.
    let username = unique("atomic");
    let trigger = username.replace('-', "_");
    execute(
        app,
        &format!(
            "CREATE TRIGGER {trigger} BEFORE INSERT ON events
             WHEN json_extract(NEW.payload, '$.username') = '{username}'
             BEGIN SELECT RAISE(ABORT, 'injected failure'); END;"
        ),
    );
    let audit_before = count(app, "SELECT count(*) FROM audit_log");
    let body =
        json!({"username": username, "role": "viewer", "password": "a very long passphrase"});
    let r = app.post_json_as(Role::Admin, "/api/auth/users", &body);
    execute(app, &format!("DROP TRIGGER {trigger};"));
    r.assert_problem(503, "unavailable");
    assert_eq!(
        count(
            app,
            &format!("SELECT count(*) FROM users WHERE username = '{username}'")
        ),
        Some(0)
    );
    assert_eq!(count(app, "SELECT count(*) FROM audit_log"), audit_before);
    assert_eq!(
        count(
            app,
            "SELECT count(*) FROM credentials WHERE user_id NOT IN (SELECT id FROM users)"
        ),
        Some(0)
    );
    // And the same request succeeds once the fault is gone: nothing was left locked.
    assert_eq!(
        app.post_json_as(Role::Admin, "/api/auth/users", &body)
            .status,
        201
    );
}
