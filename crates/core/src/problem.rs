//! The one error type of every endpoint, rendered as RFC 7807
//! `application/problem+json`. Each kind has a stable `type` URI so clients
//! can branch on it; the cause chain goes to the log, never to the client.

use serde::Serialize;

pub const CONTENT_TYPE: &str = "application/problem+json";

/// The wire form of a problem (what [`ApiError::body`] writes, and what the
/// OpenAPI document describes).
#[derive(Serialize, schemars::JsonSchema)]
#[schemars(rename = "Problem")]
pub struct ProblemDocument<'a> {
    /// `urn:vigil:problem:<kind>`, stable per kind of error.
    #[serde(rename = "type")]
    pub type_: String,
    pub title: &'a str,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<&'a str>,
    /// The request path.
    pub instance: &'a str,
    pub request_id: &'a str,
    /// For validation errors: each violated rule, by field.
    #[serde(default, skip_serializing_if = "<[_]>::is_empty")]
    pub errors: &'a [FieldError],
}

/// A field that failed validation, named by its JSON path (e.g. `events[3].source_ip`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    /// Stable slug; the `type` URI is `urn:vigil:problem:<slug>`.
    pub kind: &'static str,
    pub title: &'static str,
    pub detail: Option<String>,
    pub errors: Vec<FieldError>,
    /// For 405: the methods the resource does allow.
    pub allow: Vec<&'static str>,
}

impl ApiError {
    pub fn new(status: u16, kind: &'static str, title: &'static str) -> ApiError {
        ApiError {
            status,
            kind,
            title,
            detail: None,
            errors: vec![],
            allow: vec![],
        }
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> ApiError {
        self.detail = Some(detail.into());
        self
    }

    pub fn bad_request(detail: impl Into<String>) -> ApiError {
        ApiError::new(400, "bad-request", "Bad request").with_detail(detail)
    }
    pub fn malformed_json(detail: impl Into<String>) -> ApiError {
        ApiError::new(400, "malformed-json", "Malformed JSON").with_detail(detail)
    }
    pub fn unauthenticated(detail: impl Into<String>) -> ApiError {
        ApiError::new(401, "unauthenticated", "Authentication required").with_detail(detail)
    }
    pub fn forbidden(permission: &str) -> ApiError {
        ApiError::new(403, "forbidden", "Forbidden")
            .with_detail(format!("this operation needs the {permission} permission"))
    }
    pub fn not_found() -> ApiError {
        ApiError::new(404, "not-found", "Not found")
    }
    pub fn method_not_allowed(allow: Vec<&'static str>) -> ApiError {
        ApiError {
            allow,
            ..ApiError::new(405, "method-not-allowed", "Method not allowed")
        }
    }
    pub fn conflict(detail: impl Into<String>) -> ApiError {
        ApiError::new(409, "conflict", "Conflict").with_detail(detail)
    }
    pub fn precondition_failed(detail: impl Into<String>) -> ApiError {
        ApiError::new(412, "precondition-failed", "Precondition failed").with_detail(detail)
    }
    pub fn payload_too_large(limit: usize) -> ApiError {
        ApiError::new(413, "payload-too-large", "Payload too large")
            .with_detail(format!("the request body is limited to {limit} bytes"))
    }
    pub fn unsupported_media_type(expected: &str) -> ApiError {
        ApiError::new(415, "unsupported-media-type", "Unsupported media type")
            .with_detail(format!("send the body as {expected}"))
    }
    /// A 422 naming one field.
    pub fn invalid_field(field: &str, message: impl Into<String>) -> ApiError {
        ApiError::validation(vec![FieldError {
            field: field.into(),
            message: message.into(),
        }])
    }
    pub fn validation(errors: Vec<FieldError>) -> ApiError {
        ApiError {
            errors,
            ..ApiError::new(422, "validation", "Validation failed")
        }
    }
    pub fn too_many_requests(detail: impl Into<String>) -> ApiError {
        ApiError::new(429, "too-many-requests", "Too many requests").with_detail(detail)
    }
    /// Something on our side failed; the detail stays in the log.
    pub fn internal() -> ApiError {
        ApiError::new(500, "internal", "Internal error")
    }
    pub fn unavailable(detail: impl Into<String>) -> ApiError {
        ApiError::new(503, "unavailable", "Service unavailable").with_detail(detail)
    }

    pub fn type_uri(&self) -> String {
        format!("urn:vigil:problem:{}", self.kind)
    }

    /// The problem document. `instance` is the request path.
    pub fn body(&self, instance: &str, request_id: &str) -> String {
        serde_json::to_string(&ProblemDocument {
            type_: self.type_uri(),
            title: self.title,
            status: self.status,
            detail: self.detail.as_deref(),
            instance,
            request_id,
            errors: &self.errors,
        })
        .expect("problem serializes")
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status, self.title)?;
        if let Some(d) = &self.detail {
            write!(f, ": {d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problem_documents_have_stable_types_and_field_paths() {
        let err = ApiError::validation(vec![FieldError {
            field: "events[0].source_ip".into(),
            message: "not an IP address".into(),
        }]);
        let doc: serde_json::Value = serde_json::from_str(&err.body("/api/x", "r1")).unwrap();
        assert_eq!(doc["type"], "urn:vigil:problem:validation");
        assert_eq!(doc["status"], 422);
        assert_eq!(doc["instance"], "/api/x");
        assert_eq!(doc["errors"][0]["field"], "events[0].source_ip");
        let doc: serde_json::Value =
            serde_json::from_str(&ApiError::not_found().body("/", "r")).unwrap();
        assert!(doc.get("errors").is_none() && doc.get("detail").is_none());
    }
}
