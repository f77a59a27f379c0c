//! The console component: static pages with content types, ETags and cache
//! headers; 404 for missing files; no way out of `static/`.

use vigil_e2e::TestApp;

use crate::Case;

pub const CASES: &[Case] = &[
    (
        "console_serves_the_page_with_etag_and_cache_headers",
        console_serves_the_page_with_etag_and_cache_headers,
    ),
    (
        "console_assets_have_their_content_types",
        console_assets_have_their_content_types,
    ),
    (
        "console_missing_files_and_traversal_are_404",
        console_missing_files_and_traversal_are_404,
    ),
    ("console_is_read_only", console_is_read_only),
    (
        "console_pages_carry_a_strict_content_security_policy",
        console_pages_carry_a_strict_content_security_policy,
    ),
    (
        "console_config_names_the_relay_and_the_policy_allows_it",
        console_config_names_the_relay_and_the_policy_allows_it,
    ),
    ("openapi_document_is_served", openapi_document_is_served),
    (
        "every_documented_operation_is_served",
        every_documented_operation_is_served,
    ),
];

fn console_serves_the_page_with_etag_and_cache_headers(app: &TestApp) {
    let r = app.get("/");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    assert_eq!(r.header("cache-control"), Some("no-cache"));
    assert!(r.text().contains("<title>Vigil"), "{}", r.text());
    let etag = r.header("etag").expect("an ETag").to_string();
    assert!(etag.starts_with('"') && etag.ends_with('"'));
    assert_eq!(app.get("/index.html").header("etag"), Some(etag.as_str()));

    let again = app.request("GET", "/", &[("if-none-match", &etag)], None);
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    let stale = app.request("GET", "/", &[("if-none-match", "\"something-else\"")], None);
    assert_eq!(stale.status, 200);
}

fn console_assets_have_their_content_types(app: &TestApp) {
    let css = app.get("/styles.css");
    assert_eq!(css.status, 200);
    assert_eq!(css.header("content-type"), Some("text/css; charset=utf-8"));
    assert_eq!(
        css.header("cache-control"),
        Some("public, max-age=300, must-revalidate")
    );
    let js = app.get("/app.js");
    assert_eq!(
        js.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert_eq!(js.header("x-content-type-options"), Some("nosniff"));
}

fn console_missing_files_and_traversal_are_404(app: &TestApp) {
    for path in [
        "/missing.html",
        "/../spin.toml",
        "/%2e%2e/spin.toml",
        "/%2E%2E%2Fspin.toml",
        "/static/index.html",
        "/./index.html",
        "//index.html",
        "/..%5cspin.toml",
    ] {
        let r = app.get(path);
        assert_eq!(r.status, 404, "{path}: {}", r.text());
        assert!(
            !r.text().contains("spin_manifest_version"),
            "{path} leaked a file"
        );
    }
}

fn console_is_read_only(app: &TestApp) {
    let r = app.request("POST", "/index.html", &[], Some(b"x"));
    r.assert_problem(405, "method-not-allowed");
    assert_eq!(r.header("allow"), Some("GET, HEAD"));
    let head = app.request("HEAD", "/", &[], None);
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
}

fn console_pages_carry_a_strict_content_security_policy(app: &TestApp) {
    let page = app.get("/");
    let csp = page
        .header("content-security-policy")
        .expect("a CSP")
        .to_string();
    for directive in [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "object-src 'none'",
    ] {
        assert!(csp.contains(directive), "{directive} in {csp}");
    }
    assert!(!csp.contains("unsafe"), "{csp}");
    // The suite's app names no relay: connections to this origin only.
    assert!(csp.contains("connect-src 'self';"), "{csp}");
    assert_eq!(page.header("referrer-policy"), Some("no-referrer"));
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    // No inline script or style in the page itself.
    let html = page.text();
    assert!(
        !html.contains("<script>") && !html.contains("style="),
        "{html}"
    );
    assert!(!html.contains("<style"), "{html}");
    // Modules and vendored files have their content types.
    for (path, kind) in [
        ("/js/api.js", "text/javascript; charset=utf-8"),
        (
            "/vendor/uplot/uPlot.iife.min.js",
            "text/javascript; charset=utf-8",
        ),
        ("/vendor/uplot/uPlot.min.css", "text/css; charset=utf-8"),
        ("/favicon.svg", "image/svg+xml"),
    ] {
        let r = app.get(path);
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.header("content-type"), Some(kind), "{path}");
        assert_eq!(r.header("referrer-policy"), Some("no-referrer"), "{path}");
    }
}

fn console_config_names_the_relay_and_the_policy_allows_it(app: &TestApp) {
    let r = app.get("/config.json");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.json(), serde_json::json!({"relay_url": null}));
    let Some((other, _dir)) =
        app.with_variables(&[("relay_url", "wss://relay.example.test:8443/ws")])
    else {
        vigil_e2e::skip(vigil_e2e::NEEDS_OWN_APP)
    };
    let get = |path: &str| {
        vigil_e2e::client::request("GET", &format!("{}{path}", other.base_url), &[], None).unwrap()
    };
    assert_eq!(
        get("/config.json").json()["relay_url"],
        "wss://relay.example.test:8443/ws"
    );
    let csp = get("/")
        .header("content-security-policy")
        .unwrap()
        .to_string();
    assert!(
        csp.contains("connect-src 'self' wss://relay.example.test:8443;"),
        "{csp}"
    );
    // A value that is not a ws:// or wss:// URL is refused (503 naming
    // relay_url): the component's unit tests.
}

fn openapi_document_is_served(app: &TestApp) {
    let r = app.get("/api/openapi.json");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let etag = r.header("etag").expect("an ETag").to_string();
    assert_eq!(
        app.request(
            "GET",
            "/api/openapi.json",
            &[("if-none-match", &etag)],
            None
        )
        .status,
        304
    );
    let doc = r.json();
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["paths"]["/api/auth/me"].is_object());
}

/// Every operation the document lists is served: the component behind the
/// path answers OPTIONS with an `Allow` naming the documented methods.
fn every_documented_operation_is_served(app: &TestApp) {
    let doc = app.get("/api/openapi.json").json();
    let paths = doc["paths"].as_object().unwrap();
    let mut checked = 0;
    for (template, ops) in paths
        .iter()
        .filter(|(p, _)| p.starts_with("/api/") && *p != "/api/openapi.json")
    {
        let path: String = template
            .split('/')
            .map(|seg| if seg.starts_with('{') { "probe" } else { seg })
            .collect::<Vec<_>>()
            .join("/");
        let r = app.request("OPTIONS", &path, &[], None);
        assert_eq!(
            r.status,
            204,
            "{template} is documented but not served: {}",
            r.text()
        );
        let allow = r.header("allow").unwrap_or("").to_string();
        for method in ops.as_object().unwrap().keys() {
            assert!(
                allow.contains(&method.to_uppercase()),
                "{template}: {method} documented, Allow is {allow}"
            );
        }
        checked += 1;
    }
    assert!(checked >= 8, "only {checked} paths checked");
}
