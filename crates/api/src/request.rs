//! The context a handler receives: the request as read, its path parameters,
//! its principal (when the route demands a permission) and its request id.

use serde::de::DeserializeOwned;
use vigil_core::audit::{Actor, AuditEntry};
use vigil_core::net::client_address;
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
    /// The body of a streamed answer, written after the response's headers
    /// (see [`Ctx::stream`]).
    pub stream: Option<crate::send::Producer>,
}

impl Ctx {
    /// Answer with `response`'s status and headers now and a body that
    /// `produce` writes afterwards, a piece at a time (each piece goes to
    /// the client as it is written), so an export of any size is never held
    /// whole. An error once the headers are out can only cut the body short:
    /// the transfer is aborted, and the client sees an incomplete response.
    pub fn stream(
        &mut self,
        response: spin_sdk::http::Response,
        produce: impl FnOnce(&mut crate::send::Chunks<'_>) -> Result<(), ApiError> + 'static,
    ) -> spin_sdk::http::Response {
        self.stream = Some(Box::new(produce));
        response
    }

    /// The first value of a header (names compare case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
    }

    /// The `User-Agent`, cut to at most 256 bytes on a character boundary
    /// (as a session stores it).
    pub fn user_agent(&self) -> Option<&str> {
        self.header("user-agent").map(|ua| cut(ua, 256))
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
        // The router refuses every request (503) while the setting is bad.
        let trusted = crate::settings::shared()
            .map(|s| s.trusted_proxies.clone())
            .unwrap_or_default();
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

/// `text` cut to at most `max_bytes` bytes, on a character boundary (a byte
/// slice could split a multi-byte character, and panic).
pub fn cut(text: &str, max_bytes: usize) -> &str {
    let mut end = text.len().min(max_bytes);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::cut;

    #[test]
    fn cuts_fall_on_character_boundaries() {
        assert_eq!(cut("abc", 256), "abc");
        assert_eq!(cut("abcdef", 3), "abc");
        // 255 ASCII bytes then a 3-byte character across the 256th byte.
        let ua = format!("{}€tail", "a".repeat(255));
        assert_eq!(cut(&ua, 256), "a".repeat(255));
        let all = "é".repeat(200);
        assert_eq!(cut(&all, 256).len(), 256);
        assert_eq!(cut(&all, 255).len(), 254);
        assert_eq!(cut("", 0), "");
    }
}
