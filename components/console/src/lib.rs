//! The `console` component: serves the web console from `static/` (embedded
//! at build time) at `/...`, and the OpenAPI document at `/api/openapi.json`.
//!
//! Only `GET` and `HEAD`; paths are checked segment by segment (no `..`, no
//! `.`, no empty or encoded-slash segments), so nothing outside `static/` can
//! be named; responses carry an ETag and honour `If-None-Match`.

use spin_sdk::http::{IncomingRequest, Response, ResponseOutparam};
use spin_sdk::http_component;
use vigil_api::{ApiError, response};

pub struct StaticFile {
    pub path: &'static str,
    pub body: &'static [u8],
    pub content_type: &'static str,
    pub etag: &'static str,
}

mod embedded {
    use super::StaticFile;
    include!(concat!(env!("OUT_DIR"), "/static_files.rs"));
}

/// The file a request path names, if it is a safe path into `static/`.
fn resolve(path: &str) -> Option<&'static StaticFile> {
    let rel = path.strip_prefix('/')?;
    let rel = if rel.is_empty() || rel.ends_with('/') {
        format!("{rel}index.html")
    } else {
        rel.to_string()
    };
    let safe = rel
        .split('/')
        .all(|seg| !seg.is_empty() && seg != "." && seg != ".." && !seg.contains(['%', '\\']));
    if !safe {
        return None;
    }
    embedded::FILES.iter().find(|f| f.path == rel)
}

fn cache_control(file: &StaticFile) -> &'static str {
    // Pages and the API document revalidate every time; assets may be reused briefly.
    if file.content_type.starts_with("text/html") || file.path.ends_with(".json") {
        "no-cache"
    } else {
        "public, max-age=300, must-revalidate"
    }
}

fn serve_file(req: &IncomingRequest, method: &str, path: &str) -> Result<Response, ApiError> {
    if method != "GET" && method != "HEAD" {
        return Err(ApiError::method_not_allowed(vec!["GET", "HEAD"]));
    }
    let file = resolve(path).ok_or_else(ApiError::not_found)?;
    let if_none_match = req
        .headers()
        .get("if-none-match")
        .first()
        .and_then(|v| String::from_utf8(v.clone()).ok());
    let matches = if_none_match.is_some_and(|v| {
        v.split(',')
            .any(|t| t.trim() == file.etag || t.trim() == "*")
    });
    let mut builder = Response::builder();
    builder
        .header("etag", file.etag)
        .header("cache-control", cache_control(file))
        .header("x-content-type-options", "nosniff");
    if matches {
        return Ok(builder.status(304).build());
    }
    builder
        .status(200)
        .header("content-type", file.content_type);
    if file.content_type.starts_with("text/html") {
        builder
            .header(
                "content-security-policy",
                "default-src 'self'; frame-ancestors 'none'",
            )
            .header("x-frame-options", "DENY")
            .header("referrer-policy", "no-referrer");
    }
    let body = if method == "HEAD" {
        Vec::new()
    } else {
        file.body.to_vec()
    };
    Ok(builder.body(body).build())
}

#[http_component]
async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    vigil_api::send(answer(req), out).await
}

fn answer(req: IncomingRequest) -> Response {
    let method = req.method().to_string();
    let path_with_query = req.path_with_query().unwrap_or_default();
    let path = path_with_query.split('?').next().unwrap_or("/").to_string();
    let request_id = vigil_core::id::new_id();
    let response = serve_file(&req, &method, &path)
        .unwrap_or_else(|err| response::problem(&err, &path, &request_id));
    vigil_api::log::line(
        serde_json::json!({"level": "info", "component": "console", "request_id": request_id,
                           "method": method, "path": path, "status": response.status()}),
    );
    response
}
