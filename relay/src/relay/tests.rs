//! The relay over a real socket and a real (temporary) database: `run` on
//! `127.0.0.1:0`, a tungstenite client, outbox rows written with SQL.

use std::collections::HashMap;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use vigil_core::Role;
use vigil_core::token::{Claims, TokenSigner, jwks_json};

use super::*;

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

struct Relay {
    addr: SocketAddr,
    db: Target,
    signer: TokenSigner,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<Result<()>>,
    _dir: tempfile::TempDir,
}

const USER: &str = "00000000-0000-4000-8000-000000000001";
const SESSION: &str = "00000000-0000-4000-8000-000000000101";

async fn start(vars: &[(&str, &str)]) -> Relay {
    let dir = tempfile::tempdir().unwrap();
    let db = Target::Local(dir.path().join("vigil.db"));
    vigil_db::migrations::migrate(&db, &vigil_db::migrations::embedded())
        .await
        .unwrap();
    let far = vigil_core::time::now_millis() + 86_400_000;
    db.connect()
        .await
        .unwrap()
        .execute_batch(&format!(
            "INSERT INTO users (id, username, role, created_at, updated_at) VALUES ('{USER}', 'v', 'viewer', 0, 0);
             INSERT INTO sessions (id, user_id, created_at, last_used_at, expires_at) VALUES ('{SESSION}', '{USER}', 0, 0, {far});"
        ))
        .await
        .unwrap();
    let signer = TokenSigner::generate("t1");
    let mut map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    map.insert(
        "VIGIL_JWT_PUBLIC_KEYS".into(),
        jwks_json(&[signer.public_jwk()]),
    );
    map.entry("VIGIL_RELAY_POLL_MS".into())
        .or_insert_with(|| "10".into());
    let config = Config::from_lookup(|n| map.get(n).cloned()).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let done = tokio::spawn(run(listener, config, db.clone(), async move {
        let _ = stopped.await;
    }));
    Relay {
        addr,
        db,
        signer,
        stop: Some(stop),
        done,
        _dir: dir,
    }
}

impl Relay {
    fn token_for(&self, role: Role, exp_in: i64) -> String {
        let now = vigil_core::time::now_millis() / 1000;
        let mut claims = Claims::user_access("vigil", "vigil", USER, role, SESSION, now);
        claims.exp = now + exp_in;
        self.signer.sign(&claims)
    }

    fn token(&self) -> String {
        self.token_for(Role::Viewer, 900)
    }

    async fn connect(&self, protocols: Option<&str>) -> Ws {
        let mut req = format!("ws://{}/ws", self.addr)
            .into_client_request()
            .unwrap();
        if let Some(p) = protocols {
            req.headers_mut()
                .insert("sec-websocket-protocol", p.parse().unwrap());
        }
        tokio_tungstenite::connect_async(req).await.unwrap().0
    }

    /// Connected, authenticated by message, the auth ack read.
    async fn authenticated(&self) -> Ws {
        let mut ws = self.connect(None).await;
        send(&mut ws, json!({"type": "auth", "token": self.token()})).await;
        let ack = next(&mut ws).await;
        assert_eq!(
            (ack["type"].as_str(), ack["for"].as_str()),
            (Some("ack"), Some("auth")),
            "{ack}"
        );
        ws
    }

    async fn publish(&self, event_type: &str, payload: Value) -> i64 {
        let conn = self.db.connect().await.unwrap();
        conn.execute(
            "INSERT INTO events (type, payload, created_at) VALUES (?1, ?2, ?3)",
            libsql::params![
                event_type,
                payload.to_string(),
                vigil_core::time::now_millis()
            ],
        )
        .await
        .unwrap();
        conn.last_insert_rowid()
    }

    async fn stop(mut self) {
        self.stop.take().unwrap().send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(15), self.done)
            .await
            .expect("stops")
            .unwrap()
            .unwrap();
    }
}

async fn send(ws: &mut Ws, m: Value) {
    ws.send(Message::text(m.to_string())).await.unwrap();
}

/// The next JSON message (pings aside); panics on a close.
async fn next(ws: &mut Ws) -> Value {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("a message within 5 s")
            .expect("open")
            .expect("no error");
        match m {
            Message::Text(t) => return serde_json::from_str(&t).unwrap(),
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("expected a text message, got {other:?}"),
        }
    }
}

/// The close code the server sends next (text messages before it skipped).
async fn close_code(ws: &mut Ws) -> u16 {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("a close within 5 s");
        match m {
            Some(Ok(Message::Close(Some(frame)))) => return frame.code.into(),
            Some(Ok(Message::Close(None))) | None | Some(Err(_)) => panic!("closed without a code"),
            Some(Ok(_)) => {}
        }
    }
}

#[tokio::test]
async fn snapshot_then_live_events_of_the_subscribed_channel() {
    let relay = start(&[]).await;
    let before = relay
        .publish("alert.opened", json!({"id": "a0", "severity": "high"}))
        .await;
    let mut ws = relay.authenticated().await;
    send(
        &mut ws,
        json!({"type": "subscribe", "channels": ["alerts"]}),
    )
    .await;
    assert_eq!(next(&mut ws).await["for"], "subscribe");
    let snap = next(&mut ws).await;
    assert_eq!(snap["type"], "snapshot");
    assert_eq!(snap["channel"], "alerts");
    assert_eq!(snap["as_of"], before);
    assert_eq!(snap["items"], json!([]));

    relay.publish("user.created", json!({"id": "u"})).await;
    relay
        .publish("threat.created", json!({"id": "t", "severity": "high"}))
        .await;
    let id = relay
        .publish("alert.opened", json!({"id": "a1", "severity": "high"}))
        .await;
    let e = next(&mut ws).await;
    assert_eq!(e["type"], "event");
    assert_eq!(e["id"], id);
    assert_eq!(e["event"], "alert.opened");
    assert_eq!(e["channel"], "alerts");
    assert_eq!(e["data"]["id"], "a1");
    assert!(e["ts"].as_str().unwrap().ends_with('Z'));

    send(&mut ws, json!({"type": "ping"})).await;
    assert_eq!(next(&mut ws).await["type"], "pong");

    // Every channel's snapshot reads, with every filter.
    let conn = relay.db.connect().await.unwrap();
    conn.execute_batch(
        "INSERT INTO alerts (id, group_key, status, source_ip, event_type, sensor_id, severity, max_score,
                             event_count, first_seen, last_seen, version, created_at, updated_at)
         VALUES ('a1', 'g', 'open', '198.51.100.1', 'port_scan', 'hp-1', 'high', 70, 1, 1, 1, 1, 1, 1),
                ('a2', 'g', 'resolved', '198.51.100.1', 'port_scan', 'hp-1', 'high', 70, 1, 1, 1, 1, 1, 1);
         INSERT INTO sensors (id, name, kind, version, created_by, created_at, updated_at)
         VALUES ('hp-1', 'Honeypot', 'honeypot', 1, 'x', 1, 1);",
    )
    .await
    .unwrap();
    let mut all = relay.authenticated().await;
    send(
        &mut all,
        json!({"type": "subscribe", "channels": ["alerts", "threats", "decisions", "sensors", "playbooks"],
               "filters": {"min_severity": "medium", "sensor_id": "hp-1", "status": "open"}}),
    )
    .await;
    assert_eq!(next(&mut all).await["for"], "subscribe");
    let alerts = next(&mut all).await;
    assert_eq!(alerts["items"].as_array().unwrap().len(), 1, "{alerts}");
    assert_eq!(alerts["items"][0]["id"], "a1");
    for channel in ["threats", "decisions", "sensors", "playbooks"] {
        let snap = next(&mut all).await;
        assert_eq!(snap["channel"], channel, "{snap}");
    }
    send(
        &mut all,
        json!({"type": "subscribe", "channels": ["sensors"], "filters": {"status": "offline"}}),
    )
    .await;
    assert_eq!(next(&mut all).await["for"], "subscribe");
    let sensors = next(&mut all).await;
    assert_eq!(sensors["items"][0]["id"], "hp-1", "{sensors}");
    assert_eq!(sensors["items"][0]["status"], "offline");
    relay.stop().await;
}

#[tokio::test]
async fn subprotocol_auth_and_refusals() {
    let relay = start(&[("VIGIL_RELAY_AUTH_TIMEOUT_MS", "300")]).await;
    let protocols = format!("vigil.v1, bearer.{}", relay.token());
    let mut req = format!("ws://{}/ws", relay.addr)
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("sec-websocket-protocol", protocols.parse().unwrap());
    let (mut ws, resp) = tokio_tungstenite::connect_async(req).await.unwrap();
    assert_eq!(resp.headers()["sec-websocket-protocol"], "vigil.v1");
    assert_eq!(next(&mut ws).await["for"], "auth");

    let mut bad = relay.connect(Some("vigil.v1, bearer.not-a-token")).await;
    assert_eq!(close_code(&mut bad).await, 4401);
    let mut silent = relay.connect(None).await;
    assert_eq!(close_code(&mut silent).await, 4401);
    let mut expired = relay.connect(None).await;
    send(
        &mut expired,
        json!({"type": "auth", "token": relay.token_for(Role::Viewer, -120)}),
    )
    .await;
    assert_eq!(close_code(&mut expired).await, 4401);
    // A viewer may not read the audit log.
    let mut viewer = relay.authenticated().await;
    send(
        &mut viewer,
        json!({"type": "subscribe", "channels": ["audit"]}),
    )
    .await;
    assert_eq!(close_code(&mut viewer).await, 4403);
    // Too big.
    let mut big = relay.authenticated().await;
    big.send(Message::text(" ".repeat(70 * 1024)))
        .await
        .unwrap();
    assert_eq!(close_code(&mut big).await, 1009);

    // A token that expires while the socket is open closes it with 4401.
    let mut short = relay.connect(None).await;
    send(
        &mut short,
        json!({"type": "auth", "token": relay.token_for(Role::Viewer, -29)}),
    )
    .await;
    assert_eq!(next(&mut short).await["for"], "auth");
    assert_eq!(close_code(&mut short).await, 4401);
    relay.stop().await;
}

#[tokio::test]
async fn resume_replays_exactly_the_missed_events_then_live_ones() {
    let relay = start(&[]).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            relay
                .publish("decision.updated", json!({"decision": {"n": i}}))
                .await,
        );
    }
    let mut ws = relay.authenticated().await;
    send(&mut ws, json!({"type": "resume", "last_event_id": ids[1]})).await;
    assert_eq!(next(&mut ws).await["for"], "resume");
    send(
        &mut ws,
        json!({"type": "subscribe", "channels": ["decisions"]}),
    )
    .await;
    assert_eq!(next(&mut ws).await["for"], "subscribe");
    let live = relay
        .publish("decision.updated", json!({"decision": {"n": 5}}))
        .await;
    let mut got = Vec::new();
    for _ in 0..4 {
        let e = next(&mut ws).await;
        assert_eq!(e["type"], "event", "{e}");
        got.push(e["id"].as_i64().unwrap());
    }
    assert_eq!(got, [ids[2], ids[3], ids[4], live]);
    send(&mut ws, json!({"type": "ping"})).await;
    assert_eq!(
        next(&mut ws).await["type"],
        "pong",
        "no duplicate at the seam"
    );

    // Rows 1..=3 are gone: resuming from 1 is no longer possible.
    relay
        .db
        .connect()
        .await
        .unwrap()
        .execute("DELETE FROM events WHERE id <= ?1", [ids[2]])
        .await
        .unwrap();
    let mut late = relay.authenticated().await;
    send(
        &mut late,
        json!({"type": "resume", "last_event_id": ids[0]}),
    )
    .await;
    let m = next(&mut late).await;
    assert_eq!(m["type"], "resync_required", "{m}");
    relay.stop().await;
}

#[tokio::test]
async fn shutdown_closes_sockets_with_1001() {
    let relay = start(&[]).await;
    let mut ws = relay.authenticated().await;
    let addr = relay.addr;
    relay.stop().await;
    assert_eq!(close_code(&mut ws).await, 1001);
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "no longer accepting"
    );
}

/// `GET path` on the relay; the body.
async fn http_get(addr: SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.0\r\nhost: relay\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out.split_once("\r\n\r\n").unwrap().1.to_string()
}

#[tokio::test]
async fn a_slow_consumer_is_closed_with_1013_and_the_others_keep_everything() {
    let relay = start(&[
        ("VIGIL_RELAY_CLIENT_QUEUE", "500"),
        ("VIGIL_RELAY_SEND_BUFFER", "4096"),
    ])
    .await;
    // A client with a tiny receive window that stops reading.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(relay.addr).await.unwrap();
    let req = format!("ws://{}/ws", relay.addr)
        .into_client_request()
        .unwrap();
    let (mut slow, _) = tokio_tungstenite::client_async(req, MaybeTlsStream::Plain(stream))
        .await
        .unwrap();
    send(&mut slow, json!({"type": "auth", "token": relay.token()})).await;
    assert_eq!(next(&mut slow).await["for"], "auth");
    send(
        &mut slow,
        json!({"type": "subscribe", "channels": ["threats"]}),
    )
    .await;
    assert_eq!(next(&mut slow).await["for"], "subscribe");
    assert_eq!(next(&mut slow).await["type"], "snapshot");

    let mut fast = relay.authenticated().await;
    send(
        &mut fast,
        json!({"type": "subscribe", "channels": ["threats"]}),
    )
    .await;
    assert_eq!(next(&mut fast).await["for"], "subscribe");
    assert_eq!(next(&mut fast).await["type"], "snapshot");
    const EVENTS: usize = 3000;
    let reader = tokio::spawn(async move {
        let mut ids = Vec::new();
        while ids.len() < EVENTS {
            let m = next(&mut fast).await;
            ids.push(m["id"].as_i64().unwrap());
        }
        ids
    });

    let conn = relay.db.connect().await.unwrap();
    let padding = "x".repeat(200);
    for batch in 0..EVENTS / 500 {
        let values: Vec<String> = (0..500)
            .map(|i| {
                format!(
                    "('threat.created', '{{\"id\": \"t-{batch}-{i}\", \"note\": \"{padding}\"}}', 0)"
                )
            })
            .collect();
        conn.execute(
            &format!(
                "INSERT INTO events (type, payload, created_at) VALUES {}",
                values.join(", ")
            ),
            (),
        )
        .await
        .unwrap();
    }
    let ids = tokio::time::timeout(Duration::from_secs(20), reader)
        .await
        .expect("the fast client got every event")
        .unwrap();
    assert!(
        ids.windows(2).all(|w| w[1] == w[0] + 1),
        "in order, none twice"
    );
    let metrics = http_get(relay.addr, "/metrics").await;
    assert!(
        metrics.contains("vigil_relay_slow_consumer_drops_total 1\n"),
        "{metrics}"
    );
    // What reached the slow client before its queue filled, then the close.
    assert_eq!(close_code(&mut slow).await, 1013);
    relay.stop().await;
}
