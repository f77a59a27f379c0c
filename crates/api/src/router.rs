//! The route table and the dispatcher every component runs its requests through.
//!
//! A component declares its routes once, as data; the dispatcher answers
//! unknown paths (404), wrong methods (405 with `Allow`), `OPTIONS`, bodies
//! over the limit (413), missing or bad tokens (401) and missing permissions
//! (403) the same way everywhere, and logs one JSON line per request.

use std::time::Instant;

use futures::StreamExt;
use spin_sdk::http::{IncomingRequest, Response};
use vigil_core::{ApiError, Pending, Permission};

use crate::send::Served;
use crate::{Ctx, authz, response};

pub type Handler = fn(&mut Ctx) -> Result<Response, ApiError>;

/// Produces the JSON Schema of a request or response type (see [`schema_of`]).
pub type SchemaFn = fn(&mut schemars::SchemaGenerator) -> schemars::Schema;

/// The schema of `T`, for a route's request or reply.
pub fn schema_of<T: schemars::JsonSchema>(
    generator: &mut schemars::SchemaGenerator,
) -> schemars::Schema {
    generator.subschema_for::<T>()
}

/// One route: how it is dispatched and, from the same declaration, how the
/// OpenAPI document describes it (`crate::openapi`), so no route can exist
/// undocumented.
pub struct Route {
    pub method: &'static str,
    /// `/api/threats/{id}`: literal segments and `{name}` parameters.
    pub path: &'static str,
    pub access: Access,
    pub handler: Handler,
    pub summary: &'static str,
    /// The JSON request body, if the route takes one.
    pub request: Option<SchemaFn>,
    /// The successful responses.
    pub replies: &'static [Reply],
    /// Error statuses the handler itself can return (the dispatcher's own —
    /// 401, 403, 400, 413, 415, 422 — are added from `access` and `request`).
    pub errors: &'static [u16],
    /// The pending steps (see [`vigil_core::Pending`]) during which this
    /// route stays open: the routes that do the step, `me` and logout.
    pub open_while: &'static [Pending],
}

/// A successful response of a route.
pub struct Reply {
    pub status: u16,
    pub description: &'static str,
    pub content_type: &'static str,
    pub schema: Option<SchemaFn>,
}

impl Reply {
    /// A JSON body described by `schema`.
    pub const fn json(status: u16, description: &'static str, schema: SchemaFn) -> Reply {
        Reply {
            status,
            description,
            content_type: crate::response::JSON,
            schema: Some(schema),
        }
    }
}

impl Route {
    pub const fn new(
        method: &'static str,
        path: &'static str,
        access: Access,
        handler: Handler,
    ) -> Route {
        Route {
            method,
            path,
            access,
            handler,
            summary: "",
            request: None,
            replies: &[],
            errors: &[],
            open_while: &[],
        }
    }

    pub const fn summary(mut self, summary: &'static str) -> Route {
        self.summary = summary;
        self
    }

    pub const fn request(mut self, schema: SchemaFn) -> Route {
        self.request = Some(schema);
        self
    }

    pub const fn replies(mut self, replies: &'static [Reply]) -> Route {
        self.replies = replies;
        self
    }

    pub const fn errors(mut self, errors: &'static [u16]) -> Route {
        self.errors = errors;
        self
    }

    pub const fn open_while(mut self, pending: &'static [Pending]) -> Route {
        self.open_while = pending;
        self
    }

    /// Every error status this route can answer with.
    pub fn error_statuses(&self) -> Vec<u16> {
        let mut all: Vec<u16> = self.errors.to_vec();
        match self.access {
            Access::Public => {}
            Access::Authenticated => {
                all.push(401);
                // Refused to a user who owes a step, unless open during every step.
                if !Pending::ALL.iter().all(|p| self.open_while.contains(p)) {
                    all.push(403);
                }
            }
            Access::Needs(_) => all.extend([401, 403]),
        }
        if self.request.is_some() {
            all.extend([400, 413, 415, 422]);
        }
        all.sort_unstable();
        all.dedup();
        all
    }
}

/// Who may call a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Anyone, without a token (health, JWKS, login).
    Public,
    /// Any valid access token.
    Authenticated,
    /// A valid access token whose principal holds the permission.
    Needs(Permission),
}

pub struct Component {
    pub name: &'static str,
    pub version: &'static str,
    pub routes: &'static [Route],
    /// Largest request body accepted, in bytes.
    pub body_limit: usize,
}

/// Default request body limit (1 MiB).
pub const DEFAULT_BODY_LIMIT: usize = 1 << 20;

/// Match `path` against a route template; the parameters on success.
fn match_path(template: &'static str, path: &str) -> Option<Vec<(&'static str, String)>> {
    let mut params = Vec::new();
    let mut t = template.split('/');
    let mut p = path.split('/');
    loop {
        match (t.next(), p.next()) {
            (None, None) => return Some(params),
            (Some(ts), Some(ps)) => {
                if let Some(name) = ts.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    if ps.is_empty() {
                        return None;
                    }
                    params.push((name, percent_decode(ps)?));
                } else if ts != ps {
                    return None;
                }
            }
            _ => return None,
        }
    }
}

/// A percent-encoded path segment or query value as UTF-8; `None` when it is
/// not UTF-8 or has a `%` without two hex digits after it (the crate would
/// keep those as they are: a malformed escape is refused, not guessed at).
pub(crate) fn percent_decode(s: &str) -> Option<String> {
    let well_formed = s
        .split('%')
        .skip(1)
        .all(|rest| rest.len() >= 2 && rest.as_bytes()[..2].iter().all(u8::is_ascii_hexdigit));
    if !well_formed {
        return None;
    }
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .ok()
        .map(|text| text.into_owned())
}

fn request_id(headers: &[(String, Vec<u8>)]) -> String {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("x-request-id"))
        .and_then(|(_, v)| std::str::from_utf8(v).ok())
        .filter(|v| {
            (1..=64).contains(&v.len())
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .map(str::to_string)
        .unwrap_or_else(vigil_core::id::new_id)
}

enum Found {
    Route(&'static Route, Vec<(&'static str, String)>),
    WrongMethod(Vec<&'static str>),
    Options(Vec<&'static str>),
    Nothing,
}

fn find(routes: &'static [Route], method: &str, path: &str) -> Found {
    let mut allow = Vec::new();
    for route in routes {
        if let Some(params) = match_path(route.path, path) {
            // HEAD is GET without the body.
            if route.method == method || (method == "HEAD" && route.method == "GET") {
                return Found::Route(route, params);
            }
            // Several templates can match one path (`/health`, `/{id}`): list each method once.
            for method in [route.method]
                .into_iter()
                .chain((route.method == "GET").then_some("HEAD"))
            {
                if !allow.contains(&method) {
                    allow.push(method);
                }
            }
        }
    }
    match (allow.is_empty(), method) {
        (true, _) => Found::Nothing,
        (false, "OPTIONS") => {
            allow.push("OPTIONS");
            Found::Options(allow)
        }
        (false, _) => {
            allow.push("OPTIONS");
            Found::WrongMethod(allow)
        }
    }
}

/// Read the body up to `limit` bytes; `None` when it is larger.
async fn read_body(req: IncomingRequest, limit: usize) -> Result<Option<Vec<u8>>, ApiError> {
    let mut body = Vec::new();
    let mut stream = req.into_body_stream();
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|_| ApiError::bad_request("the request body could not be read"))?;
        if body.len() + chunk.len() > limit {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}

/// Handle one request for `component`.
pub async fn serve(component: &'static Component, req: IncomingRequest) -> Served {
    let started = Instant::now();
    let method = req.method().to_string();
    let path_with_query = req.path_with_query().unwrap_or_default();
    let (path, query) = match path_with_query.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (path_with_query.clone(), String::new()),
    };
    let headers = req.headers().entries();
    let request_id = request_id(&headers);
    let mut ctx = Ctx {
        component,
        method,
        path,
        query,
        headers,
        body: Vec::new(),
        params: Vec::new(),
        principal: None,
        request_id,
        auth_us: None,
        stream: None,
    };
    // Bad shared settings and refused CORS preflights, before anything else.
    let refused = response::refusal(&ctx).map(Err);
    let outcome = match refused {
        Some(refused) => refused,
        None => dispatch(component, req, &mut ctx).await,
    };
    let mut stream = ctx.stream.take();
    let mut response = match outcome {
        Ok(response) => response,
        Err(err) => {
            stream = None;
            response::problem(&err, &ctx.path, &ctx.request_id)
        }
    };
    if ctx.method == "HEAD" {
        response.body_mut().clear();
        stream = None;
    }
    response.set_header("x-request-id", ctx.request_id.clone());
    response::harden(&mut response, &ctx);
    log(&ctx, response.status().to_owned(), started);
    Served { response, stream }
}

async fn dispatch(
    component: &'static Component,
    req: IncomingRequest,
    ctx: &mut Ctx,
) -> Result<Response, ApiError> {
    let (route, params) = match find(component.routes, &ctx.method, &ctx.path) {
        Found::Route(route, params) => (route, params),
        Found::WrongMethod(allow) => return Err(ApiError::method_not_allowed(allow)),
        Found::Options(allow) => {
            return Ok(Response::builder()
                .status(204)
                .header("allow", allow.join(", "))
                .build());
        }
        Found::Nothing => return Err(ApiError::not_found()),
    };
    ctx.params = params;

    let declared_len = ctx
        .header("content-length")
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared_len.is_some_and(|n| n > component.body_limit as u64) {
        return Err(ApiError::payload_too_large(component.body_limit));
    }
    ctx.body = read_body(req, component.body_limit)
        .await?
        .ok_or_else(|| ApiError::payload_too_large(component.body_limit))?;

    if route.access != Access::Public {
        let auth_started = Instant::now();
        let principal = authz::authenticate(ctx.header("authorization"))?;
        let denied = match route.access {
            Access::Needs(needed) if !authz::authorize(&principal, needed) => Some(needed),
            _ => None,
        };
        ctx.auth_us = Some(auth_started.elapsed().as_micros() as u64);
        let pending = principal.pending;
        ctx.principal = Some(principal);
        match pending {
            Some(step) if !route.open_while.contains(&step) => return Err(pending_error(step)),
            _ => {}
        }
        if let Some(needed) = denied {
            return Err(ApiError::forbidden(needed.as_str()));
        }
    }
    (route.handler)(ctx)
}

/// The refusal for a user who owes `step`.
fn pending_error(step: Pending) -> ApiError {
    match step {
        Pending::MfaEnrolment => ApiError::new(403, "mfa-enrolment-required", "2FA enrolment required").with_detail(
            "your role requires two-factor authentication: enrol at /api/auth/mfa/enroll, then log in again",
        ),
        Pending::PasswordChange => ApiError::new(403, "password-change-required", "Password change required").with_detail(
            "your password was reset: choose a new one at /api/auth/password, then refresh your tokens",
        ),
    }
}

fn log(ctx: &Ctx, status: u16, started: Instant) {
    crate::log::line(serde_json::json!({
        "level": if status >= 500 { "error" } else { "info" },
        "component": ctx.component.name,
        "request_id": ctx.request_id,
        "method": ctx.method,
        "path": ctx.path,
        "status": status,
        "principal": ctx.principal.as_ref().map(|p| p.subject.as_str()),
        "ms": started.elapsed().as_secs_f64() * 1000.0,
        "auth_us": ctx.auth_us,
        "lock_wait_us": crate::db::lock_wait_us(),
        "lock_held_us": crate::db::lock_held_us(),
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_match_segments_and_decode_params() {
        assert_eq!(match_path("/api/x/health", "/api/x/health"), Some(vec![]));
        assert_eq!(match_path("/api/x/health", "/api/x/health/"), None);
        assert_eq!(
            match_path("/api/x/{id}", "/api/x/a%20b"),
            Some(vec![("id", "a b".to_string())])
        );
        assert_eq!(match_path("/api/x/{id}", "/api/x/"), None);
        assert_eq!(match_path("/api/x/{id}", "/api/x/%zz"), None);
        assert_eq!(
            match_path("/api/x/{id}", "/api/x/zo%C3%ab"),
            Some(vec![("id", "zoë".to_string())])
        );
        for bad in ["%", "%2", "a%2", "%+1", "%-1", "%FF", "%C3"] {
            assert_eq!(percent_decode(bad), None, "{bad}");
        }
        assert_eq!(
            match_path("/api/x/{id}/claim", "/api/x/7/claim"),
            Some(vec![("id", "7".to_string())])
        );
    }
}
