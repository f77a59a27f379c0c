//! A plain blocking HTTP client for the tests: any method, any headers, the
//! status, headers and body exactly as the server sent them.

use anyhow::Result;

pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    /// Assert this is an RFC 7807 problem with `status` and the slug `kind`.
    #[track_caller]
    pub fn assert_problem(&self, status: u16, kind: &str) -> serde_json::Value {
        assert_eq!(self.status, status, "status; body: {}", self.text());
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "content type"
        );
        let doc = self.json();
        assert_eq!(doc["type"], format!("urn:vigil:problem:{kind}"), "{doc}");
        assert_eq!(doc["status"], status, "{doc}");
        assert!(doc["title"].is_string(), "{doc}");
        doc
    }
}

pub fn request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Result<Resp> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .allow_non_standard_methods(true)
        .max_redirects(0)
        .build()
        .into();
    let mut builder = ureq::http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    let mut response = match body {
        Some(body) => agent.run(builder.body(body.to_vec())?)?,
        None => agent.run(builder.body(())?)?,
    };
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = response
        .body_mut()
        .with_config()
        .limit(64 << 20)
        .read_to_vec()?;
    Ok(Resp {
        status,
        headers,
        body,
    })
}

/// Send `head` and `body` over a raw connection and read the response's status
/// line and body, tolerating the server answering (and closing) before the
/// body is fully sent, as servers may for an oversized body.
pub fn send_early_answered(base_url: &str, head: &str, body: &[u8]) -> Result<(u16, String)> {
    use std::io::{Read, Write};
    let addr = base_url.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = std::net::TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(std::time::Duration::from_secs(30)))?;
    stream.write_all(head.as_bytes())?;
    // The server may stop reading at any point: a failed write is expected.
    let _ = stream.write_all(body);
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no HTTP response: {text:?}"))?;
    Ok((status, text))
}
