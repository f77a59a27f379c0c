//! Access tokens through the composed `platform` component: a natively
//! signed token authenticates; every kind of bad token is a 401 problem.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use vigil_core::Role;
use vigil_core::token::TokenSigner;
use vigil_e2e::TestApp;

use crate::Case;

pub const CASES: &[Case] = &[
    (
        "a_signed_token_is_authorized_through_the_wit_interface",
        a_signed_token_is_authorized_through_the_wit_interface,
    ),
    (
        "missing_token_is_401_with_challenge",
        missing_token_is_401_with_challenge,
    ),
    ("malformed_tokens_are_401", malformed_tokens_are_401),
    ("expired_token_is_401", expired_token_is_401),
    ("wrongly_signed_token_is_401", wrongly_signed_token_is_401),
    ("alg_none_and_hs256_are_401", alg_none_and_hs256_are_401),
    (
        "wrong_audience_or_issuer_is_401",
        wrong_audience_or_issuer_is_401,
    ),
];

fn me_with(app: &TestApp, authorization: &str) -> vigil_e2e::Resp {
    app.request(
        "GET",
        "/api/auth/me",
        &[("authorization", authorization)],
        None,
    )
}

fn a_signed_token_is_authorized_through_the_wit_interface(app: &TestApp) {
    for role in Role::ALL {
        let r = app.get_as(role, "/api/auth/me");
        assert_eq!(r.status, 200, "{role:?}: {}", r.text());
        let me = r.json();
        assert_eq!(me["subject"], vigil_e2e::test_principal(role).0);
        assert_eq!(me["kind"], "user");
        assert_eq!(me["role"], role.as_str());
        let expected: Vec<_> = role.permissions().map(|p| p.as_str()).collect();
        assert_eq!(me["permissions"], serde_json::json!(expected));
    }
}

fn missing_token_is_401_with_challenge(app: &TestApp) {
    let r = app.get("/api/auth/me");
    r.assert_problem(401, "unauthenticated");
    assert_eq!(r.header("www-authenticate"), Some("Bearer realm=\"vigil\""));
}

fn malformed_tokens_are_401(app: &TestApp) {
    for header in [
        "Bearer",
        "Bearer not-a-jwt",
        "Bearer a.b.c",
        "Basic YWRtaW46YWRtaW4=",
        "Bearer ...",
        "bearer x.y",
    ] {
        me_with(app, header).assert_problem(401, "unauthenticated");
    }
}

fn expired_token_is_401(app: &TestApp) {
    let mut claims = app.claims(Role::Admin);
    claims.iat -= 3600;
    claims.exp = claims.iat + 900;
    let r = me_with(app, &format!("Bearer {}", app.signer.sign(&claims)));
    let doc = r.assert_problem(401, "unauthenticated");
    assert!(doc["detail"].as_str().unwrap().contains("expired"), "{doc}");
}

fn wrongly_signed_token_is_401(app: &TestApp) {
    // Same kid, different key: the signature cannot verify.
    let impostor = TokenSigner::generate(app.signer.kid());
    let token = impostor.sign(&app.claims(Role::Admin));
    me_with(app, &format!("Bearer {token}")).assert_problem(401, "unauthenticated");
    // A kid the app does not know.
    let stranger = TokenSigner::generate("someone-else");
    let token = stranger.sign(&app.claims(Role::Admin));
    me_with(app, &format!("Bearer {token}")).assert_problem(401, "unauthenticated");
    // A valid token with its payload swapped for a more privileged one.
    let good = app.token(Role::Viewer);
    let parts: Vec<_> = good.split('.').collect();
    let forged_payload = B64.encode(serde_json::to_vec(&app.claims(Role::Admin)).unwrap());
    let forged = format!("{}.{forged_payload}.{}", parts[0], parts[2]);
    me_with(app, &format!("Bearer {forged}")).assert_problem(401, "unauthenticated");
}

fn alg_none_and_hs256_are_401(app: &TestApp) {
    let payload = B64.encode(serde_json::to_vec(&app.claims(Role::Admin)).unwrap());
    for alg in ["none", "HS256"] {
        let header = B64.encode(format!(
            r#"{{"alg":"{alg}","typ":"JWT","kid":"{}"}}"#,
            app.signer.kid()
        ));
        let r = me_with(app, &format!("Bearer {header}.{payload}."));
        let doc = r.assert_problem(401, "unauthenticated");
        assert!(
            doc["detail"].as_str().unwrap().contains("algorithm"),
            "{doc}"
        );
    }
}

fn wrong_audience_or_issuer_is_401(app: &TestApp) {
    let mut claims = app.claims(Role::Admin);
    claims.aud = "another-service".into();
    me_with(app, &format!("Bearer {}", app.signer.sign(&claims)))
        .assert_problem(401, "unauthenticated");
    let mut claims = app.claims(Role::Admin);
    claims.iss = "another-issuer".into();
    me_with(app, &format!("Bearer {}", app.signer.sign(&claims)))
        .assert_problem(401, "unauthenticated");
}
