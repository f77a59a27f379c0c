//! Building responses: JSON documents and RFC 7807 problems, and the
//! headers every response carries (nosniff, HSTS, CORS: [`harden`]).

use serde::Serialize;
use spin_sdk::http::Response;
use vigil_core::ApiError;
use vigil_core::problem::CONTENT_TYPE as PROBLEM_JSON;

pub const JSON: &str = "application/json";

/// A JSON response with the given status.
/// The ETag of a versioned resource: `"<version>"`.
pub fn etag(version: i64) -> String {
    format!("\"{version}\"")
}

pub fn json<T: Serialize>(status: u16, body: &T) -> Response {
    let body = serde_json::to_vec(body).expect("response types serialize");
    Response::builder()
        .status(status)
        .header("content-type", JSON)
        .header("cache-control", "no-store")
        .header("x-content-type-options", "nosniff")
        .body(body)
        .build()
}

/// The problem document for `err`; `instance` is the request path.
pub fn problem(err: &ApiError, instance: &str, request_id: &str) -> Response {
    let mut builder = Response::builder();
    builder
        .status(err.status)
        .header("content-type", PROBLEM_JSON)
        .header("cache-control", "no-store")
        .header("x-content-type-options", "nosniff");
    if !err.allow.is_empty() {
        builder.header("allow", err.allow.join(", "));
    }
    if err.status == 401 {
        builder.header("www-authenticate", "Bearer realm=\"vigil\"");
    }
    builder.body(err.body(instance, request_id)).build()
}

/// The methods a preflight may ask for, and the request headers the API reads.
const CORS_ALLOW_HEADERS: &str =
    "authorization, content-type, idempotency-key, if-match, x-request-id";
/// Response headers a page on an allowed origin may read.
const CORS_EXPOSE_HEADERS: &str = "etag, location, x-request-id, retry-after";

/// The CORS decision for this request, under `cors_allowed_origins`.
fn cors_of(ctx: &crate::Ctx) -> vigil_core::net::Cors {
    let none = vigil_core::net::Origins::default();
    let allowed = crate::settings::shared()
        .map(|s| &s.cors_allowed_origins)
        .unwrap_or(&none);
    vigil_core::net::cors(
        &ctx.method,
        ctx.header("origin"),
        ctx.header("access-control-request-method").is_some(),
        allowed,
    )
}

/// What the router answers before dispatching anything: a 503 naming a
/// bad shared setting (`crate::settings::shared`), or a 403 for a CORS
/// preflight from an origin not in `cors_allowed_origins`.
pub fn refusal(ctx: &crate::Ctx) -> Option<ApiError> {
    if let Err(err) = crate::settings::shared() {
        return Some(err);
    }
    match cors_of(ctx) {
        vigil_core::net::Cors::RefusePreflight => Some(
            ApiError::new(403, "cors-origin-refused", "Origin not allowed").with_detail(
                "this origin may not call the API from a browser (cors_allowed_origins)",
            ),
        ),
        _ => None,
    }
}

/// Headers every response carries, added in one place (the router, for
/// every component): `X-Content-Type-Options: nosniff`; HSTS when
/// `https_only` is set; for a request from an allowed origin, the CORS
/// headers that let its page read the answer (and, for a preflight, send
/// the request it asked about).
pub fn harden(response: &mut Response, ctx: &crate::Ctx) {
    response.set_header("x-content-type-options", "nosniff");
    if crate::settings::shared().is_ok_and(|s| s.https_only) {
        response.set_header(
            "strict-transport-security",
            "max-age=31536000; includeSubDomains",
        );
    }
    if let vigil_core::net::Cors::Allow { origin, preflight } = cors_of(ctx) {
        response.set_header("access-control-allow-origin", origin);
        response.set_header("vary", "origin");
        if preflight {
            let methods = response
                .header("allow")
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_string();
            response.set_header("access-control-allow-methods", methods);
            response.set_header("access-control-allow-headers", CORS_ALLOW_HEADERS);
            response.set_header("access-control-max-age", "600");
        } else {
            response.set_header("access-control-expose-headers", CORS_EXPOSE_HEADERS);
        }
    }
}
