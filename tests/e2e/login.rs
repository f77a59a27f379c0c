//! Logging in and what follows: tokens that work, failures that all look
//! alike, lockout and its expiry, the per-address throttle, refresh rotation
//! and reuse detection, logout, password change, disabling, the session cap.

use serde_json::json;
use vigil_core::Role;
use vigil_e2e::{Resp, TestApp, count, execute};

use crate::Case;

pub const CASES: &[Case] = &[
    (
        "an_admin_reset_forces_a_new_password",
        an_admin_reset_forces_a_new_password,
    ),
    (
        "an_invitation_registers_one_account",
        an_invitation_registers_one_account,
    ),
    ("login_gives_tokens_that_work", login_gives_tokens_that_work),
    ("failed_logins_all_look_alike", failed_logins_all_look_alike),
    (
        "five_failures_lock_the_account_until_it_expires",
        five_failures_lock_the_account_until_it_expires,
    ),
    (
        "a_long_password_is_not_truncated",
        a_long_password_is_not_truncated,
    ),
    (
        "logins_are_throttled_per_address",
        logins_are_throttled_per_address,
    ),
    (
        "a_forged_client_address_is_throttled_like_the_real_one",
        a_forged_client_address_is_throttled_like_the_real_one,
    ),
    (
        "refresh_rotates_and_reuse_ends_the_session",
        refresh_rotates_and_reuse_ends_the_session,
    ),
    (
        "logout_ends_the_session_at_once",
        logout_ends_the_session_at_once,
    ),
    (
        "cookie_session_login_sets_the_refresh_cookie",
        cookie_session_login_sets_the_refresh_cookie,
    ),
    (
        "cookie_session_refresh_rotates_the_cookie_and_reuse_ends_it",
        cookie_session_refresh_rotates_the_cookie_and_reuse_ends_it,
    ),
    (
        "cookie_session_refresh_without_the_csrf_header_is_refused",
        cookie_session_refresh_without_the_csrf_header_is_refused,
    ),
    (
        "cookie_session_logout_clears_the_cookie",
        cookie_session_logout_clears_the_cookie,
    ),
    (
        "password_change_ends_the_other_sessions",
        password_change_ends_the_other_sessions,
    ),
    (
        "disabling_a_user_ends_their_sessions",
        disabling_a_user_ends_their_sessions,
    ),
    (
        "changing_a_users_role_ends_their_sessions",
        changing_a_users_role_ends_their_sessions,
    ),
    (
        "the_last_admin_cannot_be_demoted_or_disabled",
        the_last_admin_cannot_be_demoted_or_disabled,
    ),
    (
        "a_login_beyond_the_cap_ends_the_oldest_session",
        a_login_beyond_the_cap_ends_the_oldest_session,
    ),
    (
        "sessions_are_private_to_their_user",
        sessions_are_private_to_their_user,
    ),
];

const PASSWORD: &str = "a perfectly fine passphrase";

fn tokens(r: &Resp) -> (String, String, String) {
    assert_eq!(r.status, 200, "login/refresh: {}", r.text());
    let t = r.json();
    assert_eq!(t["token_type"], "Bearer");
    assert_eq!(t["expires_in"], 900);
    (
        t["access_token"].as_str().unwrap().to_string(),
        t["refresh_token"].as_str().unwrap().to_string(),
        t["session_id"].as_str().unwrap().to_string(),
    )
}

fn refresh(app: &TestApp, refresh_token: &str) -> Resp {
    app.post_json(
        "/api/auth/refresh",
        &json!({"refresh_token": refresh_token}),
        None,
    )
}

/// The parts of a failure a caller could compare (not its request id).
fn failure_shape(r: &Resp) -> (u16, serde_json::Value, serde_json::Value, serde_json::Value) {
    let doc = r.json();
    (
        r.status,
        doc["type"].clone(),
        doc["title"].clone(),
        doc["detail"].clone(),
    )
}

fn login_gives_tokens_that_work(app: &TestApp) {
    let user = app.create_user(Role::Analyst, PASSWORD);
    let (access, _, session) = tokens(&app.login(&user.username, PASSWORD));
    let me = app.with_bearer("GET", "/api/auth/me", &access);
    assert_eq!(me.status, 200, "{}", me.text());
    assert_eq!(me.json()["subject"], user.id.as_str());
    assert_eq!(me.json()["role"], "analyst");
    let sessions = app.with_bearer("GET", "/api/auth/sessions", &access).json();
    let listed = sessions["sessions"].as_array().unwrap();
    assert!(
        listed
            .iter()
            .any(|s| s["id"] == session.as_str() && s["current"] == true),
        "{sessions}"
    );
    // The role decides, as for any token: an analyst may not manage users.
    app.with_bearer("GET", "/api/auth/users", &access)
        .assert_problem(403, "forbidden");
    if app.db.is_some() {
        let q = format!(
            "SELECT count(*) FROM audit_log WHERE action = 'auth.login.succeeded' AND subject_id = '{}'",
            user.id
        );
        assert_eq!(count(app, &q), Some(1));
    }
}

fn failed_logins_all_look_alike(app: &TestApp) {
    let user = app.create_user(Role::Viewer, PASSWORD);
    let wrong = app.login(&user.username, "not the password at all");
    let unknown = app.login("nobody-by-this-name", PASSWORD);
    wrong.assert_problem(401, "invalid-credentials");
    assert_eq!(failure_shape(&wrong), failure_shape(&unknown));
    assert_eq!(
        wrong.header("www-authenticate"),
        unknown.header("www-authenticate")
    );
    if app.db.is_some() {
        // The reason is recorded, for the defenders only.
        let q = format!(
            "SELECT count(*) FROM audit_log WHERE action = 'auth.login.failed' AND json_extract(after, '$.reason') = 'wrong_password' AND subject_id = '{}'",
            user.id
        );
        assert_eq!(count(app, &q), Some(1));
        // An unknown name is kept as its SHA-256 only (it may be a password
        // typed into the wrong field).
        let hash = vigil_core::login::secret_hash("nobody-by-this-name");
        let q = format!(
            "SELECT count(*) FROM audit_log WHERE action = 'auth.login.failed' AND json_extract(after, '$.reason') = 'unknown_user' AND json_extract(after, '$.username_sha256') = '{hash}' AND json_extract(after, '$.username') IS NULL"
        );
        assert!(count(app, &q).unwrap() >= 1);
    }
}

fn five_failures_lock_the_account_until_it_expires(app: &TestApp) {
    let user = app.create_user(Role::Viewer, PASSWORD);
    for _ in 0..5 {
        app.login(&user.username, "wrong wrong wrong")
            .assert_problem(401, "invalid-credentials");
    }
    // Locked: even the right password fails, and looks like any failure.
    let locked = app.login(&user.username, PASSWORD);
    let unknown = app.login("nobody-by-this-name", PASSWORD);
    assert_eq!(failure_shape(&locked), failure_shape(&unknown));
    app.needs_own_app();
    let q = format!(
        "SELECT count(*) FROM audit_log WHERE action = 'auth.lockout' AND subject_id = '{}'",
        user.id
    );
    assert_eq!(count(app, &q), Some(1));
    // Fifteen minutes later (moved back in the database rather than waited for):
    execute(
        app,
        &format!(
            "UPDATE login_failures SET locked_until = locked_until - 15 * 60 * 1000 WHERE user_id = '{}'",
            user.id
        ),
    );
    tokens(&app.login(&user.username, PASSWORD));
    let q = format!(
        "SELECT failures + coalesce(locked_until, 0) + lockouts FROM login_failures WHERE user_id = '{}'",
        user.id
    );
    assert_eq!(count(app, &q), Some(0), "a successful login forgives");
}

fn a_long_password_is_not_truncated(app: &TestApp) {
    let long = format!("{}tail", "p".repeat(96));
    assert_eq!(long.len(), 100);
    let user = app.create_user(Role::Viewer, &long);
    tokens(&app.login(&user.username, &long));
    app.login(&user.username, &long[..72])
        .assert_problem(401, "invalid-credentials");
}

fn logins_are_throttled_per_address(app: &TestApp) {
    app.needs_own_app(); // Filling the window takes the database.
    fill_login_window_of_loopback(app);
    let r = app.login("anyone", PASSWORD);
    execute(app, "DELETE FROM rate_limits WHERE bucket = 'login:addr'");
    r.assert_problem(429, "too-many-requests");
}

/// Fill this minute's and the next minute's login window of the loopback
/// addresses (the suite's client).
fn fill_login_window_of_loopback(app: &TestApp) {
    let now = vigil_core::time::now_millis();
    let window = now - now.rem_euclid(60_000);
    let limit = vigil_core::login::LOGIN_ATTEMPTS_PER_ADDRESS_PER_MINUTE;
    for addr in ["127.0.0.1", "::1"] {
        for w in [window, window + 60_000] {
            execute(
                app,
                &format!(
                    "INSERT OR REPLACE INTO rate_limits VALUES ('login:addr', '{addr}', {w}, {limit})"
                ),
            );
        }
    }
}

fn a_forged_client_address_is_throttled_like_the_real_one(app: &TestApp) {
    app.needs_own_app(); // Filling the window takes the database.
    fill_login_window_of_loopback(app);
    let body = json!({"username": "anyone", "password": PASSWORD}).to_string();
    // 40 logins, each claiming another address in the runtime's own header
    // and in X-Forwarded-For (no proxy is trusted): all are the loopback's.
    let answers: Vec<u16> = (0..40)
        .map(|i| {
            let forged = format!("203.0.113.{i}:4000");
            let headers = [
                ("content-type", "application/json"),
                ("spin-client-addr", forged.as_str()),
                ("x-forwarded-for", "198.51.100.1"),
            ];
            app.request("POST", "/api/auth/login", &headers, Some(body.as_bytes()))
                .status
        })
        .collect();
    let stored = count(
        app,
        "SELECT count(*) FROM rate_limits WHERE bucket = 'login:addr' AND (key LIKE '203.0.113.%' OR key LIKE '198.51.100.%')",
    );
    execute(app, "DELETE FROM rate_limits WHERE bucket = 'login:addr'");
    assert!(answers.iter().all(|s| *s == 429), "{answers:?}");
    assert_eq!(stored, Some(0), "no forged address reaches the rate limits");
}

fn refresh_rotates_and_reuse_ends_the_session(app: &TestApp) {
    let user = app.create_user(Role::Viewer, PASSWORD);
    let (_, first_refresh, session) = tokens(&app.login(&user.username, PASSWORD));
    let (access, second_refresh, same_session) = tokens(&refresh(app, &first_refresh));
    assert_eq!(session, same_session);
    assert_ne!(first_refresh, second_refresh);
    assert_eq!(app.with_bearer("GET", "/api/auth/me", &access).status, 200);

    // The first token again: it leaked. The whole session ends.
    refresh(app, &first_refresh).assert_problem(401, "invalid-refresh-token");
    let doc = app
        .with_bearer("GET", "/api/auth/me", &access)
        .assert_problem(401, "unauthenticated");
    assert!(doc["detail"].as_str().unwrap().contains("session"), "{doc}");
    refresh(app, &second_refresh).assert_problem(401, "invalid-refresh-token");
    refresh(app, "not-a-token").assert_problem(401, "invalid-refresh-token");
    if app.db.is_some() {
        let q = format!(
            "SELECT count(*) FROM audit_log WHERE action = 'auth.refresh.reused' AND subject_id = '{session}'"
        );
        assert_eq!(count(app, &q), Some(1));
    }
}

fn logout_ends_the_session_at_once(app: &TestApp) {
    let user = app.create_user(Role::Viewer, PASSWORD);
    let (access, refresh_token, _) = tokens(&app.login(&user.username, PASSWORD));
    let r = app.with_bearer("POST", "/api/auth/logout", &access);
    assert_eq!(r.status, 204, "{}", r.text());
    app.with_bearer("GET", "/api/auth/me", &access)
        .assert_problem(401, "unauthenticated");
    refresh(app, &refresh_token).assert_problem(401, "invalid-refresh-token");
}

/// A browser login (`"session": "cookie"`): the access token and the
/// refresh cookie's value.
fn cookie_login(app: &TestApp, username: &str) -> (String, String) {
    let r = app.post_json(
        "/api/auth/login",
        &json!({"username": username, "password": PASSWORD, "session": "cookie"}),
        None,
    );
    cookie_tokens(&r)
}

/// The access token of a cookie-mode answer and its refresh cookie's value,
/// after checking the cookie's attributes and that the body lacks the token.
fn cookie_tokens(r: &Resp) -> (String, String) {
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.json();
    assert!(body.get("refresh_token").is_none(), "{body}");
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let cookie = r.header("set-cookie").expect("a Set-Cookie");
    let mut parts = cookie.split(';').map(str::trim);
    let value = parts
        .next()
        .and_then(|p| p.strip_prefix("vigil_refresh="))
        .unwrap_or_else(|| panic!("{cookie}"));
    assert!(value.len() >= 40, "{cookie}");
    let attrs: Vec<&str> = parts.collect();
    for want in [
        "Path=/api/auth/refresh",
        "HttpOnly",
        "Secure",
        "SameSite=Strict",
    ] {
        assert!(attrs.contains(&want), "{want} in {cookie}");
    }
    let max_age: i64 = attrs
        .iter()
        .find_map(|a| a.strip_prefix("Max-Age="))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("Max-Age in {cookie}"));
    assert!(max_age > 3600, "{cookie}");
    (
        body["access_token"].as_str().unwrap().to_string(),
        value.to_string(),
    )
}

/// `POST /api/auth/refresh` as a browser does: no token in the body, the
/// cookie, and (when `csrf`) the CSRF header.
fn cookie_refresh(app: &TestApp, cookie: &str, csrf: bool) -> Resp {
    let cookie = format!("vigil_refresh={cookie}");
    let mut headers = vec![
        ("content-type", "application/json"),
        ("cookie", cookie.as_str()),
    ];
    if csrf {
        headers.push(("x-vigil-csrf", "1"));
    }
    app.request("POST", "/api/auth/refresh", &headers, Some(b"{}"))
}

fn cookie_session_login_sets_the_refresh_cookie(app: &TestApp) {
    let user = app.create_user(Role::Viewer, PASSWORD);
    let (access, _) = cookie_login(app, &user.username);
    assert_eq!(app.with_bearer("GET", "/api/auth/me", &access).status, 200);
    // Without the switch, nothing changes for API clients.
    let plain = app.login(&user.username, PASSWORD);
    assert!(plain.header("set-cookie").is_none());
    tokens(&plain);
    // An unknown mode is refused like any bad field.
    app.post_json(
        "/api/auth/login",
        &json!({"username": user.username, "password": PASSWORD, "session": "jar"}),
        None,
    )
    .assert_problem(422, "validation");
}

fn cookie_session_refresh_rotates_the_cookie_and_reuse_ends_it(app: &TestApp) {
    let user = app.create_user(Role::Viewer, PASSWORD);
    let (_, first) = cookie_login(app, &user.username);
    let (access, second) = cookie_tokens(&cookie_refresh(app, &first, true));
    assert_ne!(first, second);
    assert_eq!(app.with_bearer("GET", "/api/auth/me", &access).status, 200);
    // The first cookie again: it leaked, and the whole session ends.
    cookie_refresh(app, &first, true).assert_problem(401, "invalid-refresh-token");
    app.with_bearer("GET", "/api/auth/me", &access)
        .assert_problem(401, "unauthenticated");
    cookie_refresh(app, &second, true).assert_problem(401, "invalid-refresh-token");
    // No body token and no cookie: nothing to refresh.
    app.request(
        "POST",
        "/api/auth/refresh",
        &[("content-type", "application/json"), ("x-vigil-csrf", "1")],
        Some(b"{}"),
    )
    .assert_problem(401, "invalid-refresh-token");
}

fn cookie_session_refresh_without_the_csrf_header_is_refused(app: &TestApp) {
    let user = app.create_user(Role::Viewer, PASSWORD);
    let (_, cookie) = cookie_login(app, &user.username);
    let r = cookie_refresh(app, &cookie, false);
    r.assert_problem(403, "csrf-header-missing");
    assert!(r.header("set-cookie").is_none());
    // It changed nothing: the same cookie still refreshes once.
    let (access, _) = cookie_tokens(&cookie_refresh(app, &cookie, true));
    assert_eq!(app.with_bearer("GET", "/api/auth/me", &access).status, 200);
}

fn cookie_session_logout_clears_the_cookie(app: &TestApp) {
    let user = app.create_user(Role::Viewer, PASSWORD);
    let (access, cookie) = cookie_login(app, &user.username);
    let r = app.with_bearer("POST", "/api/auth/logout", &access);
    assert_eq!(r.status, 204, "{}", r.text());
    let cleared = r.header("set-cookie").expect("a Set-Cookie clearing it");
    assert!(cleared.starts_with("vigil_refresh=;"), "{cleared}");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    assert!(cleared.contains("Path=/api/auth/refresh"), "{cleared}");
    cookie_refresh(app, &cookie, true).assert_problem(401, "invalid-refresh-token");
}

fn password_change_ends_the_other_sessions(app: &TestApp) {
    let user = app.create_user(Role::Viewer, PASSWORD);
    let (here, _, _) = tokens(&app.login(&user.username, PASSWORD));
    let (elsewhere, _, _) = tokens(&app.login(&user.username, PASSWORD));
    let wrong = app.post_json(
        "/api/auth/password",
        &json!({"current_password": "not it at all", "new_password": "another fine passphrase"}),
        Some(&here),
    );
    let doc = wrong.assert_problem(422, "validation");
    assert_eq!(doc["errors"][0]["field"], "current_password");
    let weak = app.post_json(
        "/api/auth/password",
        &json!({"current_password": PASSWORD, "new_password": "short"}),
        Some(&here),
    );
    assert_eq!(
        weak.assert_problem(422, "validation")["errors"][0]["field"],
        "new_password"
    );

    let ok = app.post_json(
        "/api/auth/password",
        &json!({"current_password": PASSWORD, "new_password": "another fine passphrase"}),
        Some(&here),
    );
    assert_eq!(ok.status, 204, "{}", ok.text());
    assert_eq!(
        app.with_bearer("GET", "/api/auth/me", &here).status,
        200,
        "this session goes on"
    );
    app.with_bearer("GET", "/api/auth/me", &elsewhere)
        .assert_problem(401, "unauthenticated");
    app.login(&user.username, PASSWORD)
        .assert_problem(401, "invalid-credentials");
    tokens(&app.login(&user.username, "another fine passphrase"));
}

fn disabling_a_user_ends_their_sessions(app: &TestApp) {
    let user = app.create_user(Role::Analyst, PASSWORD);
    let (access, _, _) = tokens(&app.login(&user.username, PASSWORD));
    let auth = format!("Bearer {}", app.token(Role::Admin));
    let patch = |body: serde_json::Value| {
        app.request(
            "PATCH",
            &format!("/api/auth/users/{}", user.id),
            &[
                ("authorization", &auth),
                ("content-type", "application/json"),
            ],
            Some(body.to_string().as_bytes()),
        )
    };
    let r = patch(json!({"disabled": true}));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["disabled"], true);
    app.with_bearer("GET", "/api/auth/me", &access)
        .assert_problem(401, "unauthenticated");
    app.login(&user.username, PASSWORD)
        .assert_problem(401, "invalid-credentials");
    // Bad patches change nothing.
    patch(json!({})).assert_problem(422, "validation");
    patch(json!({"role": "root"})).assert_problem(422, "validation");
    patch(json!({"disabled": false, "password": "x"})).assert_problem(422, "validation");
    assert_eq!(
        app.get_as(Role::Admin, &format!("/api/auth/users/{}", user.id))
            .json()["disabled"],
        true
    );
    app.get_as(Role::Admin, "/api/auth/users/no-such-user")
        .assert_problem(404, "not-found");
    app.get_as(Role::Supervisor, &format!("/api/auth/users/{}", user.id))
        .assert_problem(403, "forbidden");
}

/// A token carries its role: a demoted user's tokens stop at once, not
/// when they expire, and a new login gets the new role.
fn changing_a_users_role_ends_their_sessions(app: &TestApp) {
    let user = app.create_user(Role::Supervisor, PASSWORD);
    let (access, refresh_token, _) = tokens(&app.login(&user.username, PASSWORD));
    let auth = format!("Bearer {}", app.token(Role::Admin));
    let r = app.request(
        "PATCH",
        &format!("/api/auth/users/{}", user.id),
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
        ],
        Some(json!({"role": "viewer"}).to_string().as_bytes()),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["role"], "viewer");
    app.with_bearer("GET", "/api/auth/me", &access)
        .assert_problem(401, "unauthenticated");
    refresh(app, &refresh_token).assert_problem(401, "invalid-refresh-token");
    let (again, _, _) = tokens(&app.login(&user.username, PASSWORD));
    let me = app.with_bearer("GET", "/api/auth/me", &again);
    assert_eq!(me.status, 200, "{}", me.text());
    assert_eq!(me.json()["role"], "viewer");
    // A patch that leaves the role as it is ends nothing.
    let r = app.request(
        "PATCH",
        &format!("/api/auth/users/{}", user.id),
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
        ],
        Some(json!({"display_name": "Still Here"}).to_string().as_bytes()),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(app.with_bearer("GET", "/api/auth/me", &again).status, 200);
}

fn the_last_admin_cannot_be_demoted_or_disabled(app: &TestApp) {
    let auth = format!("Bearer {}", app.token(Role::Admin));
    let patch = |id: &str, body: serde_json::Value| {
        app.request(
            "PATCH",
            &format!("/api/auth/users/{id}"),
            &[
                ("authorization", &auth),
                ("content-type", "application/json"),
            ],
            Some(body.to_string().as_bytes()),
        )
    };
    // The seeded admin is the only active one: it stays an admin.
    let (admin, _) = vigil_e2e::test_principal(Role::Admin);
    patch(&admin, json!({"role": "viewer"})).assert_problem(409, "last-admin");
    patch(&admin, json!({"disabled": true})).assert_problem(409, "last-admin");
    assert_eq!(
        app.get_as(Role::Admin, &format!("/api/auth/users/{admin}"))
            .json()["role"],
        "admin"
    );
    // With a second admin, either may step down; this one does.
    let second = app.create_user(Role::Admin, PASSWORD);
    // Never by their own hand, though: another admin must do it.
    patch(&admin, json!({"disabled": true})).assert_problem(409, "own-account");
    app.post_json_as(
        Role::Admin,
        &format!("/api/auth/users/{admin}/reset-password"),
        &json!({}),
    )
    .assert_problem(409, "own-account");
    assert_eq!(patch(&second.id, json!({"role": "supervisor"})).status, 200);
}

fn a_login_beyond_the_cap_ends_the_oldest_session(app: &TestApp) {
    let user = app.create_user(Role::Viewer, PASSWORD);
    let (oldest, oldest_refresh, _) = tokens(&app.login(&user.username, PASSWORD));
    let mut newest = String::new();
    for _ in 0..5 {
        newest = tokens(&app.login(&user.username, PASSWORD)).0;
    }
    app.with_bearer("GET", "/api/auth/me", &oldest)
        .assert_problem(401, "unauthenticated");
    refresh(app, &oldest_refresh).assert_problem(401, "invalid-refresh-token");
    let live = app.with_bearer("GET", "/api/auth/sessions", &newest).json();
    assert_eq!(live["sessions"].as_array().unwrap().len(), 5, "{live}");
}

fn sessions_are_private_to_their_user(app: &TestApp) {
    let alice = app.create_user(Role::Analyst, PASSWORD);
    let bob = app.create_user(Role::Analyst, PASSWORD);
    let (alice_token, _, alice_session) = tokens(&app.login(&alice.username, PASSWORD));
    let (bob_token, _, _) = tokens(&app.login(&bob.username, PASSWORD));
    // Bob can neither list nor end Alice's session.
    app.with_bearer(
        "GET",
        &format!("/api/auth/sessions?user_id={}", alice.id),
        &bob_token,
    )
    .assert_problem(403, "forbidden");
    app.with_bearer(
        "DELETE",
        &format!("/api/auth/sessions/{alice_session}"),
        &bob_token,
    )
    .assert_problem(404, "not-found");
    assert_eq!(
        app.with_bearer("GET", "/api/auth/me", &alice_token).status,
        200
    );
    // An admin can do both.
    let listed = app
        .get_as(
            Role::Admin,
            &format!("/api/auth/sessions?user_id={}", alice.id),
        )
        .json();
    assert_eq!(listed["sessions"].as_array().unwrap().len(), 1, "{listed}");
    let auth = format!("Bearer {}", app.token(Role::Admin));
    let r = app.request(
        "DELETE",
        &format!("/api/auth/sessions/{alice_session}"),
        &[("authorization", &auth)],
        None,
    );
    assert_eq!(r.status, 204, "{}", r.text());
    app.with_bearer("GET", "/api/auth/me", &alice_token)
        .assert_problem(401, "unauthenticated");
}

/// Invitations: an admin invites to a role; the token registers one account
/// (which can then log in), and only once.
pub fn an_invitation_registers_one_account(app: &TestApp) {
    let r = app.post_json_as(
        Role::Admin,
        "/api/auth/invitations",
        &json!({"role": "analyst", "expires_in_hours": 24}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let invite = r.json()["invite_token"].as_str().unwrap().to_string();
    let username = format!("invited-{}", &vigil_core::id::new_id()[..8]);
    let register = |name: &str, password: &str| {
        app.post_json(
            "/api/auth/register",
            &json!({"invite_token": invite, "username": name, "password": password}),
            None,
        )
    };
    let weak = register(&username, "password1234");
    assert_eq!(
        weak.assert_problem(422, "validation")["errors"][0]["field"],
        "password"
    );
    let r = register(&username, PASSWORD);
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["role"], "analyst");
    tokens(&app.login(&username, PASSWORD));
    register("someone-else", PASSWORD).assert_problem(401, "invalid-invitation");
    let forged = app.post_json(
        "/api/auth/register",
        &json!({"invite_token": "forged", "username": "x-y-z", "password": PASSWORD}),
        None,
    );
    forged.assert_problem(401, "invalid-invitation");
    for role in [Role::Viewer, Role::Analyst, Role::Supervisor] {
        app.post_json_as(role, "/api/auth/invitations", &json!({"role": "admin"}))
            .assert_problem(403, "forbidden");
    }
    let bad = app.post_json_as(
        Role::Admin,
        "/api/auth/invitations",
        &json!({"role": "admin", "expires_in_hours": 0}),
    );
    assert_eq!(
        bad.assert_problem(422, "validation")["errors"][0]["field"],
        "expires_in_hours"
    );
}

/// An admin reset: old password and sessions dead; the one-time password
/// logs in to a token that can only change the password; after the change
/// (and a refresh) the user is whole.
pub fn an_admin_reset_forces_a_new_password(app: &TestApp) {
    let user = app.create_user(Role::Analyst, PASSWORD);
    let (old_access, _, _) = tokens(&app.login(&user.username, PASSWORD));
    let r = app.post_json_as(
        Role::Admin,
        &format!("/api/auth/users/{}/reset-password", user.id),
        &json!({}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let one_time = r.json()["one_time_password"].as_str().unwrap().to_string();
    app.with_bearer("GET", "/api/auth/me", &old_access)
        .assert_problem(401, "unauthenticated");
    app.login(&user.username, PASSWORD)
        .assert_problem(401, "invalid-credentials");
    assert_eq!(
        app.get_as(Role::Admin, &format!("/api/auth/users/{}", user.id))
            .json()["must_change_password"],
        true
    );

    let (restricted, refresh_token, _) = tokens(&app.login(&user.username, &one_time));
    let doc = app
        .with_bearer("GET", "/api/auth/sessions", &restricted)
        .assert_problem(403, "password-change-required");
    assert!(
        doc["detail"]
            .as_str()
            .unwrap()
            .contains("/api/auth/password")
    );
    assert_eq!(
        app.with_bearer("GET", "/api/auth/me", &restricted).status,
        200
    );
    let r = app.post_json(
        "/api/auth/password",
        &json!({"current_password": one_time, "new_password": "my own new passphrase"}),
        Some(&restricted),
    );
    assert_eq!(r.status, 204, "{}", r.text());
    let (whole, _, _) = tokens(&refresh(app, &refresh_token));
    assert_eq!(
        app.with_bearer("GET", "/api/auth/sessions", &whole).status,
        200
    );
    app.post_json_as(
        Role::Supervisor,
        &format!("/api/auth/users/{}/reset-password", user.id),
        &json!({}),
    )
    .assert_problem(403, "forbidden");
    app.post_json_as(
        Role::Admin,
        "/api/auth/users/no-such-user/reset-password",
        &json!({}),
    )
    .assert_problem(404, "not-found");
}
