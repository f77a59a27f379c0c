//! The `console` component: serves the web console from `static/` (embedded
//! at build time) at `/...`, the OpenAPI document at `/api/openapi.json`, and
//! the console's settings at `/config.json` (the relay's WebSocket URL, the
//! `relay_url` variable).
//!
//! Only `GET` and `HEAD`; paths are checked segment by segment (no `..`, no
//! `.`, no empty or encoded-slash segments), so nothing outside `static/` can
//! be named; responses carry an ETag and honour `If-None-Match`. Pages carry a
//! strict Content-Security-Policy (no inline script or style; connections to
//! this origin and the relay's only).

use spin_sdk::http::{IncomingRequest, Response};
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

/// The relay's WebSocket URL.
const RELAY_URL: &str = "relay_url";

/// Every Spin variable this component reads (`xtask/tests/variables.rs`
/// checks each is mapped into it in `spin.toml`).
pub const VARIABLES: &[&str] = &[RELAY_URL];

/// The relay's WebSocket URL (`relay_url`: `ws://` or `wss://`, a host, an
/// optional port and path), or `None` when unset (the console then has no
/// live updates). A bad value is refused, never guessed around: it would go
/// into the CSP header.
fn relay_url() -> Result<Option<String>, ApiError> {
    let raw = spin_sdk::variables::get(RELAY_URL).unwrap_or_default();
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    relay_origin(raw).ok_or_else(|| {
        vigil_api::settings::refuse(
            RELAY_URL,
            "must be a ws:// or wss:// URL such as ws://127.0.0.1:3001/ws",
        )
    })?;
    Ok(Some(raw.to_string()))
}

/// `scheme://host[:port]` of a `ws://`/`wss://` URL, if it is one.
fn relay_origin(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("ws://")
        .or_else(|| url.strip_prefix("wss://"))?;
    let authority = rest.split('/').next()?;
    let ok = !authority.is_empty()
        && authority
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-.:[]".contains(c))
        && rest[authority.len()..]
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/-._~".contains(c));
    ok.then(|| &url[..url.len() - rest.len() + authority.len()])
}

/// The pages' policy: everything from this origin, WebSockets to the relay,
/// no inline script or style, no framing, no `<base>`, forms only here.
fn content_security_policy(relay: Option<&str>) -> String {
    let relay = relay
        .and_then(relay_origin)
        .map(|o| format!(" {o}"))
        .unwrap_or_default();
    format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'{relay}; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; \
         object-src 'none'"
    )
}

/// `GET /config.json`: what the console needs to know that is not in the API.
fn config(method: &str) -> Result<Response, ApiError> {
    if method != "GET" && method != "HEAD" {
        return Err(ApiError::method_not_allowed(vec!["GET", "HEAD"]));
    }
    let body = serde_json::json!({ "relay_url": relay_url()? }).to_string();
    Ok(Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .header("cache-control", "no-cache")
        .header("x-content-type-options", "nosniff")
        .body(if method == "HEAD" {
            Vec::new()
        } else {
            body.into_bytes()
        })
        .build())
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
    builder.header("referrer-policy", "no-referrer");
    if file.content_type.starts_with("text/html") {
        builder
            .header(
                "content-security-policy",
                content_security_policy(relay_url()?.as_deref()),
            )
            .header("x-frame-options", "DENY");
    }
    let body = if method == "HEAD" {
        Vec::new()
    } else {
        file.body.to_vec()
    };
    Ok(builder.body(body).build())
}

#[cfg(target_arch = "wasm32")]
#[spin_sdk::http_component]
async fn handle(req: IncomingRequest, out: spin_sdk::http::ResponseOutparam) {
    vigil_api::send(answer(req), out).await
}

#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
fn answer(req: IncomingRequest) -> Response {
    let method = req.method().to_string();
    let path_with_query = req.path_with_query().unwrap_or_default();
    let path = path_with_query.split('?').next().unwrap_or("/").to_string();
    let request_id = vigil_core::id::new_id();
    let served = if path == "/config.json" {
        config(&method)
    } else {
        serve_file(&req, &method, &path)
    };
    let response = served.unwrap_or_else(|err| response::problem(&err, &path, &request_id));
    vigil_api::log::line(
        serde_json::json!({"level": "info", "component": "console", "request_id": request_id,
                           "method": method, "path": path, "status": response.status()}),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_relay_origin_is_the_scheme_host_and_port() {
        assert_eq!(
            relay_origin("ws://127.0.0.1:3001/ws"),
            Some("ws://127.0.0.1:3001")
        );
        assert_eq!(
            relay_origin("wss://relay.example.com/ws"),
            Some("wss://relay.example.com")
        );
        assert_eq!(relay_origin("wss://[::1]:9/"), Some("wss://[::1]:9"));
        for bad in [
            "http://x/ws",
            "ws://",
            "ws://x; script-src *",
            "ws://x/ws'",
            "ws://a b",
        ] {
            assert_eq!(relay_origin(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_policy_allows_the_relay_and_nothing_inline() {
        let csp = content_security_policy(Some("ws://127.0.0.1:3001/ws"));
        assert!(
            csp.contains("connect-src 'self' ws://127.0.0.1:3001;"),
            "{csp}"
        );
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        assert!(content_security_policy(None).contains("connect-src 'self';"));
    }
}
