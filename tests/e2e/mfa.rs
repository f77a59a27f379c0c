//! Two-factor authentication end to end: enrol, confirm, log in with a code,
//! a replayed code refused, a recovery code working once, disabling, and the
//! per-role policy (the suite's apps require 2FA for supervisors).

use serde_json::json;
use vigil_core::Role;
use vigil_core::totp::{STEP_SECS, base32_decode, code_at};
use vigil_e2e::{Resp, TestApp};

use crate::Case;

pub const CASES: &[Case] = &[
    (
        "mfa_enrol_then_login_with_a_code_once_and_a_recovery_code_once",
        mfa_enrol_then_login_with_a_code_once_and_a_recovery_code_once,
    ),
    (
        "mfa_can_be_disabled_with_password_and_code",
        mfa_can_be_disabled_with_password_and_code,
    ),
    (
        "a_role_that_requires_mfa_can_only_enrol_until_it_has",
        a_role_that_requires_mfa_can_only_enrol_until_it_has,
    ),
];

const PASSWORD: &str = "a perfectly fine passphrase";

fn now_step() -> i64 {
    vigil_core::time::now_millis() / 1000 / STEP_SECS
}

fn code(secret: &str, step: i64) -> String {
    format!("{:06}", code_at(&base32_decode(secret).unwrap(), step))
}

fn access_token(r: &Resp) -> String {
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["access_token"]
        .as_str()
        .expect("tokens")
        .to_string()
}

/// Enrol and confirm; returns (secret, the step the confirmation used, recovery codes).
fn enrol(app: &TestApp, token: &str) -> (String, i64, Vec<String>) {
    let r = app.post_json(
        "/api/auth/mfa/enroll",
        &json!({"password": PASSWORD}),
        Some(token),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let enrolment = r.json();
    let secret = enrolment["secret"].as_str().unwrap().to_string();
    assert!(
        enrolment["otpauth_uri"]
            .as_str()
            .unwrap()
            .starts_with("otpauth://totp/Vigil:")
    );
    assert!(enrolment["qr_svg"].as_str().unwrap().contains("<svg"));
    let wrong = app.post_json(
        "/api/auth/mfa/confirm",
        &json!({"code": "000000"}),
        Some(token),
    );
    if wrong.status != 200 {
        assert_eq!(
            wrong.assert_problem(422, "validation")["errors"][0]["field"],
            "code"
        );
    }
    let step = now_step();
    let r = app.post_json(
        "/api/auth/mfa/confirm",
        &json!({"code": code(&secret, step)}),
        Some(token),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let codes: Vec<String> = serde_json::from_value(r.json()["recovery_codes"].clone()).unwrap();
    assert_eq!(codes.len(), 10);
    (secret, step, codes)
}

fn challenge(app: &TestApp, username: &str) -> String {
    let r = app.login(username, PASSWORD);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["mfa_required"], true, "{}", r.text());
    assert!(
        r.json().get("access_token").is_none(),
        "no tokens before the second factor"
    );
    r.json()["mfa_token"].as_str().unwrap().to_string()
}

fn second_step(app: &TestApp, mfa_token: &str, field: &str, value: &str) -> Resp {
    app.post_json(
        "/api/auth/login/mfa",
        &json!({"mfa_token": mfa_token, field: value}),
        None,
    )
}

fn mfa_enrol_then_login_with_a_code_once_and_a_recovery_code_once(app: &TestApp) {
    let user = app.create_user(Role::Analyst, PASSWORD);
    let token = access_token(&app.login(&user.username, PASSWORD));
    let (secret, step, recovery) = enrol(app, &token);
    // Replacing the authenticator takes a current code of it as well.
    let again = app.post_json(
        "/api/auth/mfa/enroll",
        &json!({"password": PASSWORD}),
        Some(&token),
    );
    assert_eq!(
        again.assert_problem(422, "validation")["errors"][0]["field"],
        "code"
    );

    // A password alone no longer logs in; the next step's code does (the
    // confirmation used this step's, and a code is accepted once).
    let first = challenge(app, &user.username);
    let next = code(&secret, step + 1);
    let tokens = second_step(app, &first, "code", &next);
    assert_eq!(
        app.with_bearer("GET", "/api/auth/me", &access_token(&tokens))
            .status,
        200
    );
    second_step(app, &first, "code", &next).assert_problem(401, "invalid-credentials");

    let replay = challenge(app, &user.username);
    second_step(app, &replay, "code", &next).assert_problem(401, "invalid-credentials");

    let rescue = challenge(app, &user.username);
    access_token(&second_step(
        app,
        &rescue,
        "recovery_code",
        &recovery[3].to_uppercase(),
    ));
    let again = challenge(app, &user.username);
    second_step(app, &again, "recovery_code", &recovery[3])
        .assert_problem(401, "invalid-credentials");

    let both = challenge(app, &user.username);
    let r = app.post_json(
        "/api/auth/login/mfa",
        &json!({"mfa_token": both, "code": "123456", "recovery_code": "x"}),
        None,
    );
    r.assert_problem(422, "validation");
}

fn mfa_can_be_disabled_with_password_and_code(app: &TestApp) {
    let user = app.create_user(Role::Viewer, PASSWORD);
    let token = access_token(&app.login(&user.username, PASSWORD));
    let (secret, step, _) = enrol(app, &token);
    let wrong = app.post_json(
        "/api/auth/mfa/disable",
        &json!({"password": "not the password", "code": code(&secret, step + 1)}),
        Some(&token),
    );
    assert_eq!(
        wrong.assert_problem(422, "validation")["errors"][0]["field"],
        "password"
    );
    let r = app.post_json(
        "/api/auth/mfa/disable",
        &json!({"password": PASSWORD, "code": code(&secret, step + 1)}),
        Some(&token),
    );
    assert_eq!(r.status, 204, "{}", r.text());
    access_token(&app.login(&user.username, PASSWORD));
}

fn a_role_that_requires_mfa_can_only_enrol_until_it_has(app: &TestApp) {
    let user = app.create_user(Role::Supervisor, PASSWORD);
    let pending = access_token(&app.login(&user.username, PASSWORD));
    let doc = app
        .with_bearer("GET", "/api/auth/sessions", &pending)
        .assert_problem(403, "mfa-enrolment-required");
    assert!(
        doc["detail"]
            .as_str()
            .unwrap()
            .contains("/api/auth/mfa/enroll")
    );
    assert_eq!(
        app.with_bearer("GET", "/api/auth/me", &pending).json()["permissions"],
        json!([])
    );
    let (secret, step, _) = enrol(app, &pending);
    let disable = app.post_json(
        "/api/auth/mfa/disable",
        &json!({"password": PASSWORD, "code": code(&secret, step + 1)}),
        Some(&pending),
    );
    disable.assert_problem(403, "mfa-enrolment-required");
    // Logged in again, with the second factor, the supervisor is whole.
    let first = challenge(app, &user.username);
    let token = access_token(&second_step(app, &first, "code", &code(&secret, step + 1)));
    assert_eq!(
        app.with_bearer("GET", "/api/auth/sessions", &token).status,
        200
    );
    let r = app.post_json(
        "/api/auth/mfa/disable",
        &json!({"password": PASSWORD, "code": "000000"}),
        Some(&token),
    );
    r.assert_problem(409, "mfa-required");
}
