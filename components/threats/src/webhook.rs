//! Playbook webhooks: one JSON POST through `wasi:http/outgoing-handler`,
//! with timeouts (spin-sdk's `send` takes no request options). Spin (and the
//! host) refuse any origin not in the component's `allowed_outbound_hosts`.

use std::time::Duration;

use vigil_core::time::now_millis;
use vigil_ingest::playbook::{SIGNATURE_HEADER, webhook_signature};
use wasi::http::outgoing_handler;
use wasi::http::types::{Fields, Method, OutgoingBody, OutgoingRequest, RequestOptions, Scheme};

/// Connect, first byte and between bytes, each.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// POST `body` to `url`, signed when `secret` (the `webhook_secret`
/// setting) is given; the response status, or why it failed.
pub fn post_json(url: &str, body: &[u8], secret: Option<&str>) -> Result<u16, String> {
    let (scheme, rest) = url.split_once("://").ok_or("not an absolute URL")?;
    let scheme = match scheme {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        other => return Err(format!("scheme {other:?} is not http or https")),
    };
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) => (&rest[..i], rest[i..].to_string()),
        None => (rest, "/".to_string()),
    };
    let path = if path.starts_with('?') {
        format!("/{path}")
    } else {
        path
    };
    let mut headers = vec![
        ("content-type".to_string(), b"application/json".to_vec()),
        ("user-agent".to_string(), b"vigil-playbook".to_vec()),
        // A length rather than a chunked body: receivers handle it more widely.
        (
            "content-length".to_string(),
            body.len().to_string().into_bytes(),
        ),
    ];
    if let Some(secret) = secret {
        let signature = webhook_signature(secret, now_millis() / 1000, body);
        headers.push((SIGNATURE_HEADER.to_string(), signature.into_bytes()));
    }
    let headers = Fields::from_list(&headers).map_err(|e| format!("headers: {e:?}"))?;
    let request = OutgoingRequest::new(headers);
    let set = request.set_method(&Method::Post).is_ok()
        && request.set_scheme(Some(&scheme)).is_ok()
        && request.set_authority(Some(authority)).is_ok()
        && request.set_path_with_query(Some(&path)).is_ok();
    if !set {
        return Err("the URL's host or path is not valid".into());
    }
    let outgoing = request.body().map_err(|_| "no request body")?;
    let options = RequestOptions::new();
    let nanos = Some(TIMEOUT.as_nanos() as u64);
    // A runtime that does not support a timeout keeps its own default.
    let _ = options.set_connect_timeout(nanos);
    let _ = options.set_first_byte_timeout(nanos);
    let _ = options.set_between_bytes_timeout(nanos);
    let future = outgoing_handler::handle(request, Some(options)).map_err(|e| describe(&e))?;
    {
        let stream = outgoing.write().map_err(|_| "no request body stream")?;
        // blocking_write_and_flush takes at most 4096 bytes per call.
        for chunk in body.chunks(4096) {
            stream
                .blocking_write_and_flush(chunk)
                .map_err(|e| format!("sending the body: {e:?}"))?;
        }
    }
    OutgoingBody::finish(outgoing, None).map_err(|e| describe(&e))?;
    future.subscribe().block();
    match future.get() {
        Some(Ok(Ok(response))) => Ok(response.status()),
        Some(Ok(Err(e))) => Err(describe(&e)),
        _ => Err("no response".into()),
    }
}

fn describe(e: &wasi::http::types::ErrorCode) -> String {
    use wasi::http::types::ErrorCode::*;
    match e {
        HttpRequestDenied => "denied: the URL's origin is not the configured webhook_origin".into(),
        ConnectionTimeout | ConnectionReadTimeout | ConnectionWriteTimeout => {
            format!("timed out after {} s", TIMEOUT.as_secs())
        }
        ConnectionRefused => "connection refused".into(),
        DnsError(_) => "the host name did not resolve".into(),
        other => format!("{other:?}"),
    }
}
