//! What every component does the same way: health, 404, 405, OPTIONS, 413,
//! request ids.

use vigil_core::Role;
use vigil_e2e::TestApp;
use vigil_e2e::client::send_early_answered;

use crate::Case;

pub const CASES: &[Case] = &[
    (
        "every_component_reports_health_and_schema",
        every_component_reports_health_and_schema,
    ),
    (
        "unknown_routes_are_problem_404s",
        unknown_routes_are_problem_404s,
    ),
    (
        "wrong_method_is_405_with_allow",
        wrong_method_is_405_with_allow,
    ),
    (
        "options_lists_allowed_methods",
        options_lists_allowed_methods,
    ),
    ("head_is_get_without_a_body", head_is_get_without_a_body),
    ("body_over_the_limit_is_413", body_over_the_limit_is_413),
    (
        "request_ids_are_echoed_or_made",
        request_ids_are_echoed_or_made,
    ),
];

const AREAS: [&str; 5] = ["auth", "decisions", "threats", "metrics", "export"];

fn every_component_reports_health_and_schema(app: &TestApp) {
    for area in AREAS {
        let r = app.get(&format!("/api/{area}/health"));
        assert_eq!(r.status, 200, "{area}: {}", r.text());
        assert_eq!(r.header("content-type"), Some("application/json"));
        let body = r.json();
        assert_eq!(body["status"], "ok");
        assert_eq!(body["component"], area);
        assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(
            body["schema_version"],
            vigil_db::migrations::latest_version()
        );
    }
}

fn unknown_routes_are_problem_404s(app: &TestApp) {
    for path in [
        "/api/auth/nope",
        "/api/decisions/",
        "/api/threats/health/extra",
        "/api/alerts/123/nope",
        "/api/sensors/x/nope",
        "/api/playbooks/x/nope",
        "/api/metrics/kpis",
        "/api/export/x",
    ] {
        let doc = app.get(path).assert_problem(404, "not-found");
        assert_eq!(doc["instance"], path);
    }
}

fn wrong_method_is_405_with_allow(app: &TestApp) {
    for method in ["POST", "PUT", "DELETE", "PATCH"] {
        let r = app.request(method, "/api/metrics/health", &[], Some(b""));
        r.assert_problem(405, "method-not-allowed");
        assert_eq!(r.header("allow"), Some("GET, HEAD, OPTIONS"), "{method}");
    }
    let r = app.request("DELETE", "/api/auth/users", &[], None);
    r.assert_problem(405, "method-not-allowed");
    assert_eq!(r.header("allow"), Some("GET, HEAD, POST, OPTIONS"));
}

fn options_lists_allowed_methods(app: &TestApp) {
    let r = app.request("OPTIONS", "/api/auth/users", &[], None);
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(r.header("allow"), Some("GET, HEAD, POST, OPTIONS"));
}

fn head_is_get_without_a_body(app: &TestApp) {
    let r = app.request("HEAD", "/api/decisions/health", &[], None);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert!(r.body.is_empty());
}

fn body_over_the_limit_is_413(app: &TestApp) {
    let token = app.token(Role::Admin);
    let big = vec![b' '; (1 << 20) + 1];
    // Declared length over the limit: refused before the body is read.
    let head = format!(
        "POST /api/auth/users HTTP/1.1\r\nhost: vigil\r\nauthorization: Bearer {token}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        big.len()
    );
    let (status, text) = send_early_answered(&app.base_url, &head, &big).unwrap();
    assert_eq!(status, 413, "{text}");
    assert!(
        text.contains("urn:vigil:problem:payload-too-large"),
        "{text}"
    );
    // Chunked, no declared length: refused once the limit is crossed.
    let head = format!(
        "POST /api/auth/users HTTP/1.1\r\nhost: vigil\r\nauthorization: Bearer {token}\r\n\
         content-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
    );
    let mut chunked = Vec::new();
    for chunk in big.chunks(64 * 1024) {
        chunked.extend(format!("{:x}\r\n", chunk.len()).as_bytes());
        chunked.extend(chunk);
        chunked.extend(b"\r\n");
    }
    chunked.extend(b"0\r\n\r\n");
    let (status, text) = send_early_answered(&app.base_url, &head, &chunked).unwrap();
    assert_eq!(status, 413, "{text}");
}

fn request_ids_are_echoed_or_made(app: &TestApp) {
    let r = app.request(
        "GET",
        "/api/threats/health",
        &[("x-request-id", "trace-abc_123")],
        None,
    );
    assert_eq!(r.header("x-request-id"), Some("trace-abc_123"));
    let r = app.request(
        "GET",
        "/api/threats/nope",
        &[("x-request-id", "bad id with spaces")],
        None,
    );
    let made = r.header("x-request-id").expect("a request id").to_string();
    assert_eq!(made.len(), 36, "a fresh UUID replaces an unusable one");
    assert_eq!(r.json()["request_id"], made.as_str());
}
