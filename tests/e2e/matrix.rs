//! The permission matrix of every operation the OpenAPI document lists
//! (so of every route of every component, now and as they grow): without a
//! token → 401; with each role → 403 exactly when the role lacks the
//! operation's `x-vigil-permission`. Requests carry an empty JSON object, so
//! an allowed role gets a validation error or a harmless answer, never a change.

use vigil_core::{Permission, Role};
use vigil_e2e::TestApp;

use crate::Case;

pub const CASES: &[Case] = &[(
    "every_operation_enforces_its_permission",
    every_operation_enforces_its_permission,
)];

/// Operations that would end the very session the matrix uses.
const SKIP: &[(&str, &str)] = &[("post", "/api/auth/logout")];

fn every_operation_enforces_its_permission(app: &TestApp) {
    let doc = app.get("/api/openapi.json").json();
    let mut checked = 0;
    for (template, ops) in doc["paths"].as_object().unwrap() {
        let path: String = template
            .split('/')
            .map(|s| {
                if s.starts_with('{') {
                    "matrix-probe"
                } else {
                    s
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        for (method, op) in ops.as_object().unwrap() {
            let Some(needed) = op["x-vigil-permission"].as_str() else {
                assert_eq!(
                    op["security"],
                    serde_json::json!([]),
                    "{method} {template}: neither public nor permissioned"
                );
                continue;
            };
            if SKIP.contains(&(method.as_str(), template.as_str())) {
                continue;
            }
            let m = method.to_uppercase();
            let json = [("content-type", "application/json")];
            let r = app.request(&m, &path, &json, Some(b"{}"));
            assert_eq!(
                r.status,
                401,
                "{m} {template} without a token: {}",
                r.text()
            );
            for role in Role::ALL {
                let auth = format!("Bearer {}", app.token(role));
                let r = app.request(&m, &path, &[("authorization", &auth), json[0]], Some(b"{}"));
                let allowed = needed == "authenticated"
                    || Permission::parse(needed)
                        .is_some_and(|p| role.permissions().any(|q| q == p));
                if allowed {
                    assert!(
                        r.status != 401 && r.status != 403,
                        "{m} {template} as {role:?}: {} {}",
                        r.status,
                        r.text()
                    );
                } else {
                    r.assert_problem(403, "forbidden");
                }
            }
            checked += 1;
        }
    }
    assert!(checked >= 10, "only {checked} operations checked");
}
