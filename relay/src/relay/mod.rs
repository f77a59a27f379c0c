//! `vigil relay`: WebSocket push from the `events` outbox, MQTT ingestion,
//! and the scheduled jobs.
//!
//! One tokio process: an HTTP server (`/ws`, `/healthz`, `/readyz`,
//! `/metrics`), one poller tailing the outbox and the audit log by id, a
//! hub fanning each batch out to the sockets' bounded queues, the MQTT
//! ingester (when configured) and the job runner.
//!
//! - [`config`]: the `VIGIL_RELAY_*` / `VIGIL_JWT_*` settings.
//! - [`protocol`]: channels, filters, the JSON messages.
//! - [`auth`]: tokens and API keys, checked as the components check them.
//! - [`outbox`]: reading the outbox and audit log; the poller; resume rules.
//! - [`hub`]: sockets, subscriptions, fan-out, the resume seam, queue policy.
//! - [`session`]: one connection (its reader and its writer).
//! - [`snapshot`]: what a subscription starts from.
//! - [`ingest`]: MQTT ingestion through the shared pipeline, with dead letters.
//! - [`control`]: each sensor's configuration, retained on its control topic.
//! - [`jobs`]: the scheduled jobs (SLA escalation, sensor staleness, retention,
//!   automatic playbooks), one runner each; [`webhook`]: the playbooks' webhooks.
//! - [`db`], [`metrics`], [`log`]: connections, counters, log lines.
//!
//! [`run`] serves on a bound listener until `shutdown` resolves, so tests
//! bind `127.0.0.1:0` and speak the real protocol to it.

pub mod auth;
pub mod config;
pub mod control;
pub mod db;
pub mod hub;
pub mod ingest;
pub mod jobs;
pub mod log;
pub mod metrics;
pub mod outbox;
pub mod protocol;
pub mod session;
pub mod snapshot;
#[cfg(test)]
mod tests;
pub mod vars;
pub mod webhook;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use anyhow::{Context, Result};
use axum::Router;
use axum::extract::ws::{WebSocketUpgrade, rejection::WebSocketUpgradeRejection};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::serve::ListenerExt;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use vigil_core::ApiError;
use vigil_db::Target;

use config::Config;
use db::Pool;
use hub::Hub;
use metrics::Metrics;

/// The subprotocol the relay speaks (and answers with).
pub const PROTOCOL: &str = "vigil.v1";

/// Each socket's initial read buffer.
const READ_BUFFER: usize = 4096;

/// Hard cap on one WebSocket message at the framing layer; anything above
/// [`config::MAX_MESSAGE_BYTES`] is refused with 1009 by the session.
const FRAME_LIMIT: usize = 1024 * 1024;

/// What every connection shares.
pub struct Shared {
    pub config: Config,
    pub hub: Arc<Hub>,
    pub pool: Arc<Pool>,
    pub metrics: Arc<Metrics>,
    pub shutdown: watch::Receiver<bool>,
    pub next_connection: AtomicU64,
    connections: Arc<Semaphore>,
}

/// Serve on `listener` until `shutdown` resolves: then stop accepting, close
/// every socket with 1001, and return once they are closed (at most ~10 s).
pub async fn run(
    listener: TcpListener,
    config: Config,
    target: Target,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let metrics = Arc::new(Metrics::default());
    // The poller has a connection of its own, so readers never delay it.
    let poll_pool = Arc::new(Pool::new(target.clone(), 1));
    let (outbox_head, audit_head) = {
        let conn = poll_pool.get().await?;
        outbox::heads(conn.conn()).await.with_context(|| {
            format!("cannot read the outbox at {target:?} (run `vigil migrate`?)")
        })?
    };
    let hub = Arc::new(Hub::new(
        outbox_head,
        audit_head,
        config.client_queue,
        metrics.clone(),
    ));
    let (stop, stopped) = watch::channel(false);
    let shared = Arc::new(Shared {
        hub: hub.clone(),
        pool: Arc::new(Pool::new(target.clone(), config.db_connections)),
        metrics: metrics.clone(),
        shutdown: stopped.clone(),
        next_connection: AtomicU64::new(1),
        connections: Arc::new(Semaphore::new(config.max_connections)),
        config,
    });
    // With MQTT on, the poller tells sensor control which sensors changed.
    let (control_tx, control_rx) = match shared.config.mqtt {
        Some(_) => {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            (Some(tx), Some(rx))
        }
        None => (None, None),
    };
    let poller = tokio::spawn(outbox::poll(
        hub,
        poll_pool,
        metrics.clone(),
        shared.config.poll,
        control_tx,
        stopped.clone(),
    ));
    let ingester = shared
        .config
        .mqtt
        .clone()
        .zip(control_rx)
        .map(|(mqtt, control)| {
            tokio::spawn(ingest::run(
                mqtt,
                target.clone(),
                metrics.clone(),
                control,
                stopped.clone(),
            ))
        });

    let jobs = tokio::spawn(jobs::run(
        shared.config.jobs.clone(),
        target.clone(),
        metrics.jobs.clone(),
        stopped.clone(),
    ));

    let app = Router::new()
        .route("/ws", get(upgrade))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(prometheus))
        .fallback(not_found)
        .with_state(shared.clone());
    let addr = listener.local_addr()?;
    let send_buffer = shared.config.send_buffer;
    let listener = listener.tap_io(move |tcp| {
        // Best effort: the OS may round it, or refuse it, and serve anyway.
        let _ = socket2::SockRef::from(&*tcp).set_send_buffer_size(send_buffer);
    });
    log::line(
        json!({"level": "info", "msg": "relay listening", "ws": format!("ws://{addr}/ws"),
                     "database": format!("{target:?}"), "outbox_position": outbox_head}),
    );
    let signal = async move {
        shutdown.await;
        log::line(json!({"level": "info", "msg": "shutting down"}));
        let _ = stop.send(true);
    };
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(signal)
    .await?;

    // Upgraded sockets outlive the HTTP server: wait for their 1001 closes.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(12);
    while metrics.connections.load(Relaxed) > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = poller.await;
    let _ = jobs.await;
    if let Some(ingester) = ingester
        && let Ok(Err(e)) = ingester.await
    {
        log::line(
            json!({"level": "error", "msg": "mqtt ingestion stopped", "error": format!("{e:#}")}),
        );
    }
    log::line(json!({"level": "info", "msg": "stopped"}));
    Ok(())
}

/// `vigil relay`: settings from the environment, listen, and run until
/// SIGTERM or Ctrl-C.
pub async fn main(target: Target) -> Result<()> {
    let config = Config::from_env()?;
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {} (VIGIL_RELAY_LISTEN)", config.listen))?;
    run(listener, config, target, terminated()).await
}

/// Resolves once the relay is stopping (or its stop switch is gone).
pub async fn stopping(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

async fn terminated() {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("a SIGTERM handler");
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

fn problem(e: ApiError, path: &str) -> Response {
    let body = e.body(path, &vigil_core::id::new_id());
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [(header::CONTENT_TYPE, "application/problem+json")],
        body,
    )
        .into_response()
}

/// `GET /ws`: checks that need no token (origin, no token in the query
/// string, the connection limit), then the upgrade; the token is checked
/// on the socket so that a refusal is a close code a browser can see.
async fn upgrade(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    uri: Uri,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let path = uri.path();
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    if !shared.config.origin_allowed(origin) {
        Metrics::add(&shared.metrics.refused_connections_total);
        return problem(
            ApiError::new(403, "origin-not-allowed", "Origin not allowed")
                .with_detail("this origin is not in VIGIL_RELAY_ALLOWED_ORIGINS"),
            path,
        );
    }
    if uri
        .query()
        .is_some_and(|q| q.to_ascii_lowercase().contains("token"))
    {
        return problem(
            ApiError::bad_request(
                "tokens are never accepted in the query string: send {\"type\":\"auth\",\"token\":…} or the subprotocol pair vigil.v1, bearer.<token>",
            ),
            path,
        );
    }
    let ws = match ws {
        Ok(ws) => ws,
        Err(_) => {
            let mut r = problem(
                ApiError::new(426, "upgrade-required", "Upgrade required")
                    .with_detail("GET /ws is a WebSocket endpoint"),
                path,
            );
            r.headers_mut().insert(
                header::UPGRADE,
                header::HeaderValue::from_static("websocket"),
            );
            return r;
        }
    };
    let Ok(permit) = shared.connections.clone().try_acquire_owned() else {
        Metrics::add(&shared.metrics.refused_connections_total);
        return problem(
            ApiError::unavailable(
                "the relay is at its connection limit (VIGIL_RELAY_MAX_CONNECTIONS); try again later",
            ),
            path,
        );
    };
    let token = auth::subprotocol_token(ws.requested_protocols().filter_map(|v| v.to_str().ok()));
    ws.protocols([PROTOCOL])
        // Clients send small messages: tungstenite's default 128 KiB read
        // buffer per socket was most of the relay's memory with 10,000 of
        // them (`cargo xtask bench relay`); it still grows for a big one.
        .read_buffer_size(READ_BUFFER)
        .max_message_size(FRAME_LIMIT)
        .max_frame_size(FRAME_LIMIT)
        .on_upgrade(move |socket| session::serve(socket, shared, token, peer, permit))
}

async fn healthz() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        json!({"status": "ok"}).to_string(),
    )
        .into_response()
}

/// Ready when the database answers within 2 s.
async fn readyz(State(shared): State<Arc<Shared>>) -> Response {
    if shared.config.mqtt.is_some() && shared.metrics.mqtt.broker_connected.load(Relaxed) == 0 {
        return problem(
            ApiError::unavailable(
                "not connected and subscribed to the MQTT broker (VIGIL_MQTT_URL)",
            ),
            "/readyz",
        );
    }
    let probe = shared
        .pool
        .read(|conn| async move { vigil_db::target::query_i64(&conn, "SELECT 1", ()).await });
    match tokio::time::timeout(Duration::from_secs(2), probe).await {
        Ok(Ok(_)) => (
            [(header::CONTENT_TYPE, "application/json")],
            json!({"status": "ready"}).to_string(),
        )
            .into_response(),
        _ => problem(
            ApiError::unavailable(format!(
                "the database at {:?} does not answer",
                shared.pool.target()
            )),
            "/readyz",
        ),
    }
}

async fn prometheus(State(shared): State<Arc<Shared>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        shared.metrics.render(shared.hub.subscriptions()),
    )
        .into_response()
}

async fn not_found(uri: Uri) -> Response {
    problem(ApiError::not_found(), uri.path())
}
