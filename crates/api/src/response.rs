//! Building responses: JSON documents and RFC 7807 problems.

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
        .body(body)
        .build()
}

/// The problem document for `err`; `instance` is the request path.
pub fn problem(err: &ApiError, instance: &str, request_id: &str) -> Response {
    let mut builder = Response::builder();
    builder
        .status(err.status)
        .header("content-type", PROBLEM_JSON)
        .header("cache-control", "no-store");
    if !err.allow.is_empty() {
        builder.header("allow", err.allow.join(", "));
    }
    if err.status == 401 {
        builder.header("www-authenticate", "Bearer realm=\"vigil\"");
    }
    builder.body(err.body(instance, request_id)).build()
}
