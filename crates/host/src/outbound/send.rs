//! Acting on a policy's verdict: the `WasiHttpHooks` of one instance, and
//! the sending itself (Spin's crates/factor-outbound-http/src/wasi.rs).

use std::net::SocketAddr;
use std::sync::Arc;

use http::Uri;
use http::header::{HOST, HeaderValue};
use wasmtime_wasi_http::p2::bindings::http::types::ErrorCode;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::p2::default_send_request_handler;
use wasmtime_wasi_http::p2::types::{
    HostFutureIncomingResponse, IncomingResponse, OutgoingRequestConfig,
};
use wasmtime_wasi_http::p2::{HttpResult, WasiHttpHooks};

use super::policy::{Decision, OutboundPolicy};

/// The `WasiHttpHooks` of one instance.
pub struct OutboundHttp {
    policy: Arc<OutboundPolicy>,
    /// This server's listen address, for self-requests (none: they fail).
    self_origin: Option<SocketAddr>,
}

impl OutboundHttp {
    pub fn new(policy: Arc<OutboundPolicy>, self_origin: Option<SocketAddr>) -> Self {
        Self {
            policy,
            self_origin,
        }
    }
}

impl WasiHttpHooks for OutboundHttp {
    fn send_request(
        &mut self,
        request: hyper::Request<HyperOutgoingBody>,
        config: OutgoingRequestConfig,
    ) -> HttpResult<HostFutureIncomingResponse> {
        let decision = self.policy.decide(request.uri());
        if let Err(e) = &self.policy.allowed {
            eprintln!(
                "vigil-host: component {:?}: outbound request denied: invalid allowed_outbound_hosts ({e})",
                self.policy.component
            );
        }
        let origin = self.self_origin;
        // Like Spin, even a denial is the FUTURE's result, not `handle`'s.
        let task = wasmtime_wasi::runtime::spawn(async move {
            Ok(send(request, config, decision, origin).await)
        });
        Ok(HostFutureIncomingResponse::pending(task))
    }
}

async fn send(
    mut request: hyper::Request<HyperOutgoingBody>,
    mut config: OutgoingRequestConfig,
    decision: Decision,
    self_origin: Option<SocketAddr>,
) -> Result<IncomingResponse, ErrorCode> {
    match decision {
        Decision::Deny => return Err(ErrorCode::HttpRequestDenied),
        Decision::ServiceChaining => {
            return Err(ErrorCode::InternalError(Some(
                "service chaining (*.spin.internal) is not supported by vigil-host".into(),
            )));
        }
        Decision::SendToSelf => {
            let Some(origin) = self_origin else {
                return Err(ErrorCode::HttpRequestUriInvalid);
            };
            let mut parts = http::uri::Parts::default();
            parts.scheme = Some(http::uri::Scheme::HTTP);
            parts.authority = Some(
                origin
                    .to_string()
                    .parse()
                    .map_err(|_| ErrorCode::HttpRequestUriInvalid)?,
            );
            parts.path_and_query = request.uri().path_and_query().cloned();
            *request.uri_mut() =
                Uri::from_parts(parts).map_err(|_| ErrorCode::HttpRequestUriInvalid)?;
            config.use_tls = false;
        }
        Decision::Send => {}
    }
    set_host_header(&mut request);
    let first_byte = config.first_byte_timeout;
    tokio::time::timeout(first_byte, default_send_request_handler(request, config))
        .await
        .unwrap_or(Err(ErrorCode::ConnectionReadTimeout))
}

/// Spin drops the guest's `Host` and hyper-util's client re-derives it from
/// the URI: the host, plus the port unless it is the scheme's default.
fn set_host_header<B>(request: &mut hyper::Request<B>) {
    let uri = request.uri().clone();
    request.headers_mut().remove(HOST);
    let Some(host) = uri.host() else {
        return;
    };
    let secure = uri.scheme() == Some(&http::uri::Scheme::HTTPS);
    let value = match uri.port_u16() {
        Some(443) if secure => host.to_string(),
        Some(80) if !secure => host.to_string(),
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    };
    if let Ok(v) = HeaderValue::from_str(&value) {
        request.headers_mut().insert(HOST, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbound::policy::tests::resolver;

    // Real sending, against a tiny server on 127.0.0.1:0.

    use std::time::Duration;

    use bytes::Bytes;
    use http_body_util::{BodyExt, Full};

    /// Echoes `method path host body` as the response body; `/slow` answers
    /// after 2 s.
    async fn echo_server() -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        |req: hyper::Request<hyper::body::Incoming>| async move {
                            if req.uri().path() == "/slow" {
                                tokio::time::sleep(Duration::from_secs(2)).await;
                            }
                            let head = format!(
                                "{} {} {} ",
                                req.method(),
                                req.uri(),
                                req.headers()
                                    .get(HOST)
                                    .and_then(|h| h.to_str().ok())
                                    .unwrap_or("-")
                            );
                            let body = req.into_body().collect().await?.to_bytes();
                            let mut out = head.into_bytes();
                            out.extend_from_slice(&body);
                            Ok::<_, hyper::Error>(hyper::Response::new(Full::new(Bytes::from(out))))
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        addr
    }

    fn request(method: &str, url: &str, body: &str) -> hyper::Request<HyperOutgoingBody> {
        let uri: Uri = url.parse().unwrap();
        // As wasmtime's `handle` builds it: Host = the guest's authority.
        let host = uri.authority().unwrap().to_string();
        hyper::Request::builder()
            .method(method)
            .uri(uri)
            .header(HOST, host)
            .header("content-type", "application/json")
            .body(
                Full::new(Bytes::from(body.to_string()))
                    .map_err(|never| match never {})
                    .boxed_unsync(),
            )
            .unwrap()
    }

    fn config(first_byte: Duration) -> OutgoingRequestConfig {
        OutgoingRequestConfig {
            use_tls: false,
            connect_timeout: Duration::from_secs(5),
            first_byte_timeout: first_byte,
            between_bytes_timeout: Duration::from_secs(5),
        }
    }

    async fn send_via_hook(
        hooks: &mut OutboundHttp,
        req: hyper::Request<HyperOutgoingBody>,
        first_byte: Duration,
    ) -> Result<(u16, String), ErrorCode> {
        let fut = hooks
            .send_request(req, config(first_byte))
            .expect("handle itself never fails");
        let HostFutureIncomingResponse::Pending(task) = fut else {
            panic!("expected a pending future");
        };
        let resp = task.await.expect("no trap")?;
        let status = resp.resp.status().as_u16();
        let body = resp.resp.into_body().collect().await?.to_bytes();
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }

    /// `ErrorCode` has no `PartialEq`: compare its variant name.
    fn assert_code(err: ErrorCode, want: &str) {
        assert_eq!(format!("{err:?}"), format!("ErrorCode::{want}"));
    }

    fn hooks_for(origin_var: &str, entries: &[&str], listen: Option<SocketAddr>) -> OutboundHttp {
        let r = resolver(&[("webhook_origin", Some(origin_var))]);
        let entries: Vec<String> = entries.iter().map(|s| s.to_string()).collect();
        OutboundHttp::new(
            Arc::new(OutboundPolicy::load("t", &entries, &r).unwrap()),
            listen,
        )
    }

    #[tokio::test]
    async fn allowed_request_is_sent_for_real() {
        let addr = echo_server().await;
        let origin = format!("http://{addr}");
        let mut hooks = hooks_for(&origin, &["{{ webhook_origin }}"], None);

        let (status, body) = send_via_hook(
            &mut hooks,
            request("POST", &format!("{origin}/hook?x=1"), r#"{"alert":7}"#),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        assert_eq!(status, 200);
        assert_eq!(body, format!(r#"POST /hook?x=1 {addr} {{"alert":7}}"#));

        // Another port on the same host, another host: denied, as the future's result.
        let other = format!("http://127.0.0.1:{}/hook", addr.port() + 1);
        let denied = send_via_hook(
            &mut hooks,
            request("POST", &other, "{}"),
            Duration::from_secs(5),
        );
        assert_code(denied.await.unwrap_err(), "HttpRequestDenied");
        let denied = send_via_hook(
            &mut hooks,
            request("GET", "https://example.com/", ""),
            Duration::from_secs(5),
        );
        assert_code(denied.await.unwrap_err(), "HttpRequestDenied");
    }

    #[tokio::test]
    async fn first_byte_timeout_and_refused_connection() {
        let addr = echo_server().await;
        let mut hooks = hooks_for("http://unused.invalid", &["http://127.0.0.1:*"], None);
        let slow = format!("http://{addr}/slow");
        let err = send_via_hook(
            &mut hooks,
            request("GET", &slow, ""),
            Duration::from_millis(200),
        )
        .await
        .unwrap_err();
        assert_code(err, "ConnectionReadTimeout");

        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let url = format!("http://127.0.0.1:{port}/");
        let err = send_via_hook(&mut hooks, request("GET", &url, ""), Duration::from_secs(5))
            .await
            .unwrap_err();
        assert_code(err, "ConnectionRefused");
    }

    #[tokio::test]
    async fn self_requests_go_to_the_listen_address() {
        let addr = echo_server().await;
        let mut hooks = hooks_for("http://unused.invalid", &["http://self"], Some(addr));
        let (_, body) = send_via_hook(
            &mut hooks,
            request("GET", "http://self.alt/api/x?y=2", ""),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        assert_eq!(body, format!("GET /api/x?y=2 {addr} "));

        // Without a server (no listen address) a self-request is invalid, as in Spin.
        let mut hooks = hooks_for("http://unused.invalid", &["http://self"], None);
        let err = send_via_hook(
            &mut hooks,
            request("GET", "http://self.alt/", ""),
            Duration::from_secs(5),
        )
        .await
        .unwrap_err();
        assert_code(err, "HttpRequestUriInvalid");
    }

    #[test]
    fn host_header_from_uri() {
        let mut req = hyper::Request::builder()
            .uri("http://127.0.0.1:80/x")
            .header(HOST, "127.0.0.1:80")
            .body(())
            .unwrap();
        set_host_header(&mut req);
        assert_eq!(req.headers()[HOST], "127.0.0.1");
        let mut req = hyper::Request::builder()
            .uri("https://example.com:8443/")
            .body(())
            .unwrap();
        set_host_header(&mut req);
        assert_eq!(req.headers()[HOST], "example.com:8443");
    }
}
