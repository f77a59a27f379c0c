//! `cargo xtask bench relay`: the relay's figures, on this machine, loopback
//! only, each part bounded in time.
//!
//! 1. MQTT → committed rows with 50 publishing sensors: `bench mqtt`'s
//!    measurement, run as it is (`--seconds`).
//! 2. Fan-out: `--clients` WebSocket clients (default 10,000) subscribed to
//!    `alerts` on one release relay over a SQLite file; `--events` alert
//!    events (default 200) committed one per transaction, `--rate` a second
//!    (default 20). For every delivery, the latency from the event's commit
//!    time (`ts` in the pushed message) to its receipt: p50, p99, max; and the
//!    relay's resident memory (VmRSS) with every client subscribed.
//! 3. The same with 2 relays on `sqld`, the clients split between them.
//!
//! The clients run on one thread of this process (a current-thread tokio
//! runtime), so they use at most one of the machine's cores. Both sides need
//! a file descriptor per socket: this process raises its soft
//! `RLIMIT_NOFILE` to the hard limit, and the relays it starts inherit it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use vigil_core::Role;
use vigil_core::token::{Claims, TokenSigner};
use vigil_db::Target;
use vigil_e2e::RelayProcess;

use crate::{cargo, root, run};

struct Options {
    clients: usize,
    events: usize,
    rate: u64,
    seconds: u64,
    skip_mqtt: bool,
}

fn options(args: &[String]) -> Result<Options> {
    let mut o = Options {
        clients: 10_000,
        events: 200,
        rate: 20,
        seconds: 20,
        skip_mqtt: false,
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = || args.next().context("a value after the option");
        match arg.as_str() {
            "--clients" => o.clients = value()?.parse()?,
            "--events" => o.events = value()?.parse()?,
            "--rate" => o.rate = value()?.parse()?,
            "--seconds" => o.seconds = value()?.parse()?,
            "--skip-mqtt" => o.skip_mqtt = true,
            other => bail!(
                "unknown option {other}: cargo xtask bench relay [--clients N] [--events N] [--rate N] [--seconds N] [--skip-mqtt]"
            ),
        }
    }
    if o.clients == 0 || o.events == 0 || o.rate == 0 {
        bail!("--clients, --events and --rate must be at least 1");
    }
    Ok(o)
}

pub fn run_bench(args: &[String]) -> Result<()> {
    let o = options(args)?;
    let limit = raise_fd_limit()?;
    // Each client is a socket here and one in a relay, plus a few files.
    if limit < o.clients as u64 + 256 {
        bail!(
            "the file descriptor limit is {limit}, too low for {} clients: raise the hard limit (ulimit -Hn, or LimitNOFILE) or pass a smaller --clients",
            o.clients
        );
    }
    println!("file descriptors: {limit} for this process and the relays it starts (inherited)");
    if !o.skip_mqtt {
        println!(
            "\n== 1. MQTT → committed rows (bench mqtt --seconds {})",
            o.seconds
        );
        super::mqtt::bench(&["--seconds".into(), o.seconds.to_string()])?;
    }
    run(cargo().args([
        "build",
        "--release",
        "--package",
        "vigil-relay",
        "--bin",
        "vigil",
    ]))?;
    let bin = root().join("target/release/vigil");
    println!(
        "\n== 2. fan-out: {} clients on 1 relay, a SQLite file; {} alert events at {}/s",
        o.clients, o.events, o.rate
    );
    fanout(&bin, &o, 1, false)?;
    if vigil_e2e::sqld::sqld_binary().is_none() {
        println!(
            "\n== 3. SKIPPED: 2 relays on sqld: sqld not found (set VIGIL_SQLD or put sqld on PATH)"
        );
    } else {
        println!(
            "\n== 3. fan-out: {} clients on 2 relays, sqld; {} alert events at {}/s",
            o.clients, o.events, o.rate
        );
        fanout(&bin, &o, 2, true)?;
    }
    println!(
        "\nThe machine is shared (other builds and tests run on it): figures vary from run to run."
    );
    Ok(())
}

/// Soft `RLIMIT_NOFILE` up to the hard limit; the new soft limit.
fn raise_fd_limit() -> Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct given.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            bail!("getrlimit(RLIMIT_NOFILE) failed");
        }
        limit.rlim_cur = limit.rlim_max;
        if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
            bail!("setrlimit(RLIMIT_NOFILE) failed");
        }
    }
    Ok(limit.rlim_cur)
}

fn fanout(bin: &std::path::Path, o: &Options, relays: usize, sqld: bool) -> Result<()> {
    let dir = tempfile::Builder::new()
        .prefix("vigil-bench-relay-")
        .tempdir()?;
    let server = if sqld {
        Some(vigil_e2e::sqld::Sqld::start(dir.path())?)
    } else {
        None
    };
    let db = match &server {
        Some(s) => s.target(),
        None => Target::Local(dir.path().join("vigil.db")),
    };
    vigil_e2e::migrate(&db)?;
    vigil_e2e::seed_principals(&db)?;
    let signer = TokenSigner::generate("bench");
    let per_relay = o.clients.div_ceil(relays) + 100;
    let relays: Vec<RelayProcess> = (0..relays)
        .map(|_| {
            RelayProcess::start_with(
                bin,
                &db,
                &signer,
                dir.path(),
                &[
                    ("VIGIL_RELAY_MAX_CONNECTIONS", &per_relay.to_string()),
                    // The default interval, not the test suite's 20 ms.
                    ("VIGIL_RELAY_POLL_MS", "50"),
                ],
            )
        })
        .collect::<Result<_>>()?;
    let idle_mb: Vec<String> = relays.iter().map(memory).collect();
    let urls: Vec<String> = relays
        .iter()
        .map(|r| format!("{}/ws", r.url.replace("http://", "ws://")))
        .collect();
    let (user, session) = vigil_e2e::test_principal(Role::Viewer);
    let now = vigil_core::time::now_millis() / 1000;
    let token = signer.sign(&Claims::user_access(
        "vigil",
        "vigil",
        &user,
        Role::Viewer,
        &session,
        now,
    ));

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let outcome = runtime.block_on(drive(o, &urls, &token, &db, &relays))?;
    let busy_mb: Vec<String> = relays.iter().map(memory).collect();
    let Outcome {
        connect,
        mut latencies,
        subscribed,
        expected,
        sent_for,
    } = outcome;
    latencies.sort_unstable();
    let pct = |p: f64| -> String {
        if latencies.is_empty() {
            return "-".into();
        }
        let i = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1;
        format!("{} ms", latencies[i])
    };
    println!(
        "subscribed {subscribed}/{} clients in {:.1} s; {} events committed in {:.1} s",
        o.clients,
        connect.as_secs_f64(),
        o.events,
        sent_for.as_secs_f64()
    );
    println!(
        "delivered {}/{expected}: commit-to-delivery p50 {}, p99 {}, max {}",
        latencies.len(),
        pct(0.50),
        pct(0.99),
        latencies.last().map_or("-".into(), |m| format!("{m} ms"))
    );
    println!(
        "relay resident memory (VmRSS): {} before clients, {} with them subscribed",
        idle_mb.join(" + "),
        busy_mb.join(" + ")
    );
    for r in &relays {
        let drops = r.metric("vigil_relay_slow_consumer_drops_total");
        if drops > 0.0 {
            println!("  {} slow consumers dropped by {}", drops, r.url);
        }
    }
    drop(relays);
    drop(server);
    Ok(())
}

fn memory(r: &RelayProcess) -> String {
    r.resident_mb().map_or("?".into(), |m| format!("{m:.0} MB"))
}

struct Outcome {
    connect: Duration,
    latencies: Vec<u32>,
    subscribed: usize,
    expected: usize,
    sent_for: Duration,
}

/// Connect and subscribe every client, commit the events, collect what arrives.
async fn drive(
    o: &Options,
    urls: &[String],
    token: &str,
    db: &Target,
    relays: &[RelayProcess],
) -> Result<Outcome> {
    let subscribed = Arc::new(AtomicUsize::new(0));
    // Handshakes at a time: enough to fill the relays' accept queues, few
    // enough not to time out.
    let handshakes = Arc::new(Semaphore::new(200));
    let started = Instant::now();
    let connect_deadline = started + Duration::from_secs(180);
    let mut tasks = Vec::with_capacity(o.clients);
    for i in 0..o.clients {
        let url = urls[i % urls.len()].clone();
        let token = token.to_string();
        let (subscribed, handshakes) = (subscribed.clone(), handshakes.clone());
        let events = o.events;
        tasks.push(tokio::spawn(async move {
            client(url, token, events, subscribed, handshakes).await
        }));
    }
    loop {
        let n = subscribed.load(Relaxed);
        if n >= o.clients || Instant::now() > connect_deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        if tasks.iter().all(|t| t.is_finished()) {
            break;
        }
    }
    let connect = started.elapsed();
    let subscribed = subscribed.load(Relaxed);
    if subscribed == 0 {
        bail!(
            "no client could subscribe; relay log:\n{}",
            relays[0].logs()
        );
    }
    // Let the relays settle after the connection storm.
    tokio::time::sleep(Duration::from_secs(1)).await;

    // The events: one transaction each, paced.
    let conn = db.connect().await?;
    let gap = Duration::from_secs_f64(1.0 / o.rate as f64);
    let writing = Instant::now();
    for n in 0..o.events {
        let due = writing + gap * n as u32;
        tokio::time::sleep_until(due.into()).await;
        let now = vigil_core::time::now_millis();
        let payload = serde_json::json!({
            "id": format!("bench-alert-{n}"), "severity": "high", "status": "open",
            "event_type": "brute_force", "sensor_id": "sensor-01", "source_ip": "198.51.100.7",
            "event_count": 1,
        });
        conn.execute(
            "INSERT INTO events (type, payload, created_at) VALUES ('alert.opened', ?1, ?2)",
            libsql::params![payload.to_string(), now],
        )
        .await?;
    }
    let sent_for = writing.elapsed();
    // Every client stops once it has every event, or 30 s after the last.
    let mut latencies = Vec::new();
    let collect_deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    for t in tasks {
        if let Ok(Ok(got)) = tokio::time::timeout_at(collect_deadline, t).await {
            latencies.extend(got);
        }
    }
    Ok(Outcome {
        connect,
        latencies,
        subscribed,
        expected: subscribed * o.events,
        sent_for,
    })
}

/// One client: handshake (token as the subprotocol pair), subscribe to
/// alerts, then the latency of each event until it has `events` of them.
async fn client(
    url: String,
    token: String,
    events: usize,
    subscribed: Arc<AtomicUsize>,
    handshakes: Arc<Semaphore>,
) -> Vec<u32> {
    let mut got = Vec::with_capacity(events);
    let permit = handshakes.acquire_owned().await;
    let Ok(mut request) = url.as_str().into_client_request() else {
        return got;
    };
    let Ok(protocols) = format!("vigil.v1, bearer.{token}").parse() else {
        return got;
    };
    request
        .headers_mut()
        .insert("sec-websocket-protocol", protocols);
    let addr = url
        .trim_start_matches("ws://")
        .trim_end_matches("/ws")
        .to_string();
    let Ok(Ok(stream)) = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::net::TcpStream::connect(addr),
    )
    .await
    else {
        return got;
    };
    // Small buffers: 10,000 clients in one process.
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let Ok(Ok((mut ws, _))) = tokio::time::timeout(
        Duration::from_secs(30),
        tokio_tungstenite::client_async_with_config(request, stream, Some(config)),
    )
    .await
    else {
        return got;
    };
    let subscribe = r#"{"type":"subscribe","channels":["alerts"]}"#;
    if ws.send(Message::text(subscribe)).await.is_err() {
        return got;
    }
    // The auth ack, the subscribe ack, then the snapshot: subscribed.
    let mut snapshot = false;
    while let Some(Ok(m)) = ws.next().await {
        if let Message::Text(t) = m
            && t.contains(r#""type":"snapshot""#)
        {
            snapshot = true;
            break;
        }
    }
    drop(permit);
    if !snapshot {
        return got;
    }
    subscribed.fetch_add(1, Relaxed);
    while got.len() < events {
        let Some(Ok(m)) = ws.next().await else { break };
        if let Message::Text(t) = m
            && let Some(ts) = event_ts(&t)
        {
            let now = vigil_core::time::now_millis();
            got.push((now - ts).max(0) as u32);
        }
    }
    let _ = ws.close(None).await;
    got
}

/// The `ts` of an `event` message, in ms since the epoch (no full parse:
/// the clients share one core).
fn event_ts(text: &str) -> Option<i64> {
    if !text.contains(r#""type":"event""#) {
        return None;
    }
    let at = text.find(r#""ts":""#)? + 6;
    parse_rfc3339_ms(text.get(at..at + 24)?)
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` → ms since the epoch.
fn parse_rfc3339_ms(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 24 || b[23] != b'Z' {
        return None;
    }
    let n = |from: usize, to: usize| s.get(from..to)?.parse::<i64>().ok();
    let (y, m, d) = (n(0, 4)?, n(5, 7)?, n(8, 10)?);
    let (hh, mm, ss, ms) = (n(11, 13)?, n(14, 16)?, n(17, 19)?, n(20, 23)?);
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 24 + hh) * 60 + mm) * 60_000 + ss * 1000 + ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_relays_timestamps() {
        for ms in [0, 1_790_010_000_123, 1_709_164_800_999] {
            let text = vigil_core::time::rfc3339(ms);
            assert_eq!(parse_rfc3339_ms(&text), Some(ms), "{text}");
            let message = format!(r#"{{"type":"event","id":1,"ts":"{text}"}}"#);
            assert_eq!(event_ts(&message), Some(ms));
        }
    }
}
