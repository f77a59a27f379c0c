//! One WebSocket connection: authentication, the client's messages, the
//! heartbeat, and the writer task that alone writes to the socket.
//!
//! The session task reads and decides; the writer task drains the socket's
//! bounded queue (fed by the hub and by the session) and sends the close
//! frame that any party asks for through the socket's [`Closer`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::sync::{OwnedSemaphorePermit, mpsc, watch};
use vigil_core::ApiError;

use super::auth::{self, Authenticated, Refusal};
use super::config::MAX_MESSAGE_BYTES;
use super::hub::{Close, Closer, Join, Out, Refused, code, offer, slow_consumer_close};
use super::log;
use super::metrics::Metrics;
use super::outbox::{self, Resume};
use super::protocol::{self, Channel, ClientMessage, Filters};
use super::{Shared, snapshot, stopping};

/// How long a close (with what was queued before it, unless the socket is a
/// slow consumer) may take to reach the client before the connection is dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(10);
/// How long a replay waits for room in the socket's queue before calling
/// the client a slow consumer.
const REPLAY_WAIT: Duration = Duration::from_secs(10);

/// Serve one upgraded connection until it closes.
pub async fn serve(
    socket: WebSocket,
    shared: Arc<Shared>,
    offered_token: Option<String>,
    peer: SocketAddr,
    _permit: OwnedSemaphorePermit,
) {
    let started = Instant::now();
    let conn = shared.next_connection.fetch_add(1, Relaxed);
    shared.metrics.connections.fetch_add(1, Relaxed);
    Metrics::add(&shared.metrics.connections_total);
    log::line(
        json!({"level": "info", "msg": "connected", "conn": conn, "peer": peer.to_string(),
                     "auth": if offered_token.is_some() { "subprotocol" } else { "message" }}),
    );

    let (sink, stream) = socket.split();
    let (tx, rx) = mpsc::channel(shared.config.client_queue);
    let (closer, closed) = Closer::new();
    let writer = tokio::spawn(write_loop(sink, rx, closed.clone()));
    let mut session = Session {
        shared: shared.clone(),
        conn,
        tx,
        closer: closer.clone(),
        closed,
        stream,
        hub_id: None,
        auth: None,
        credential: String::new(),
        resume_from: None,
        missed_pongs: 0,
    };
    session.run(offered_token).await;
    // However it ended, the writer stops now (the peer may be gone already).
    closer.close(Close::new(code::NORMAL, "closing"));
    if let Some(id) = session.hub_id {
        shared.hub.unregister(id);
    }
    let close = session.closed.borrow().clone();
    if tokio::time::timeout(CLOSE_GRACE + Duration::from_secs(1), writer)
        .await
        .is_err()
    {
        log::line(json!({"level": "warn", "msg": "writer did not stop", "conn": conn}));
    }
    shared.metrics.connections.fetch_sub(1, Relaxed);
    let close = close.unwrap_or_else(|| Close::new(code::NORMAL, "closing"));
    log::line(json!({
        "level": "info", "msg": "closed", "conn": conn,
        "subject": session.auth.as_ref().map(|a| a.principal.subject.clone()),
        "code": close.code, "reason": close.reason,
        "seconds": started.elapsed().as_secs_f64(),
    }));
}

struct Session {
    shared: Arc<Shared>,
    conn: u64,
    tx: mpsc::Sender<Out>,
    closer: Arc<Closer>,
    closed: watch::Receiver<Option<Close>>,
    stream: SplitStream<WebSocket>,
    /// Set once authenticated: the socket's entry in the hub.
    hub_id: Option<u64>,
    auth: Option<Authenticated>,
    credential: String,
    /// A `resume` waiting for the `subscribe` it applies to.
    resume_from: Option<i64>,
    missed_pongs: u32,
}

/// What handling a message decided.
enum Next {
    Continue,
    Stop,
}

impl Session {
    async fn run(&mut self, offered_token: Option<String>) {
        let credential = match offered_token {
            Some(token) => token,
            None => match self.first_auth_message().await {
                Some(token) => token,
                None => return,
            },
        };
        let Some(authenticated) = self.login(&credential).await else {
            return;
        };
        self.credential = credential;
        let ack = auth_ack(&authenticated);
        log::line(
            json!({"level": "info", "msg": "authenticated", "conn": self.conn,
                         "subject": authenticated.principal.subject,
                         "channels": authenticated.channels.iter().map(|c| c.as_str()).collect::<Vec<_>>()}),
        );
        self.auth = Some(authenticated);
        self.hub_id = Some(
            self.shared
                .hub
                .register(self.tx.clone(), self.closer.clone()),
        );
        if !self.send(ack) {
            return;
        }
        self.main_loop().await;
    }

    /// Before authentication only an `auth` message is accepted, within the
    /// configured time.
    async fn first_auth_message(&mut self) -> Option<String> {
        let deadline = tokio::time::Instant::now() + self.shared.config.auth_timeout;
        let mut shutdown = self.shared.shutdown.clone();
        loop {
            let msg = tokio::select! {
                m = self.stream.next() => m,
                _ = tokio::time::sleep_until(deadline) => {
                    self.unauthenticated("no auth message in time: send {\"type\":\"auth\",\"token\":…} first");
                    return None;
                }
                _ = stopping(&mut shutdown) => {
                    self.close(code::SHUTDOWN, "the relay is shutting down");
                    return None;
                }
            };
            match msg {
                Some(Ok(Message::Text(text))) => {
                    if text.len() > MAX_MESSAGE_BYTES {
                        self.too_big();
                        return None;
                    }
                    return match ClientMessage::parse(&text) {
                        Ok(ClientMessage::Auth { token }) => Some(token),
                        _ => {
                            self.unauthenticated("authenticate first: the first message must be {\"type\":\"auth\",\"token\":…}");
                            None
                        }
                    };
                }
                Some(Ok(Message::Binary(_))) => {
                    self.unauthenticated("authenticate first with a JSON text message");
                    return None;
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return None,
            }
        }
    }

    /// Authenticate `credential`, or close the socket with the code its refusal calls for.
    async fn login(&mut self, credential: &str) -> Option<Authenticated> {
        let now = vigil_core::time::now_millis();
        match auth::authenticate(credential, &self.shared.config, &self.shared.pool, now).await {
            Ok(a) => Some(a),
            Err(Refusal::Unauthenticated(why)) => {
                self.unauthenticated(&why);
                None
            }
            Err(Refusal::Forbidden(why)) => {
                self.close(code::FORBIDDEN, &why);
                None
            }
            Err(Refusal::Unavailable) => {
                self.close(1011, "the database is unavailable; try again");
                None
            }
        }
    }

    async fn main_loop(&mut self) {
        let mut shutdown = self.shared.shutdown.clone();
        let ping = self.shared.config.ping;
        let mut heartbeat = tokio::time::interval_at(tokio::time::Instant::now() + ping, ping);
        let mut closed = self.closed.clone();
        loop {
            let expiry = self.expiry();
            tokio::select! {
                _ = closed.changed() => return,
                _ = stopping(&mut shutdown) => {
                    self.close(code::SHUTDOWN, "the relay is shutting down");
                    return;
                }
                _ = tokio::time::sleep_until(expiry) => {
                    self.unauthenticated("the access token has expired: send a new one with {\"type\":\"auth\"} before it does");
                    return;
                }
                _ = heartbeat.tick() => {
                    if let Next::Stop = self.beat().await {
                        return;
                    }
                }
                msg = self.stream.next() => {
                    let next = match msg {
                        Some(Ok(Message::Text(text))) => self.on_text(&text).await,
                        Some(Ok(Message::Binary(_))) => {
                            self.error(&ApiError::bad_request("send JSON text messages, not binary ones"))
                        }
                        Some(Ok(Message::Pong(_))) => {
                            self.missed_pongs = 0;
                            Next::Continue
                        }
                        Some(Ok(Message::Ping(_))) => Next::Continue,
                        Some(Ok(Message::Close(_))) | Some(Err(_)) | None => Next::Stop,
                    };
                    if let Next::Stop = next {
                        return;
                    }
                }
            }
        }
    }

    /// When the credential stops being valid (far away for API keys).
    fn expiry(&self) -> tokio::time::Instant {
        let far = tokio::time::Instant::now() + Duration::from_secs(365 * 86_400);
        match self.auth.as_ref().and_then(|a| a.expires_at) {
            Some(at) => {
                let left = at - vigil_core::time::now_millis();
                tokio::time::Instant::now() + Duration::from_millis(left.max(0) as u64)
            }
            None => far,
        }
    }

    /// The heartbeat: close after two unanswered pings, else ping; and check
    /// that the credential still holds (a session ended by logout, a revoked
    /// key), as an HTTP request would at its next call.
    async fn beat(&mut self) -> Next {
        if self.missed_pongs >= 2 {
            self.close(code::PING_TIMEOUT, "two pings went unanswered");
            return Next::Stop;
        }
        self.missed_pongs += 1;
        if !self.offer(Out::Ping) {
            return Next::Stop;
        }
        let now = vigil_core::time::now_millis();
        let credential = self.credential.clone();
        match auth::authenticate(&credential, &self.shared.config, &self.shared.pool, now).await {
            Err(Refusal::Unauthenticated(why)) => {
                self.unauthenticated(&why);
                Next::Stop
            }
            Err(Refusal::Forbidden(why)) => {
                self.close(code::FORBIDDEN, &why);
                Next::Stop
            }
            // The database is briefly away: the socket keeps what it had.
            Err(Refusal::Unavailable) | Ok(_) => Next::Continue,
        }
    }

    async fn on_text(&mut self, text: &str) -> Next {
        if text.len() > MAX_MESSAGE_BYTES {
            self.too_big();
            return Next::Stop;
        }
        let msg = match ClientMessage::parse(text) {
            Ok(m) => m,
            Err(e) => return self.error(&e),
        };
        match msg {
            ClientMessage::Ping => self.reply(protocol::pong_message()),
            ClientMessage::Auth { token } => self.reauthenticate(token).await,
            ClientMessage::Subscribe { channels, filters } => {
                let channels = match protocol::parse_channels(&channels) {
                    Ok(c) => c,
                    Err(e) => return self.error(&e),
                };
                if let Some(c) = self.forbidden_channel(&channels) {
                    self.close(
                        code::FORBIDDEN,
                        &format!(
                            "not allowed to read the {} channel (needs {})",
                            c.as_str(),
                            c.permission().as_str()
                        ),
                    );
                    return Next::Stop;
                }
                self.subscribe(&channels, filters).await
            }
            ClientMessage::Unsubscribe { channels } => {
                let channels = match protocol::parse_channels(&channels) {
                    Ok(c) => c,
                    Err(e) => return self.error(&e),
                };
                let subs = self.shared.hub.unsubscribe(self.hub_id(), &channels);
                self.reply(protocol::ack_message(
                    "unsubscribe",
                    json!({"channels": names(&subs.channels())}),
                ))
            }
            ClientMessage::Resume { last_event_id } => self.resume(last_event_id).await,
        }
    }

    fn hub_id(&self) -> u64 {
        self.hub_id.expect("registered once authenticated")
    }

    fn forbidden_channel(&self, channels: &[Channel]) -> Option<Channel> {
        let allowed = &self.auth.as_ref().expect("authenticated").channels;
        channels.iter().copied().find(|c| !allowed.contains(c))
    }

    /// A new token for the same principal, before the old one expires.
    async fn reauthenticate(&mut self, token: String) -> Next {
        let Some(fresh) = self.login(&token).await else {
            return Next::Stop;
        };
        let current = self.auth.as_ref().expect("authenticated");
        if fresh.principal.subject != current.principal.subject {
            self.close(
                code::FORBIDDEN,
                "a socket keeps the principal it authenticated as",
            );
            return Next::Stop;
        }
        let subscribed = self.shared.hub.subs(self.hub_id()).channels();
        if let Some(lost) = subscribed.iter().find(|c| !fresh.channels.contains(c)) {
            self.close(
                code::FORBIDDEN,
                &format!("the new token may not read the {} channel", lost.as_str()),
            );
            return Next::Stop;
        }
        let ack = auth_ack(&fresh);
        self.auth = Some(fresh);
        self.credential = token;
        self.reply(ack)
    }

    /// `resume`: check that the outbox still holds everything after the id,
    /// and apply it to the next `subscribe` (which then replays from it
    /// instead of sending a snapshot).
    async fn resume(&mut self, last_event_id: i64) -> Next {
        let subscribed = self.shared.hub.subs(self.hub_id()).count();
        if subscribed > 0 {
            return self.error(&ApiError::conflict(
                "send resume before subscribe: it says where the subscription's stream starts",
            ));
        }
        let bounds = self
            .shared
            .pool
            .read(|conn| async move { outbox::retained(&conn).await })
            .await;
        let (oldest, newest) = match bounds {
            Ok(b) => b,
            Err(_) => {
                return self.error(&ApiError::unavailable(
                    "the database is unavailable; try again",
                ));
            }
        };
        match outbox::resume_verdict(last_event_id, oldest, newest) {
            Resume::ResyncRequired(why) => {
                Metrics::add(&self.shared.metrics.resyncs_required_total);
                self.reply(protocol::resync_message(last_event_id, why, oldest))
            }
            Resume::Replay => {
                Metrics::add(&self.shared.metrics.replays_total);
                self.resume_from = Some(last_event_id);
                self.reply(protocol::ack_message(
                    "resume",
                    json!({"last_event_id": last_event_id}),
                ))
            }
        }
    }

    /// `subscribe`: hold the socket out of the live stream, take the
    /// snapshot (or the pending resume point), set the subscriptions with
    /// the snapshot queued first, then catch up from the database and rejoin.
    async fn subscribe(&mut self, channels: &[Channel], filters: Filters) -> Next {
        let id = self.hub_id();
        let Some((cursor, _)) = self.shared.hub.hold(id) else {
            return Next::Stop;
        };
        let mut messages = vec![protocol::ack_message(
            "subscribe",
            json!({"channels": names(channels)}),
        )];
        let since = match self.resume_from.take() {
            Some(from) => from,
            None => {
                let liveness = &self.shared.config.liveness;
                let filters = &filters;
                let read =
                    self.shared
                        .pool
                        .read(|conn| async move {
                            snapshot::read(&conn, channels, filters, liveness).await
                        })
                        .await;
                match read {
                    Ok((as_of, snapshots)) => {
                        for (channel, items) in snapshots {
                            Metrics::add(&self.shared.metrics.snapshots_total);
                            messages.push(protocol::snapshot_message(
                                channel,
                                as_of,
                                &items,
                                snapshot::LIMIT,
                            ));
                        }
                        as_of
                    }
                    Err(e) => {
                        log::line(
                            json!({"level": "error", "msg": "snapshot failed", "conn": self.conn, "error": format!("{e:#}")}),
                        );
                        self.error(&ApiError::unavailable(
                            "the snapshot could not be read; subscribe again",
                        ));
                        return self.catch_up(cursor).await;
                    }
                }
            }
        };
        if self
            .shared
            .hub
            .subscribe(id, channels, &filters, since, messages)
            .is_err()
        {
            return Next::Stop;
        }
        // Channels subscribed before were sent everything through `cursor`
        // (hold() keeps them from getting it again); the new ones need
        // everything after `since`.
        self.catch_up(cursor.min(since)).await
    }

    /// Replay from the database what the socket missed while held, until it
    /// has exactly reached the poller's position, then rejoin the live stream.
    async fn catch_up(&mut self, from: i64) -> Next {
        let id = self.hub_id();
        let mut through = from;
        loop {
            let to = match self.shared.hub.try_join(id, through) {
                Join::Live => return Next::Continue,
                Join::Gone => return Next::Stop,
                Join::ReplayTo(to) => to,
            };
            let subs = self.shared.hub.subs(id);
            while through < to {
                // The connection goes back to the pool before the sends,
                // which may wait on a slow client.
                let batch = self
                    .shared
                    .pool
                    .read(|conn| async move { outbox::outbox_after(&conn, through, to).await })
                    .await;
                let batch = match batch {
                    Ok(b) => b,
                    Err(e) => {
                        log::line(
                            json!({"level": "error", "msg": "replay failed", "conn": self.conn, "error": format!("{e:#}")}),
                        );
                        self.close(
                            1011,
                            "the database is unavailable; resume from your last event id",
                        );
                        return Next::Stop;
                    }
                };
                for e in batch.events.iter().filter(|e| subs.wants(e)) {
                    let sent = tokio::time::timeout(
                        REPLAY_WAIT,
                        self.tx.send(Out::Shared(e.message.clone())),
                    )
                    .await;
                    match sent {
                        Ok(Ok(())) => {
                            Metrics::add(&self.shared.metrics.replayed_events_total);
                            Metrics::add(&self.shared.metrics.events_pushed_total);
                        }
                        Ok(Err(_)) => return Next::Stop,
                        Err(_) => {
                            Metrics::add(&self.shared.metrics.slow_consumer_drops_total);
                            self.closer
                                .close(slow_consumer_close(self.shared.config.client_queue));
                            return Next::Stop;
                        }
                    }
                }
                // Nothing more before `to` (ids can have holes).
                through = if batch.rows == 0 { to } else { batch.last };
            }
        }
    }

    /// Queue a message without waiting; a full queue closes the socket as a slow consumer.
    fn offer(&self, out: Out) -> bool {
        match offer(&self.tx, out) {
            Ok(()) => true,
            Err(Refused::Full) => {
                Metrics::add(&self.shared.metrics.slow_consumer_drops_total);
                self.closer
                    .close(slow_consumer_close(self.shared.config.client_queue));
                false
            }
            Err(Refused::Gone) => false,
        }
    }

    fn send(&self, text: String) -> bool {
        self.offer(Out::Text(text))
    }

    fn reply(&self, text: String) -> Next {
        if self.send(text) {
            Next::Continue
        } else {
            Next::Stop
        }
    }

    /// An `error` message; the socket stays open.
    fn error(&self, e: &ApiError) -> Next {
        self.reply(protocol::error_message(e))
    }

    fn close(&self, code: u16, reason: &str) {
        self.closer.close(Close::new(code, reason));
    }

    fn unauthenticated(&self, why: &str) {
        Metrics::add(&self.shared.metrics.auth_failures_total);
        self.close(code::UNAUTHENTICATED, why);
    }

    fn too_big(&self) {
        self.close(
            code::TOO_BIG,
            &format!("messages are limited to {} KiB", MAX_MESSAGE_BYTES / 1024),
        );
    }
}

fn names(channels: &[Channel]) -> Vec<&'static str> {
    channels.iter().map(|c| c.as_str()).collect()
}

fn auth_ack(a: &Authenticated) -> String {
    protocol::ack_message(
        "auth",
        json!({
            "subject": a.principal.subject,
            "channels": names(&a.channels),
            "expires_at": a.expires_at.map(vigil_core::time::rfc3339),
        }),
    )
}

fn message(out: Out) -> Message {
    match out {
        Out::Shared(text) => Message::Text(text.as_ref().into()),
        Out::Text(text) => Message::Text(text.into()),
        Out::Ping => Message::Ping(Default::default()),
    }
}

/// The only task that writes to the socket: it drains the queue, and on a
/// close sends what was queued before it (unless the socket is a slow
/// consumer: that is what it could not take) and then the close frame, all
/// within [`CLOSE_GRACE`].
async fn write_loop(
    mut sink: SplitSink<WebSocket, Message>,
    mut rx: mpsc::Receiver<Out>,
    mut closed: watch::Receiver<Option<Close>>,
) {
    loop {
        let out = tokio::select! {
            biased;
            _ = closed.changed() => break,
            out = rx.recv() => match out {
                Some(out) => out,
                None => break,
            },
        };
        let send = sink.send(message(out));
        tokio::pin!(send);
        tokio::select! {
            biased;
            sent = &mut send => if sent.is_err() { return },
            _ = closed.changed() => {
                // Let the frame in flight finish, within the grace period.
                match tokio::time::timeout(CLOSE_GRACE, &mut send).await {
                    Ok(Ok(())) => break,
                    _ => return,
                }
            }
        }
    }
    let Some(close) = closed.borrow().clone() else {
        return;
    };
    let deadline = tokio::time::Instant::now() + CLOSE_GRACE;
    if close.code != code::SLOW_CONSUMER {
        while let Ok(out) = rx.try_recv() {
            match tokio::time::timeout_at(deadline, sink.send(message(out))).await {
                Ok(Ok(())) => {}
                _ => return,
            }
        }
    }
    let frame = CloseFrame {
        code: close.code,
        reason: close.reason.into(),
    };
    let _ = tokio::time::timeout_at(deadline, sink.send(Message::Close(Some(frame)))).await;
}
