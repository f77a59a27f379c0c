//! The relay (`vigil relay`) next to the app: changes made over HTTP are
//! pushed to authenticated WebSockets; tokens by first message or
//! subprotocol, refusals as close codes; a viewer never gets the audit
//! channel; resume by id with no gap and no duplicate; a snapshot before live
//! events; a slow consumer dropped with 1013 while another keeps up; the
//! scheduled jobs, run once however many relays take part.
//!
//! These cases run late on each leg: one deletes old outbox rows.

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tungstenite::client::IntoClientRequest;
use tungstenite::{Message, WebSocket};
use vigil_core::Role;
use vigil_core::token::Claims;
use vigil_e2e::{TestApp, count, execute, just_now, unique};

use crate::Case;

pub const CASES: &[Case] = &[
    (
        "relay_pushes_changes_made_over_http",
        relay_pushes_changes_made_over_http,
    ),
    (
        "relay_authenticates_by_subprotocol",
        relay_authenticates_by_subprotocol,
    ),
    (
        "relay_refuses_missing_invalid_and_expired_tokens",
        relay_refuses_missing_invalid_and_expired_tokens,
    ),
    (
        "relay_refuses_a_token_that_names_no_session",
        relay_refuses_a_token_that_names_no_session,
    ),
    (
        "relay_viewer_never_gets_the_audit_channel",
        relay_viewer_never_gets_the_audit_channel,
    ),
    (
        "relay_snapshot_comes_before_live_events",
        relay_snapshot_comes_before_live_events,
    ),
    (
        "relay_resume_replays_the_missed_events_then_live_ones",
        relay_resume_replays_the_missed_events_then_live_ones,
    ),
    (
        "relay_drops_a_slow_consumer_and_keeps_the_others",
        relay_drops_a_slow_consumer_and_keeps_the_others,
    ),
    (
        "relay_health_readiness_and_metrics",
        relay_health_readiness_and_metrics,
    ),
    (
        "relay_jobs_escalate_overdue_decisions_and_publish_stale_sensors",
        relay_jobs_escalate_overdue_decisions_and_publish_stale_sensors,
    ),
    // Last: it deletes old outbox rows.
    (
        "relay_resume_from_a_deleted_id_requires_a_resync",
        relay_resume_from_a_deleted_id_requires_a_resync,
    ),
];

/// A WebSocket client of the relay.
pub(crate) struct Socket {
    ws: WebSocket<TcpStream>,
    /// The subprotocol the server answered with.
    protocol: Option<String>,
}

fn relay_addr(url: &str) -> SocketAddr {
    url.trim_start_matches("http://")
        .parse()
        .expect("relay address")
}

impl Socket {
    fn connect(relay_url: &str, protocols: Option<&str>) -> Socket {
        let stream = TcpStream::connect(relay_addr(relay_url)).expect("connect to the relay");
        Socket::over(stream, relay_url, protocols)
    }

    fn over(stream: TcpStream, relay_url: &str, protocols: Option<&str>) -> Socket {
        stream
            .set_read_timeout(Some(Duration::from_secs(15)))
            .unwrap();
        let mut req = format!("{}/ws", relay_url.replace("http://", "ws://"))
            .into_client_request()
            .unwrap();
        if let Some(p) = protocols {
            req.headers_mut()
                .insert("sec-websocket-protocol", p.parse().unwrap());
        }
        let (ws, resp) = tungstenite::client(req, stream).expect("WebSocket handshake");
        let protocol = resp
            .headers()
            .get("sec-websocket-protocol")
            .map(|v| v.to_str().unwrap().to_string());
        Socket { ws, protocol }
    }

    /// Connected and authenticated by first message as `role`; the auth ack read.
    pub(crate) fn authenticated(app: &TestApp, relay_url: &str, role: Role) -> Socket {
        let mut s = Socket::connect(relay_url, None);
        s.send(json!({"type": "auth", "token": app.token(role)}));
        let ack = s.next();
        assert_eq!(ack["for"], "auth", "{ack}");
        s
    }

    fn send(&mut self, m: Value) {
        self.ws.send(Message::text(m.to_string())).expect("send");
    }

    /// The next JSON message (heartbeats aside); a close fails the test.
    fn next(&mut self) -> Value {
        loop {
            match self.ws.read() {
                Ok(Message::Text(t)) => return serde_json::from_str(&t).expect("JSON"),
                Ok(Message::Close(frame)) => panic!("closed: {frame:?}"),
                Ok(_) => {}
                Err(e) => panic!("no message: {e}"),
            }
        }
    }

    /// The close code the server sends (messages before it are skipped).
    fn close_code(&mut self) -> u16 {
        self.close_frame().0
    }

    /// The close code and reason the server sends (messages before it are skipped).
    fn close_frame(&mut self) -> (u16, String) {
        loop {
            match self.ws.read() {
                Ok(Message::Close(Some(frame))) => {
                    return (frame.code.into(), frame.reason.to_string());
                }
                Ok(Message::Close(None)) => panic!("closed without a code"),
                Ok(_) => {}
                Err(e) => panic!("no close frame: {e}"),
            }
        }
    }

    /// `subscribe`, its ack, and one snapshot per outbox-backed channel.
    pub(crate) fn subscribe(&mut self, channels: &[&str], filters: Value) -> Vec<Value> {
        self.send(json!({"type": "subscribe", "channels": channels, "filters": filters}));
        let ack = self.next();
        assert_eq!(ack["for"], "subscribe", "{ack}");
        (0..channels.len()).map(|_| self.next()).collect()
    }

    /// Events until `pred` holds for one; that one. Anything but events fails.
    pub(crate) fn event_where(&mut self, pred: impl Fn(&Value) -> bool) -> Value {
        loop {
            let m = self.next();
            assert_eq!(m["type"], "event", "{m}");
            if pred(&m) {
                return m;
            }
        }
    }

    /// Every message until the `pong` answering a `ping` sent now.
    fn until_pong(&mut self) -> Vec<Value> {
        self.send(json!({"type": "ping"}));
        let mut out = Vec::new();
        loop {
            let m = self.next();
            if m["type"] == "pong" {
                return out;
            }
            out.push(m);
        }
    }
}

/// The relay of this leg, or `None` when the suite did not start the app.
fn relay(app: &TestApp) -> Option<&str> {
    app.relay_url.as_deref()
}

fn event(sensor: &str, id: &str, kind: &str, source: &str) -> Value {
    json!({
        "event_id": id, "sensor_id": sensor, "observed_at": just_now(), "event_type": kind,
        "source_ip": source, "dest_ip": "10.20.1.5", "dest_port": 502, "protocol": "tcp",
        "severity_hint": "high", "payload": {"note": "relay e2e"}
    })
}

/// Post `events` as an analyst; the response.
fn post_events(app: &TestApp, events: Vec<Value>) -> Value {
    let r = app.post_json_as(
        Role::Analyst,
        "/api/threats/events",
        &json!({"events": events}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

fn is(m: &Value, event: &str) -> bool {
    m["event"] == event
}

fn relay_pushes_changes_made_over_http(app: &TestApp) {
    let Some(url) = relay(app) else { return };
    let mut ws = Socket::authenticated(app, url, Role::Viewer);
    let snapshots = ws.subscribe(&["alerts", "threats"], json!({}));
    assert!(snapshots.iter().all(|s| s["type"] == "snapshot"));

    let sensor = unique("relay-hp");
    post_events(
        app,
        vec![event(&sensor, "e-1", "exploit_attempt", "198.51.100.21")],
    );
    // The batch's outbox rows (its alert, its event) arrive in id order.
    let (mut threat, mut opened) = (None, None);
    let mut last_id = 0;
    while threat.is_none() || opened.is_none() {
        let m = ws.event_where(|_| true);
        let id = m["id"].as_i64().unwrap();
        assert!(id > last_id, "in id order: {id} after {last_id}");
        last_id = id;
        if is(&m, "threat.created") && m["data"]["sensor_id"] == sensor.as_str() {
            threat = Some(m);
        } else if is(&m, "alert.opened") {
            opened = Some(m);
        }
    }
    let (threat, opened) = (threat.unwrap(), opened.unwrap());
    assert_eq!(threat["channel"], "threats");
    let ts = threat["ts"].as_str().unwrap();
    assert!(
        ts.ends_with('Z') && ts.len() == 24,
        "RFC 3339 with ms: {ts}"
    );
    assert_eq!(opened["channel"], "alerts");
    assert_eq!(opened["data"]["severity"], threat["data"]["severity"]);
    let alert_id = opened["data"]["id"].as_str().unwrap().to_string();

    // Acknowledging the alert over HTTP is pushed as alert.updated.
    let seen = app.get_as(Role::Viewer, &format!("/api/alerts/{alert_id}"));
    let etag = seen.header("etag").expect("an ETag").to_string();
    let seen = seen.json();
    let r = app.send_as(
        Role::Analyst,
        "POST",
        &format!("/api/alerts/{alert_id}/acknowledge"),
        &[("if-match", &etag)],
        Some(&json!({"note": "seen on the relay"})),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let updated =
        ws.event_where(|m| is(m, "alert.updated") && m["data"]["alert"]["id"] == alert_id.as_str());
    assert_eq!(updated["data"]["alert"]["status"], "acknowledged");
    assert_eq!(updated["data"]["command"], "acknowledge");
    // It was created when it opened, and changed now.
    let after = &updated["data"]["alert"];
    assert_eq!(after["created_at"], seen["created_at"], "{after}");
    let time = |v: &Value| vigil_core::time::parse_rfc3339(v.as_str().unwrap()).unwrap();
    assert!(
        time(&after["updated_at"]) >= time(&seen["updated_at"]),
        "{after}"
    );
    assert!(
        time(&seen["updated_at"]) >= time(&seen["created_at"]),
        "{seen}"
    );
}

fn relay_authenticates_by_subprotocol(app: &TestApp) {
    let Some(url) = relay(app) else { return };
    let offer = format!("vigil.v1, bearer.{}", app.token(Role::Analyst));
    let mut ws = Socket::connect(url, Some(&offer));
    assert_eq!(ws.protocol.as_deref(), Some("vigil.v1"));
    let ack = ws.next();
    assert_eq!(ack["for"], "auth", "{ack}");
    assert_eq!(ack["subject"], vigil_e2e::test_principal(Role::Analyst).0);
    // An analyst reads alerts, threats, decisions, sensors and playbooks, not the audit log.
    let channels: Vec<_> = ack["channels"].as_array().unwrap().iter().collect();
    assert_eq!(channels.len(), 5, "{ack}");
    assert!(!channels.contains(&&json!("audit")));
    assert!(ws.until_pong().is_empty());
}

/// A user's access token without `sid` could never be ended by logout: the
/// relay refuses it as the components do (4401), by message and by
/// subprotocol, even for an admin and with a good signature.
fn relay_refuses_a_token_that_names_no_session(app: &TestApp) {
    let Some(url) = relay(app) else { return };
    let mut claims = app.claims(Role::Admin);
    claims.sid = None;
    let token = app.signer.sign(&claims);
    let mut by_message = Socket::connect(url, None);
    by_message.send(json!({"type": "auth", "token": token}));
    let (code, reason) = by_message.close_frame();
    assert_eq!(code, 4401, "{reason}");
    assert!(reason.contains("session"), "{reason}");
    let mut by_protocol = Socket::connect(url, Some(&format!("vigil.v1, bearer.{token}")));
    assert_eq!(by_protocol.close_code(), 4401);
    // The same token with its session is let in.
    let mut with_session = Socket::connect(url, None);
    with_session.send(json!({"type": "auth", "token": app.signer.sign(&app.claims(Role::Admin))}));
    assert_eq!(with_session.next()["for"], "auth");
}

fn relay_refuses_missing_invalid_and_expired_tokens(app: &TestApp) {
    let Some(url) = relay(app) else { return };
    // No auth message within 5 s.
    let mut silent = Socket::connect(url, None);
    assert_eq!(silent.close_code(), 4401);
    // A first message that is not auth.
    let mut rude = Socket::connect(url, None);
    rude.send(json!({"type": "subscribe", "channels": ["alerts"]}));
    assert_eq!(rude.close_code(), 4401);
    // A token that is not one, by message and by subprotocol.
    let mut forged = Socket::connect(url, None);
    forged.send(json!({"type": "auth", "token": "eyJhbGciOiJub25lIn0.e30."}));
    assert_eq!(forged.close_code(), 4401);
    let mut forged = Socket::connect(url, Some("vigil.v1, bearer.not-a-token"));
    assert_eq!(forged.close_code(), 4401);
    // A token signed by a key the relay does not trust.
    let stranger = vigil_core::token::TokenSigner::generate(app.signer.kid());
    let mut foreign = Socket::connect(url, None);
    foreign.send(json!({"type": "auth", "token": stranger.sign(&app.claims(Role::Admin))}));
    assert_eq!(foreign.close_code(), 4401);
    // An expired token.
    let mut claims: Claims = app.claims(Role::Viewer);
    claims.exp -= 3600;
    let mut expired = Socket::connect(url, None);
    expired.send(json!({"type": "auth", "token": app.signer.sign(&claims)}));
    assert_eq!(expired.close_code(), 4401);
    // A token whose session has ended.
    let mut claims = app.claims(Role::Viewer);
    claims.sid = Some(vigil_core::id::new_id());
    let mut ended = Socket::connect(url, None);
    ended.send(json!({"type": "auth", "token": app.signer.sign(&claims)}));
    assert_eq!(ended.close_code(), 4401);
    // A token that expires while the socket is open closes it with 4401
    // (30 s of leeway, as over HTTP: this one has 2 s left).
    let mut claims = app.claims(Role::Viewer);
    claims.exp = vigil_core::time::now_millis() / 1000 - 28;
    let mut short = Socket::connect(url, None);
    short.send(json!({"type": "auth", "token": app.signer.sign(&claims)}));
    assert_eq!(short.next()["for"], "auth");
    assert_eq!(short.close_code(), 4401);
    // Never from the query string.
    let r = vigil_e2e::client::request(
        "GET",
        &format!("{url}/ws?access_token={}", app.token(Role::Admin)),
        &[],
        None,
    )
    .unwrap();
    assert_eq!(r.status, 400, "{}", r.text());
}

fn relay_viewer_never_gets_the_audit_channel(app: &TestApp) {
    let Some(url) = relay(app) else { return };
    let mut refused = Socket::authenticated(app, url, Role::Viewer);
    refused.send(json!({"type": "subscribe", "channels": ["alerts", "audit"]}));
    assert_eq!(refused.close_code(), 4403);

    let mut supervisor = Socket::authenticated(app, url, Role::Supervisor);
    let snapshots = supervisor.subscribe(&["audit"], json!({}));
    assert_eq!(snapshots[0]["channel"], "audit");
    let mut viewer = Socket::authenticated(app, url, Role::Viewer);
    viewer.subscribe(
        &["alerts", "threats", "decisions", "sensors", "playbooks"],
        json!({}),
    );

    // An audited change: a user created by the admin.
    let user = app.create_user(Role::Viewer, "relay-audit-Passw0rd!x");
    let audited = supervisor.event_where(|m| {
        m["channel"] == "audit"
            && m["event"] == "user.created"
            && m["data"]["subject_id"] == user.id.as_str()
    });
    assert!(audited["data"]["hash"].is_string(), "{audited}");
    // The viewer's socket got nothing from the audit log.
    for m in viewer.until_pong() {
        assert_ne!(m["channel"], "audit", "{m}");
    }
}

fn relay_snapshot_comes_before_live_events(app: &TestApp) {
    let Some(url) = relay(app) else { return };
    let sensor = unique("relay-snap");
    let out = post_events(
        app,
        vec![event(&sensor, "s-1", "exploit_attempt", "198.51.100.31")],
    );
    let alert_id = out["accepted"][0]["alert_id"]
        .as_str()
        .expect("an alert")
        .to_string();

    let mut ws = Socket::authenticated(app, url, Role::Viewer);
    let snapshot = ws
        .subscribe(&["alerts"], json!({"sensor_id": sensor}))
        .remove(0);
    assert_eq!(snapshot["type"], "snapshot", "{snapshot}");
    assert_eq!(snapshot["channel"], "alerts");
    let items = snapshot["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{snapshot}");
    assert_eq!(items[0]["id"], alert_id.as_str());
    assert_eq!(items[0]["status"], "open");
    let as_of = snapshot["as_of"].as_i64().unwrap();
    // The alert's own outbox row is already in the snapshot.
    let opened_id = vigil_e2e::count(
        app,
        &format!("SELECT max(id) FROM events WHERE type = 'alert.opened' AND json_extract(payload, '$.id') = '{alert_id}'"),
    )
    .expect("the suite's database");
    assert!(opened_id <= as_of, "{opened_id} > {as_of}");

    // The same source again joins the alert: a live alert.updated after the snapshot.
    post_events(
        app,
        vec![event(&sensor, "s-2", "exploit_attempt", "198.51.100.31")],
    );
    let live = ws.event_where(|m| m["data"]["id"] == alert_id.as_str());
    assert_eq!(live["event"], "alert.updated");
    assert!(live["id"].as_i64().unwrap() > as_of);
}

fn relay_resume_replays_the_missed_events_then_live_ones(app: &TestApp) {
    let Some(url) = relay(app) else { return };
    let sensor = unique("relay-resume");
    let filters = json!({"sensor_id": sensor});
    let threat = |n: usize| event(&sensor, &format!("r-{n}"), "port_scan", "198.51.100.41");

    let mut first = Socket::authenticated(app, url, Role::Viewer);
    first.subscribe(&["threats"], filters.clone());
    post_events(app, vec![threat(0)]);
    let seen = first.event_where(|m| is(m, "threat.created"));
    let last_event_id = seen["id"].as_i64().unwrap();
    drop(first);

    // Missed while disconnected.
    post_events(app, vec![threat(1), threat(2)]);
    post_events(app, vec![threat(3)]);

    let mut again = Socket::authenticated(app, url, Role::Viewer);
    again.send(json!({"type": "resume", "last_event_id": last_event_id}));
    let ack = again.next();
    assert_eq!(ack["for"], "resume", "{ack}");
    again.send(json!({"type": "subscribe", "channels": ["threats"], "filters": filters}));
    assert_eq!(again.next()["for"], "subscribe");
    let mut replayed = Vec::new();
    for _ in 0..3 {
        let m = again.next();
        assert_eq!(m["type"], "event", "no snapshot after a resume: {m}");
        replayed.push(m);
    }
    let numbers: Vec<_> = replayed
        .iter()
        .map(|m| m["data"]["id"].as_str().unwrap().to_string())
        .collect();
    let ids: Vec<i64> = replayed.iter().map(|m| m["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "in id order: {ids:?}");
    assert!(ids[0] > last_event_id);
    assert_eq!(numbers.len(), 3);

    // Then live, with nothing repeated at the seam.
    post_events(app, vec![threat(4)]);
    let live = again.event_where(|m| is(m, "threat.created"));
    assert!(live["id"].as_i64().unwrap() > ids[2]);
    assert!(again.until_pong().is_empty(), "nothing twice");
    // Exactly the four events of this sensor after the one it had seen.
    let stored = vigil_e2e::count(
        app,
        &format!(
            "SELECT count(*) FROM events WHERE type = 'threat.created' AND id > {last_event_id}
               AND json_extract(payload, '$.sensor_id') = '{sensor}'"
        ),
    );
    assert_eq!(stored, Some(4));
}

/// A TCP connection to `addr` with a 4 KiB receive buffer, so that a client
/// that stops reading backs the relay's writer up quickly.
fn small_buffer_stream(addr: SocketAddr) -> TcpStream {
    use std::os::fd::FromRawFd;
    let SocketAddr::V4(v4) = addr else {
        panic!("the relay listens on IPv4 loopback")
    };
    // SAFETY: a fresh socket we own; the option and address structs are
    // valid for the calls' duration; the fd goes to the TcpStream.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        assert!(fd >= 0, "socket(2)");
        let size: libc::c_int = 4096;
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            &size as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
        let sin = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: v4.port().to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from(*v4.ip()).to_be(),
            },
            sin_zero: [0; 8],
        };
        let rc = libc::connect(
            fd,
            &sin as *const libc::sockaddr_in as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        );
        assert_eq!(rc, 0, "connect(2)");
        TcpStream::from_raw_fd(fd)
    }
}

fn relay_drops_a_slow_consumer_and_keeps_the_others(app: &TestApp) {
    // A relay of its own with the smallest per-client queue (one poll's
    // batch) and kernel send buffer.
    let Some(relay) = app.start_relay(&[
        ("VIGIL_RELAY_CLIENT_QUEUE", "500"),
        ("VIGIL_RELAY_SEND_BUFFER", "4096"),
    ]) else {
        vigil_e2e::skip(vigil_e2e::NEEDS_OWN_APP)
    };
    let url = relay.url.as_str();
    let sensor = unique("relay-flood");
    let filters = json!({"sensor_id": sensor});

    let mut slow = Socket::over(small_buffer_stream(relay_addr(url)), url, None);
    slow.send(json!({"type": "auth", "token": app.token(Role::Viewer)}));
    assert_eq!(slow.next()["for"], "auth");
    slow.subscribe(&["threats"], filters.clone());
    let mut fast = Socket::authenticated(app, url, Role::Viewer);
    fast.subscribe(&["threats"], filters);

    // The fast client reads everything as it comes, on its own thread.
    const BATCHES: usize = 8;
    const PER_BATCH: usize = 500;
    let reader = std::thread::spawn(move || {
        let mut ids = Vec::new();
        while ids.len() < BATCHES * PER_BATCH {
            let m = fast.event_where(|m| is(m, "threat.created"));
            ids.push(m["id"].as_i64().unwrap());
        }
        ids
    });
    // The slow one reads nothing while thousands of events go by; as soon as
    // it is dropped it reads (what had reached it, then the close), while the
    // rest is still being posted: the relay gives a dropped client 10 s to
    // take its close frame, which posting every batch first can outlast on a
    // loaded machine.
    std::thread::scope(|scope| {
        scope.spawn(|| {
            for b in 0..BATCHES {
                let events = (0..PER_BATCH)
                    .map(|i| event(&sensor, &format!("f-{b}-{i}"), "port_scan", "198.51.100.51"))
                    .collect();
                post_events(app, events);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        while relay.metric("vigil_relay_slow_consumer_drops_total") < 1.0 {
            assert!(
                Instant::now() < deadline,
                "no slow consumer was dropped: {}",
                relay.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(slow.close_code(), 1013);
    });
    let ids = reader.join().expect("the fast client got every event");
    assert_eq!(ids.len(), BATCHES * PER_BATCH);
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "in order, no duplicate"
    );
    assert!(relay.logs().contains("slow consumer"), "{}", relay.logs());
}

fn relay_health_readiness_and_metrics(app: &TestApp) {
    let Some(url) = relay(app) else { return };
    for path in ["/healthz", "/readyz"] {
        let r = vigil_e2e::client::request("GET", &format!("{url}{path}"), &[], None).unwrap();
        assert_eq!(r.status, 200, "{path}: {}", r.text());
    }
    let _ws = Socket::authenticated(app, url, Role::Viewer);
    assert!(app.relay_metric("vigil_relay_connections") >= 1.0);
    assert!(app.relay_metric("vigil_relay_events_pushed_total") >= 1.0);
    assert!(app.relay_metric("vigil_relay_outbox_position") >= 1.0);
    let r = vigil_e2e::client::request("GET", &format!("{url}/nope"), &[], None).unwrap();
    assert_eq!(r.status, 404);
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    // A browser from an origin that is not allowed may not connect.
    let r = vigil_e2e::client::request(
        "GET",
        &format!("{url}/ws"),
        &[
            ("origin", "https://evil.example"),
            ("connection", "upgrade"),
            ("upgrade", "websocket"),
            ("sec-websocket-version", "13"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ],
        None,
    )
    .unwrap();
    assert_eq!(r.status, 403, "{}", r.text());
    // The relay logs one JSON line per connection event.
    let logs = app.relay_logs();
    let line = logs
        .lines()
        .find(|l| l.contains("\"msg\":\"connected\""))
        .expect("a connection line");
    serde_json::from_str::<Value>(line).expect("JSON");
}

fn relay_resume_from_a_deleted_id_requires_a_resync(app: &TestApp) {
    let Some(url) = relay(app) else { return };
    let sensor = unique("relay-old");
    post_events(
        app,
        vec![event(&sensor, "o-1", "port_scan", "198.51.100.61")],
    );
    // Retention took everything but the newest row.
    execute(
        app,
        "DELETE FROM events WHERE id < (SELECT max(id) FROM events)",
    );
    let mut ws = Socket::authenticated(app, url, Role::Viewer);
    ws.send(json!({"type": "resume", "last_event_id": 1}));
    let m = ws.next();
    assert_eq!(m["type"], "resync_required", "{m}");
    assert!(m["oldest_retained"].as_i64().unwrap() > 2, "{m}");
    // From the newest retained id it can still resume.
    let newest = m["oldest_retained"].as_i64().unwrap();
    ws.send(json!({"type": "resume", "last_event_id": newest}));
    assert_eq!(ws.next()["for"], "resume");
}

/// Two relays running the scheduled jobs (every second) next to the suite's:
/// an overdue decision is escalated and a silent sensor published stale,
/// each once, pushed to a supervisor's socket, with the leases recorded.
fn relay_jobs_escalate_overdue_decisions_and_publish_stale_sensors(app: &TestApp) {
    let Some(url) = relay(app) else { return };
    let body = json!({
        "source": "e2e-engine",
        "subject": {"kind": "alert", "id": vigil_core::id::new_id()},
        "proposed_action": "block_ip",
        "parameters": {"target": "203.0.113.77"},
        "threat_level": "high",
        "confidence": 0.9,
        "summary": "Scan from 203.0.113.77",
        "rationale": "a job case",
        "evidence": {"refs": ["event:1"]}
    });
    let decision = app.submit_decision(&body);
    execute(
        app,
        &format!(
            "UPDATE decisions SET sla_deadline = sla_deadline - 86400000 WHERE id = '{decision}'"
        ),
    );
    // Heard from 5 minutes ago (stale after 2), last published online.
    let sensor = unique("job-sensor");
    let heard = vigil_core::time::now_millis() - 5 * 60 * 1000;
    execute(
        app,
        &format!(
            "INSERT INTO sensors (id, name, kind, last_heartbeat, published_status, version, created_by, created_at, updated_at)
             VALUES ('{sensor}', '{sensor}', 'honeypot', {heard}, 'online', 1, 'e2e', {heard}, {heard})"
        ),
    );
    let mut ws = Socket::authenticated(app, url, Role::Supervisor);
    ws.subscribe(&["decisions", "sensors"], json!({}));

    let every_second = [
        ("VIGIL_RELAY_JOBS", "all"),
        ("VIGIL_JOB_SLA_ESCALATION_SECONDS", "1"),
        ("VIGIL_JOB_SENSOR_STALENESS_SECONDS", "1"),
        ("VIGIL_JOB_RETENTION_SECONDS", "1"),
    ];
    let (Some(first), Some(second)) = (
        app.start_relay(&every_second),
        app.start_relay(&every_second),
    ) else {
        vigil_e2e::skip(vigil_e2e::NEEDS_OWN_APP)
    };
    let (mut escalated, mut stale) = (None, None);
    while escalated.is_none() || stale.is_none() {
        let m = ws.event_where(|_| true);
        if is(&m, "decision.updated") && m["data"]["decision"]["id"] == decision.as_str() {
            escalated = Some(m);
        } else if is(&m, "sensor.status") && m["data"]["id"] == sensor.as_str() {
            stale = Some(m);
        }
    }
    let (escalated, stale) = (escalated.unwrap(), stale.unwrap());
    assert_eq!(
        escalated["data"]["command"], "escalate-overdue",
        "{escalated}"
    );
    assert_eq!(escalated["data"]["actor"], "system:relay", "{escalated}");
    assert_eq!(escalated["data"]["decision"]["status"], "escalated");
    assert_eq!(stale["data"]["status"], "stale", "{stale}");
    assert_eq!(stale["data"]["was"], "online", "{stale}");
    let d = app.get_as(Role::Viewer, &format!("/api/decisions/{decision}"));
    assert_eq!(d.json()["status"], "escalated");

    // A few more runs of both relays change nothing more: one lease holder
    // per job, and each job idempotent.
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(
        count(
            app,
            &format!(
                "SELECT count(*) FROM decision_transitions WHERE decision_id = '{decision}' AND command = 'escalate-overdue'"
            )
        ),
        Some(1)
    );
    assert_eq!(
        count(
            app,
            &format!(
                "SELECT count(*) FROM events WHERE type = 'sensor.status' AND json_extract(payload, '$.id') = '{sensor}'"
            )
        ),
        Some(1)
    );
    assert_eq!(
        count(
            app,
            "SELECT count(*) FROM job_leases WHERE last_run_at IS NOT NULL AND json_valid(last_outcome)"
        ),
        // The four, and the suite relay's playbooks.
        Some(5),
        "{}",
        first.logs()
    );
    // Each job ran somewhere, and the two relays never both ran one at once
    // (its lease holder runs it every second).
    for job in [
        "sla_escalation",
        "sensor_staleness",
        "retention",
        "weekly_report",
    ] {
        let metric = format!("vigil_relay_job_runs_total{{job=\"{job}\"}}");
        let (a, b) = (first.metric(&metric), second.metric(&metric));
        assert!(a + b >= 1.0, "{job}: {}", first.logs());
    }
}
