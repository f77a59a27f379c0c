//! The context a handler receives: the request as read, its path parameters,
//! its principal (when the route demands a permission) and its request id.

use serde::de::DeserializeOwned;
use vigil_core::audit::{Actor, AuditEntry};
use vigil_core::net::{Networks, client_address};
use vigil_core::{ApiError, FieldError, Principal};

pub struct Ctx {
    pub component: &'static crate::Component,
    pub method: String,
    /// Path without the query string, as the client sent it.
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
    /// `(name, value)` for each `{name}` segment of the matched route.
    pub params: Vec<(&'static str, String)>,
    pub principal: Option<Principal>,
    pub request_id: String,
    /// Time spent authenticating and authorizing, in microseconds (logged).
    pub auth_us: Option<u64>,
}

impl Ctx {
    /// The first value of a header (names compare case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
    }

    /// The client's IP address: the peer the runtime saw (the last
    /// `spin-client-addr`; earlier ones are the client's own), or, when that
    /// peer is one of the `trusted_proxies`, the rightmost untrusted address
    /// of `X-Forwarded-For` (`vigil_core::net::client_address`). Never what a
    /// client merely claims, and always a parsed address.
    pub fn client_addr(&self) -> Option<String> {
        let peer = self
            .headers
            .iter()
            .rev()
            .find(|(k, _)| k.eq_ignore_ascii_case("spin-client-addr"))
            .and_then(|(_, v)| std::str::from_utf8(v).ok())?;
        let forwarded: Vec<&str> = self
            .headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("x-forwarded-for"))
            .filter_map(|(_, v)| std::str::from_utf8(v).ok())
            .collect();
        // The variable is read only when there is something to believe.
        let trusted = if forwarded.is_empty() {
            Networks::default()
        } else {
            trusted_proxies()
        };
        client_address(peer, &forwarded, &trusted).map(|ip| ip.to_string())
    }

    /// This request's principal and origin, as the audit log records them.
    pub fn actor(&self) -> Actor {
        Actor {
            actor: self
                .principal
                .as_ref()
                .map_or_else(|| "anonymous".into(), |p| p.subject.clone()),
            request_id: Some(self.request_id.clone()),
            client_addr: self.client_addr(),
        }
    }

    /// An audit entry for an action of this request's principal.
    pub fn audit_entry(
        &self,
        action: &str,
        subject_kind: &str,
        subject_id: &str,
        at: i64,
    ) -> AuditEntry {
        self.actor().entry(action, subject_kind, subject_id, at)
    }

    /// The `If-Match` a change of a versioned `what` (alert, sensor …) must
    /// carry, so a change made meanwhile is never overwritten (428 without it).
    pub fn if_match(&self, what: &str) -> Result<String, ApiError> {
        self.header("if-match")
            .map(|v| v.trim().to_string())
            .ok_or_else(|| {
                ApiError::new(428, "precondition-required", "If-Match required").with_detail(
                    format!("send If-Match with the {what}'s ETag, so a change made meanwhile is not overwritten"),
                )
            })
    }

    /// 412 unless the `If-Match` (from [`Ctx::if_match`]) names `version` of
    /// the `what` (or is `*`: any version).
    pub fn check_version(if_match: &str, version: i64, what: &str) -> Result<(), ApiError> {
        if if_match == crate::response::etag(version) || if_match == "*" {
            Ok(())
        } else {
            Err(ApiError::precondition_failed(format!(
                "the {what} is at version {version} now; reload it"
            )))
        }
    }

    /// A query-string parameter, percent-decoded (`+` is a space).
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (k == name)
                .then(|| crate::router::percent_decode(&v.replace('+', " ")))
                .flatten()
        })
    }

    pub fn param(&self, name: &str) -> &str {
        self.params
            .iter()
            .find(|(k, _)| *k == name)
            .map_or("", |(_, v)| v.as_str())
    }

    /// The principal of a route that is not public.
    pub fn principal(&self) -> &Principal {
        self.principal
            .as_ref()
            .expect("the router authenticates routes with a permission")
    }

    /// Parse a JSON body: 415 unless `application/json`, 400 if it is not
    /// JSON, 422 naming the field if it does not fit `T` (unknown fields
    /// included, when `T` denies them).
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        let content_type = self.header("content-type").unwrap_or("");
        let essence = content_type.split(';').next().unwrap_or("").trim();
        if !essence.eq_ignore_ascii_case("application/json") {
            return Err(ApiError::unsupported_media_type("application/json"));
        }
        // Syntax first, so that malformed JSON is a 400 and only
        // well-formed-but-wrong documents are 422s.
        let value: serde_json::Value = serde_json::from_slice(&self.body)
            .map_err(|e| ApiError::malformed_json(format!("the body is not valid JSON: {e}")))?;
        serde_path_to_error::deserialize(value).map_err(|e| {
            let field = match e.path().to_string() {
                p if p == "." => "$".to_string(),
                p => p,
            };
            ApiError::validation(vec![FieldError {
                field,
                message: e.inner().to_string(),
            }])
        })
    }
}

/// `trusted_proxies`: CIDRs of the proxies in front of the app whose
/// `X-Forwarded-For` is believed (none by default). A bad value believes no
/// proxy (the runtime's peer is used) and logs the error naming it.
fn trusted_proxies() -> Networks {
    let raw = spin_sdk::variables::get("trusted_proxies").unwrap_or_default();
    Networks::parse(&raw).unwrap_or_else(|why| {
        crate::log::line(serde_json::json!({"level": "error", "msg": "trusted_proxies is invalid; no proxy is trusted", "why": why}));
        Networks::default()
    })
}
