//! The HTTP front end: hyper 1 over a given listener, Spin's routing and
//! request headers, and the wasi:http incoming-handler call per request.
//!
//! Follows Spin's crates/trigger-http/src/{server.rs,headers.rs,wasi.rs}.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use http::uri::{Authority, Scheme};
use http::{HeaderName, HeaderValue, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use wasmtime_wasi_http::p2::WasiHttpView;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme as WasiScheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use crate::engine::Runtime;
use crate::routes::{RouteMatch, Router};

const WELL_KNOWN_PREFIX: &str = "/.well-known/spin/";

/// What a request handler needs; shared by all connections.
pub struct App {
    pub runtime: Runtime,
    pub router: Router,
    pub name: String,
    pub version: Option<String>,
}

fn body(bytes: impl Into<Bytes>) -> HyperOutgoingBody {
    Full::new(bytes.into())
        .map_err(|never: Infallible| match never {})
        .boxed_unsync()
}

fn status(code: StatusCode) -> Response<HyperOutgoingBody> {
    let mut r = Response::new(body(Bytes::new()));
    *r.status_mut() = code;
    r
}

/// Serves connections until `shutdown` resolves; in-flight connections are
/// left to finish on their own tasks.
pub async fn serve(
    app: Arc<App>,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<()> {
    tokio::pin!(shutdown);
    // Where components' self-requests (`http://self.alt/...`) go, like
    // Spin's `SelfRequestOrigin` (its listen address, plain http).
    let listen_addr = listener.local_addr().ok();
    loop {
        let (stream, client_addr) = tokio::select! {
            _ = &mut shutdown => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // e.g. EMFILE under load: back off instead of spinning.
                    eprintln!("vigil-host: accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let app = app.clone();
                async move { handle_logged(app, req, client_addr, listen_addr).await }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn handle_logged(
    app: Arc<App>,
    req: Request<Incoming>,
    client_addr: SocketAddr,
    listen_addr: Option<SocketAddr>,
) -> Result<Response<HyperOutgoingBody>> {
    let start = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let result = handle(&app, req, client_addr, listen_addr).await;
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    match &result {
        Ok(r) => eprintln!("{method} {path} {} {ms:.1}ms", r.status().as_u16()),
        Err(e) => eprintln!("{method} {path} error {ms:.1}ms: {e:#}"),
    }
    result
}

async fn handle(
    app: &App,
    req: Request<Incoming>,
    client_addr: SocketAddr,
    listen_addr: Option<SocketAddr>,
) -> Result<Response<HyperOutgoingBody>> {
    let path = req.uri().path().to_string();
    if let Some(well_known) = path.strip_prefix(WELL_KNOWN_PREFIX) {
        return Ok(match well_known {
            "health" => Response::new(body("OK")),
            "info" => {
                let mut info = serde_json::json!({ "name": app.name });
                if let Some(v) = &app.version {
                    info["version"] = v.clone().into();
                }
                let mut r = Response::new(body(serde_json::to_vec_pretty(&info)?));
                r.headers_mut()
                    .insert("content-type", HeaderValue::from_static("application/json"));
                r
            }
            _ => status(StatusCode::NOT_FOUND),
        });
    }
    // Spin answers an unrouted path with an empty 404 (server.rs, `not_found`).
    let Some(route) = app.router.route(&path) else {
        return Ok(status(StatusCode::NOT_FOUND));
    };
    let req = set_req_uri(req)?;
    match run_component(app, req, &route, client_addr, listen_addr).await {
        Ok(r) => Ok(r),
        Err(e) => {
            // A trap, panic or missing response: an empty 500, like Spin's
            // `internal_error(None, ..)`; the host keeps serving.
            // One line: the context chain's head and the root cause (a trap's
            // wasm backtrace is in between and would flood the log).
            let root = e.root_cause().to_string();
            let root = root.lines().last().unwrap_or_default();
            eprintln!(
                "vigil-host: component {:?} failed: {e}: {root}",
                route.component
            );
            Ok(status(StatusCode::INTERNAL_SERVER_ERROR))
        }
    }
}

/// Gives the request URI Spin's absolute form: scheme plus the `Host`
/// header's authority (server.rs, `set_req_uri`). No `Host` → error, which
/// like Spin drops the connection without a response.
fn set_req_uri(mut req: Request<Incoming>) -> Result<Request<Incoming>> {
    let mut parts = req.uri().clone().into_parts();
    let header_authority = req
        .headers()
        .get(http::header::HOST)
        .map(|h| -> Result<Authority> {
            h.to_str()
                .context("'Host' header is not valid UTF-8")?
                .parse()
                .context("'Host' header contains an invalid authority")
        })
        .transpose()?;
    let authority = match (header_authority, parts.authority.take()) {
        (None, None) => bail!("no 'Host' header present in request"),
        (None, Some(a)) | (Some(a), None) => a,
        (Some(a1), Some(a2)) => {
            if a1 != a2 {
                bail!("authority in 'Host' header does not match authority in URI");
            }
            a1
        }
    };
    parts.scheme = Some(Scheme::HTTP);
    parts.authority = Some(authority);
    *req.uri_mut() = Uri::from_parts(parts)?;
    Ok(req)
}

/// The `spin-*` headers, in Spin's order (headers.rs, `compute_default_headers`).
pub fn spin_headers(
    uri: &Uri,
    host: &str,
    route: &RouteMatch,
    client_addr: SocketAddr,
) -> Vec<(String, String)> {
    let abs_path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let scheme = uri.scheme_str().unwrap_or("http");
    let mut out = vec![
        ("spin-path-info".into(), route.path_info.clone()),
        (
            "spin-full-url".into(),
            format!("{scheme}://{host}{abs_path}"),
        ),
        ("spin-matched-route".into(), route.based_route.clone()),
        ("spin-base-path".into(), "/".into()),
        ("spin-raw-component-route".into(), route.raw_route.clone()),
        (
            "spin-component-route".into(),
            route.raw_route_or_prefix.clone(),
        ),
        ("spin-client-addr".into(), client_addr.to_string()),
    ];
    for (name, value) in &route.named_wildcards {
        out.push((
            format!(
                "spin-path-match-{}",
                name.to_ascii_lowercase().replace('_', "-")
            ),
            value.clone(),
        ));
    }
    out
}

/// Rebuilds the header map as Spin's wasi executor does (wasi.rs,
/// `prepare_request`): the client's headers, then the `spin-*` ones APPENDED,
/// so a client-sent `spin-path-info` is not replaced. A non-UTF-8 header
/// value fails the request (500), as in Spin.
fn prepare_headers(
    req: &mut Request<Incoming>,
    route: &RouteMatch,
    client_addr: SocketAddr,
) -> Result<()> {
    for v in req.headers().values() {
        std::str::from_utf8(v.as_bytes()).context("request header is not UTF-8")?;
    }
    let host = req
        .headers()
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost")
        .to_string();
    let extra = spin_headers(req.uri(), &host, route, client_addr);
    let headers = req.headers_mut();
    for (k, v) in extra {
        if let (Ok(name), Ok(value)) = (k.parse::<HeaderName>(), HeaderValue::from_str(&v)) {
            headers.append(name, value);
        }
    }
    Ok(())
}

async fn run_component(
    app: &App,
    mut req: Request<Incoming>,
    route: &RouteMatch,
    client_addr: SocketAddr,
    listen_addr: Option<SocketAddr>,
) -> Result<Response<HyperOutgoingBody>> {
    let component = app
        .runtime
        .components
        .get(&route.component)
        .ok_or_else(|| anyhow!("unknown component {:?}", route.component))?
        .clone();
    prepare_headers(&mut req, route, client_addr)?;

    let mut store = app.runtime.new_request_store(&component, listen_addr)?;
    let proxy = component.pre.instantiate_async(&mut store).await?;
    let req = req.map(|b| b.map_err(wasmtime_wasi_http::p2::hyper_request_error));
    let (tx, rx) = tokio::sync::oneshot::channel();
    let (request, outparam) = {
        let mut http = store.data_mut().http();
        let request = http.new_incoming_request(WasiScheme::Http, req)?;
        let outparam = http.new_response_outparam(tx)?;
        (request, outparam)
    };

    // The guest keeps running (streaming the body) after it hands over the
    // response head, so it runs on its own task.
    let task = tokio::spawn(async move {
        proxy
            .wasi_http_incoming_handler()
            .call_handle(&mut store, request, outparam)
            .await
    });

    match rx.await {
        Ok(response) => {
            let id = component.id.clone();
            tokio::spawn(async move {
                match task.await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        eprintln!(
                            "vigil-host: component {id:?} failed after response started: {e:#}"
                        )
                    }
                    Err(e) => eprintln!("vigil-host: component {id:?} task panicked: {e}"),
                }
            });
            response.map_err(|code| anyhow!("guest failed to produce a response: {code:?}"))
        }
        Err(_) => {
            task.await
                .context("guest invocation panicked")?
                .map_err(anyhow::Error::from)
                .context("guest invocation failed")?;
            Err(anyhow!(
                "guest failed to produce a response prior to returning"
            ))
        }
    }
}
