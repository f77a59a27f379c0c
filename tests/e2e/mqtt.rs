//! MQTT ingestion end to end: a real Mosquitto, the relay subscribed to it,
//! sensors publishing with their API keys in MQTT 5 user properties, and the
//! rows that result in the app's database. Each case starts its own broker
//! and relay next to the leg's app (same database).

use std::time::{Duration, Instant};

use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{Packet, PublishProperties};
use rumqttc::v5::{Client, Event, MqttOptions};
use serde_json::{Value, json};
use vigil_core::Role;
use vigil_db::Target;
use vigil_e2e::mosquitto::{Mosquitto, Security, TestCa};
use vigil_e2e::{
    RelayProcess, TEST_THREAT_ZONES, TestApp, block_on, count, execute, just_now, unique,
};

use crate::Case;

pub const CASES: &[Case] = &[
    (
        "mqtt_events_become_rows_and_alerts_and_heartbeats_bring_sensors_online",
        mqtt_events_become_rows_and_alerts_and_heartbeats_bring_sensors_online,
    ),
    (
        "mqtt_bad_messages_land_in_dead_letters_and_change_nothing_else",
        mqtt_bad_messages_land_in_dead_letters_and_change_nothing_else,
    ),
    (
        "mqtt_a_repeated_message_is_stored_once",
        mqtt_a_repeated_message_is_stored_once,
    ),
    (
        "the_same_batch_over_http_and_mqtt_gives_the_same_rows",
        the_same_batch_over_http_and_mqtt_gives_the_same_rows,
    ),
    (
        "mqtt_vigil_simulate_feeds_the_relay_like_a_fleet",
        mqtt_vigil_simulate_feeds_the_relay_like_a_fleet,
    ),
    (
        "mqtt_two_relays_share_the_stream_and_both_push_every_event",
        mqtt_two_relays_share_the_stream_and_both_push_every_event,
    ),
    (
        "mqtt_a_sensor_config_changed_over_http_is_retained_on_its_control_topic",
        mqtt_a_sensor_config_changed_over_http_is_retained_on_its_control_topic,
    ),
    (
        "mqtt_a_broker_with_logins_and_an_acl",
        mqtt_a_broker_with_logins_and_an_acl,
    ),
    (
        "mqtt_over_tls_with_a_private_ca",
        mqtt_over_tls_with_a_private_ca,
    ),
    // Last: on a libSQL server the killed relay's open transaction holds the
    // write lock until the server times it out, and the cases run after it
    // on that leg were seen storing at a crawl for minutes.
    (
        "mqtt_a_relay_killed_mid_stream_loses_nothing_and_stores_each_event_once",
        mqtt_a_relay_killed_mid_stream_loses_nothing_and_stores_each_event_once,
    ),
];

/// A broker and a relay ingesting from it, for one case.
struct Ingest {
    broker: Mosquitto,
    relay: RelayProcess,
    _dir: tempfile::TempDir,
}

/// The relay's pipeline settings, as the suite's apps have them.
fn pipeline_env(broker: &Mosquitto) -> Vec<(&'static str, String)> {
    let geoip = vigil_e2e::workspace_root().join("geoip/vigil-e2e-test.mmdb");
    vec![
        ("VIGIL_MQTT_URL", broker.url.clone()),
        ("VIGIL_MQTT_CLIENT_ID", unique("relay")),
        ("VIGIL_MQTT_BATCH_MS", "20".into()),
        ("VIGIL_THREAT_ZONES", TEST_THREAT_ZONES.into()),
        ("VIGIL_GEOIP_DATABASES", geoip.display().to_string()),
    ]
}

/// A broker and a relay on `db`; `None` when the suite did not start the app.
fn ingest(app: &TestApp, db: Option<&Target>) -> Option<Ingest> {
    let db = db.or(app.db.as_ref())?;
    let dir = tempfile::tempdir().unwrap();
    let broker = Mosquitto::start(dir.path()).expect("mosquitto starts");
    let env = pipeline_env(&broker);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let relay = RelayProcess::start(db, &app.signer, dir.path(), &env).expect("the relay starts");
    Some(Ingest {
        broker,
        relay,
        _dir: dir,
    })
}

/// An MQTT 5 publisher (the sensor side), its connection driven in a thread.
fn publisher(broker: &Mosquitto) -> Client {
    publisher_with(broker, None, None)
}

/// [`publisher`] with a broker login and, for `mqtts://`, the CA to trust.
fn publisher_with(broker: &Mosquitto, login: Option<(&str, &str)>, ca: Option<&TestCa>) -> Client {
    let mut options = MqttOptions::new(unique("sensor"), "127.0.0.1", broker.addr.port());
    options.set_keep_alive(Duration::from_secs(10));
    if let Some((user, password)) = login {
        options.set_credentials(user, password);
    }
    if let Some(ca) = ca {
        // As in the relay: rustls cannot choose between the linked back ends.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let pem = std::fs::read(&ca.ca).unwrap();
        options.set_transport(rumqttc::Transport::tls(pem, None, None));
    }
    let (client, mut connection) = Client::new(options, 100);
    std::thread::spawn(move || for _ in connection.iter() {});
    client
}

fn publish(client: &Client, topic: &str, key: Option<&str>, payload: &[u8]) {
    let properties = PublishProperties {
        user_properties: key
            .map(|k| vec![("authorization".to_string(), format!("Bearer {k}"))])
            .unwrap_or_default(),
        ..Default::default()
    };
    client
        .publish_with_properties(topic, QoS::AtLeastOnce, false, payload.to_vec(), properties)
        .expect("queued for the broker");
}

fn event(sensor: &str, id: &str, kind: &str, source: &str) -> Value {
    json!({
        "event_id": id, "sensor_id": sensor, "observed_at": just_now(), "event_type": kind,
        "source_ip": source, "dest_ip": "10.20.1.5", "severity_hint": "critical", "payload": {"n": id}
    })
}

/// A sensor key for `sensor` (the sensor is registered when `register`).
fn sensor_key(app: &TestApp, sensor: &str) -> String {
    let key = app.post_json_as(
        Role::Admin,
        "/api/auth/api-keys",
        &json!({"name": sensor, "kind": "sensor", "sensor_id": sensor, "scopes": ["sensors:ingest"]}),
    );
    assert_eq!(key.status, 201, "{}", key.text());
    key.json()["secret"].as_str().unwrap().to_string()
}

/// Wait (up to 20 s) until `sql` counts `want`.
fn wait_for_count(app: &TestApp, sql: &str, want: i64, relay: &RelayProcess) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = None;
    while Instant::now() < deadline {
        seen = count(app, sql);
        if seen == Some(want) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "{sql} is {seen:?}, not {want}; relay log:\n{}",
        relay.logs()
    );
}

fn mqtt_events_become_rows_and_alerts_and_heartbeats_bring_sensors_online(app: &TestApp) {
    let Some(ingest) = ingest(app, None) else {
        vigil_e2e::skip(vigil_e2e::NEEDS_OWN_APP)
    };
    let sensor = unique("mq");
    let made = app.post_json_as(
        Role::Admin,
        "/api/sensors",
        &json!({"id": sensor, "name": sensor, "kind": "honeypot"}),
    );
    assert_eq!(made.status, 201, "{}", made.text());
    let key = sensor_key(app, &sensor);
    let client = publisher(&ingest.broker);
    let topic = format!("vigil/sensors/{sensor}/events");
    let flood: Vec<Value> = (0..3)
        .map(|i| {
            event(
                &sensor,
                &format!("m-{i}"),
                "exploit_attempt",
                "203.0.113.77",
            )
        })
        .collect();
    publish(
        &client,
        &topic,
        Some(&key),
        json!({"events": flood}).to_string().as_bytes(),
    );
    publish(
        &client,
        &topic,
        Some(&key),
        event(&sensor, "m-3", "port_scan", "198.51.100.3")
            .to_string()
            .as_bytes(),
    );
    let mine = format!("SELECT count(*) FROM threat_events WHERE sensor_id = '{sensor}'");
    wait_for_count(app, &mine, 4, &ingest.relay);
    // The flood of one source is one alert with its count, as over HTTP.
    let alerts = app
        .get_as(Role::Viewer, &format!("/api/alerts?sensor_id={sensor}"))
        .json();
    let alerts = alerts["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0]["event_count"], 3);
    // Events from its own key, then a heartbeat, keep the sensor online.
    publish(
        &client,
        &format!("vigil/sensors/{sensor}/heartbeat"),
        Some(&key),
        br#"{"version": "2.1.0", "uptime_seconds": 60}"#,
    );
    wait_for_count(
        app,
        &format!("SELECT count(*) FROM sensors WHERE id = '{sensor}' AND heartbeat LIKE '%2.1.0%'"),
        1,
        &ingest.relay,
    );
    let status = app
        .get_as(Role::Viewer, &format!("/api/sensors/{sensor}"))
        .json();
    assert_eq!(status["status"], "online", "{status}");
    // One audit entry per sensor per committed batch (both messages may share one).
    let audited = count(
        app,
        &format!(
            "SELECT count(*) FROM audit_log WHERE action = 'threats.ingested' AND subject_id = '{sensor}'"
        ),
    );
    assert!(matches!(audited, Some(1 | 2)), "{audited:?}");
    assert!(ingest.relay.metric("vigil_relay_mqtt_events_stored_total") >= 4.0);

    // A heartbeat for an id no sensor has (its row gone, its key not yet
    // revoked) is a dead letter, not silently dropped.
    execute(app, &format!("DELETE FROM sensors WHERE id = '{sensor}'"));
    publish(
        &client,
        &format!("vigil/sensors/{sensor}/heartbeat"),
        Some(&key),
        br#"{"version": "2.1.1"}"#,
    );
    wait_for_count(
        app,
        &format!(
            "SELECT count(*) FROM dead_letters WHERE sensor_id = '{sensor}' AND reason LIKE '%is registered%'"
        ),
        1,
        &ingest.relay,
    );
}

fn mqtt_bad_messages_land_in_dead_letters_and_change_nothing_else(app: &TestApp) {
    let Some(ingest) = ingest(app, None) else {
        vigil_e2e::skip(vigil_e2e::NEEDS_OWN_APP)
    };
    let sensor = unique("mq");
    let other = unique("mq");
    let key = sensor_key(app, &sensor);
    let others_key = sensor_key(app, &other);
    let client = publisher(&ingest.broker);
    let topic = format!("vigil/sensors/{sensor}/events");
    let good = event(&sensor, "d-1", "port_scan", "198.51.100.9").to_string();
    // No key; a revoked-looking key; another sensor's key; not JSON; an
    // event naming another sensor; a topic that is not a sensor's.
    publish(&client, &topic, None, good.as_bytes());
    publish(
        &client,
        &topic,
        Some("vgk_00000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
        good.as_bytes(),
    );
    publish(&client, &topic, Some(&others_key), good.as_bytes());
    publish(&client, &topic, Some(&key), b"{not json");
    publish(
        &client,
        &topic,
        Some(&key),
        event(&other, "d-2", "port_scan", "198.51.100.9")
            .to_string()
            .as_bytes(),
    );
    publish(
        &client,
        &format!("vigil/sensors/{sensor}/control"),
        Some(&key),
        good.as_bytes(),
    );
    // One valid and one invalid event in one message: the valid one is
    // stored, the invalid one kept as a dead letter with its field.
    let mixed = json!({"events": [event(&sensor, "d-3", "port_scan", "198.51.100.9"), {"event_id": "d-4", "sensor_id": sensor}]});
    publish(&client, &topic, Some(&key), mixed.to_string().as_bytes());

    let letters = format!("SELECT count(*) FROM dead_letters WHERE sensor_id = '{sensor}'");
    wait_for_count(app, &letters, 6, &ingest.relay);
    let stored =
        format!("SELECT count(*) FROM threat_events WHERE sensor_id IN ('{sensor}', '{other}')");
    assert_eq!(
        count(app, &stored),
        Some(1),
        "only the valid event of the mixed message"
    );
    for reason in [
        "authorization",
        "unknown, malformed or revoked",
        "speaks for sensor",
        "payload",
        &other,
        "events[1]",
    ] {
        let sql = format!(
            "SELECT count(*) FROM dead_letters WHERE sensor_id = '{sensor}' AND instr(reason, '{}') > 0",
            reason.replace('\'', "''")
        );
        assert!(
            count(app, &sql).unwrap() >= 1,
            "a dead letter says {reason:?}"
        );
    }
    // The control topic is not subscribed: never stored, never a dead letter.
    // The key of one sensor changed nothing of the other.
    assert_eq!(
        count(
            app,
            &format!("SELECT count(*) FROM dead_letters WHERE sensor_id = '{other}'")
        ),
        Some(0)
    );
}

fn mqtt_a_repeated_message_is_stored_once(app: &TestApp) {
    let Some(ingest) = ingest(app, None) else {
        vigil_e2e::skip(vigil_e2e::NEEDS_OWN_APP)
    };
    let sensor = unique("mq");
    let key = sensor_key(app, &sensor);
    let client = publisher(&ingest.broker);
    let batch = json!({"events": (0..20).map(|i| event(&sensor, &format!("r-{i}"), "http_probe", "198.51.100.20")).collect::<Vec<_>>()});
    for _ in 0..3 {
        publish(
            &client,
            &format!("vigil/sensors/{sensor}/events"),
            Some(&key),
            batch.to_string().as_bytes(),
        );
    }
    let mine = format!("SELECT count(*) FROM threat_events WHERE sensor_id = '{sensor}'");
    wait_for_count(app, &mine, 20, &ingest.relay);
    let deadline = Instant::now() + Duration::from_secs(20);
    while ingest.relay.metric("vigil_relay_mqtt_duplicates_total") < 40.0
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        ingest.relay.metric("vigil_relay_mqtt_duplicates_total"),
        40.0
    );
    assert_eq!(count(app, &mine), Some(20));
}

/// The columns of a stored event that do not depend on when or where it
/// was stored (ids and ingestion times aside).
const COMPARED: &str = "sensor_id, event_id, observed_at, event_type, source_ip, source_class, source_port, dest_ip,
    dest_port, dest_zone, protocol, technique, score, severity, breakdown, confidence, payload, tags,
    alert_id IS NOT NULL, source_country, source_asn, source_as_org";

fn rows(db: &Target, sensor: &str) -> Vec<Vec<String>> {
    block_on(async {
        let conn = db.connect().await.unwrap();
        let mut rows = conn
            .query(
                &format!(
                    "SELECT {COMPARED} FROM threat_events WHERE sensor_id = ?1 ORDER BY event_id"
                ),
                [sensor],
            )
            .await
            .unwrap();
        let mut out = Vec::new();
        while let Some(row) = rows.next().await.unwrap() {
            out.push(
                (0..row.column_count())
                    .map(|i| format!("{:?}", row.get_value(i).unwrap()))
                    .collect(),
            );
        }
        out
    })
}

fn the_same_batch_over_http_and_mqtt_gives_the_same_rows(app: &TestApp) {
    let Some(http_db) = app.db.clone() else {
        vigil_e2e::skip(vigil_e2e::NEEDS_OWN_APP)
    };
    // A fresh database for the MQTT side, with the same sensor and a key for it.
    let dir = tempfile::tempdir().unwrap();
    let mqtt_db = Target::Local(dir.path().join("mqtt.db"));
    vigil_e2e::migrate(&mqtt_db).unwrap();
    vigil_e2e::seed_principals(&mqtt_db).unwrap();
    let (admin, _) = vigil_e2e::test_principal(Role::Admin);
    let sensor = unique("diff");
    let (key, prefix, hash) = vigil_core::api_key::generate();
    block_on(async {
        let conn = mqtt_db.connect().await.unwrap();
        conn.execute(
            "INSERT INTO api_keys (id, name, kind, sensor_id, prefix, secret_hash, scopes, created_by, created_at)
             VALUES ('k-diff', ?1, 'sensor', ?1, ?2, ?3, '[\"sensors:ingest\"]', ?4, 0)",
            [sensor.as_str(), prefix.as_str(), hash.as_str(), admin.as_str()],
        )
        .await
        .unwrap();
    });
    // A realistic mix: a flood (one alert), private and public sources (one
    // with country and AS), zones, a repeat offender, a duplicate.
    // Sources no other case uses: the repeat factor counts a source's
    // history in the whole database, and the HTTP side's is shared.
    let n = usize::from_str_radix(&sensor[sensor.len() - 2..], 16).unwrap() % 50;
    let offender = format!("81.2.69.{}", 200 + n);
    let private = format!("192.168.{}.{}", 100 + n, n + 1);
    let reserved = format!("198.51.100.{}", 200 + n);
    let mut events = Vec::new();
    for i in 0..6 {
        events.push(event(&sensor, &format!("x-{i}"), "brute_force", &offender));
    }
    events.push(event(&sensor, "x-6", "port_scan", &private));
    events.push(json!({"event_id": "x-7", "sensor_id": sensor, "observed_at": just_now(), "event_type": "http_probe",
                       "source_ip": reserved, "dest_ip": "10.1.2.3", "protocol": "tcp", "dest_port": 443,
                       "tags": ["edge"], "payload": {"path": "/admin"}, "confidence": 0.7}));
    events.push(event(&sensor, "x-0", "brute_force", &offender));
    let batch = json!({"events": events});

    let http_key = sensor_key(app, &sensor);
    let over_http = app.post_json("/api/threats/events", &batch, Some(&http_key));
    assert_eq!(over_http.status, 200, "{}", over_http.text());

    let Some(ingest) = ingest(app, Some(&mqtt_db)) else {
        vigil_e2e::skip(vigil_e2e::NEEDS_OWN_APP)
    };
    let client = publisher(&ingest.broker);
    publish(
        &client,
        &format!("vigil/sensors/{sensor}/events"),
        Some(&key),
        batch.to_string().as_bytes(),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while rows(&mqtt_db, &sensor).len() < 8 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let (http, mqtt) = (rows(&http_db, &sensor), rows(&mqtt_db, &sensor));
    assert_eq!(http.len(), 8, "{http:?}");
    assert_eq!(http, mqtt, "relay log:\n{}", ingest.relay.logs());
}

/// `kill -9` of the relay in the middle of a stream of 10,000 QoS 1 events,
/// then a restart with the same client id: the broker redelivers what was
/// not acknowledged, and every event is stored exactly once (and published
/// once to the outbox), however the crash fell between commit and ack.
fn mqtt_a_relay_killed_mid_stream_loses_nothing_and_stores_each_event_once(app: &TestApp) {
    const MESSAGES: usize = 1000;
    const PER_MESSAGE: usize = 10;
    let Some(db) = app.db.as_ref() else { return };
    let dir = tempfile::tempdir().unwrap();
    let broker = Mosquitto::start(dir.path()).expect("mosquitto starts");
    let env = pipeline_env(&broker);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut relay =
        RelayProcess::start(db, &app.signer, dir.path(), &env).expect("the relay starts");
    let sensor = unique("crash");
    let key = sensor_key(app, &sensor);
    let client = publisher(&broker);
    let stream = {
        let (client, sensor, key) = (client.clone(), sensor.clone(), key.clone());
        std::thread::spawn(move || {
            for m in 0..MESSAGES {
                let events: Vec<Value> = (0..PER_MESSAGE)
                    .map(|i| {
                        let n = m * PER_MESSAGE + i;
                        // Low severity: no alert, so the case measures storage alone.
                        json!({"event_id": format!("k-{n}"), "sensor_id": sensor, "observed_at": just_now(),
                               "event_type": "port_scan", "source_ip": format!("198.51.100.{}", n % 250 + 1),
                               "severity_hint": "low"})
                    })
                    .collect();
                publish(
                    &client,
                    &format!("vigil/sensors/{sensor}/events"),
                    Some(&key),
                    json!({"events": events}).to_string().as_bytes(),
                );
            }
        })
    };
    let stored = format!("SELECT count(*) FROM threat_events WHERE sensor_id = '{sensor}'");
    // Kill it once some of the stream is stored and more is on its way.
    let deadline = Instant::now() + Duration::from_secs(60);
    while count(app, &stored).unwrap_or(0) < 1000 {
        assert!(Instant::now() < deadline, "{}", relay.logs());
        std::thread::sleep(Duration::from_millis(10));
    }
    relay.kill();
    let at_kill = count(app, &stored).unwrap_or(0);
    stream.join().unwrap();
    let relay = RelayProcess::start(db, &app.signer, dir.path(), &env).expect("the relay restarts");
    let want = (MESSAGES * PER_MESSAGE) as i64;
    let deadline = Instant::now() + Duration::from_secs(240);
    while count(app, &stored) != Some(want) {
        assert!(
            Instant::now() < deadline,
            "{:?} of {want} stored ({at_kill} when killed); relay log:\n{}",
            count(app, &stored),
            relay.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        at_kill < want,
        "the kill fell after the whole stream ({at_kill})"
    );
    assert_eq!(
        count(
            app,
            &format!(
                "SELECT count(DISTINCT event_id) FROM threat_events WHERE sensor_id = '{sensor}'"
            )
        ),
        Some(want)
    );
    assert_eq!(
        count(
            app,
            &format!(
                "SELECT count(*) FROM events WHERE type = 'threat.created' AND json_extract(payload, '$.sensor_id') = '{sensor}'"
            )
        ),
        Some(want),
        "each event published once"
    );
    drop(client);
    drop(broker);
}

/// `vigil simulate --mqtt` for a few seconds next to an ingesting relay:
/// its sensors are registered with keys of their own, every event it sent
/// and their heartbeats are stored, and its keys are revoked when it stops.
/// (Its malformed messages, one in 50, are the unit test's; dead letters are
/// `mqtt_bad_messages_land_in_dead_letters_and_change_nothing_else`'s.)
fn mqtt_vigil_simulate_feeds_the_relay_like_a_fleet(app: &TestApp) {
    let Some(ingest) = ingest(app, None) else {
        vigil_e2e::skip(vigil_e2e::NEEDS_OWN_APP)
    };
    let db = app.db.as_ref().unwrap();
    let out = vigil_e2e::vigil_command(&vigil_e2e::vigil_bin(), db)
        .args(["simulate", "--mqtt", &ingest.broker.url])
        .args([
            "--sensors",
            "3",
            "--rate",
            "100",
            "--seconds",
            "5",
            "--seed",
            "9",
        ])
        .current_dir(vigil_e2e::workspace_root())
        .output()
        .expect("vigil simulate runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("malformed"), "a progress line: {stderr}");
    let sensors = "('sim-01', 'sim-02', 'sim-03')";
    wait_for_count(
        app,
        &format!(
            "SELECT count(*) FROM sensors WHERE id IN {sensors} AND heartbeat LIKE '%vigil-sim%'"
        ),
        3,
        &ingest.relay,
    );
    // Every event it says it sent is stored (a loaded machine sends fewer
    // in the 5 s than the rate asks, so the count is its own).
    let sent: i64 = stderr
        .lines()
        .last()
        .and_then(|l| l.split(" events").next()?.rsplit(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no summary line: {stderr}"));
    assert!(sent > 0, "{stderr}");
    // Generous: on sqld with every leg running at once this mix (alerts,
    // many sources) is stored slowly.
    let deadline = Instant::now() + Duration::from_secs(180);
    let stored = format!(
        "SELECT count(*) FROM threat_events WHERE sensor_id IN {sensors} AND tags LIKE '%simulated%'"
    );
    while count(app, &stored).unwrap_or(0) < sent {
        assert!(
            Instant::now() < deadline,
            "{:?} stored: {}",
            count(app, &stored),
            ingest.relay.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        count(
            app,
            &format!(
                "SELECT count(*) FROM api_keys WHERE sensor_id IN {sensors} AND revoked_at IS NULL"
            )
        ),
        Some(0),
        "the simulation's keys are revoked when it stops"
    );
}

/// Two relays on one database subscribed as one shared group: the broker
/// splits the stream between them, every event is stored exactly once, and
/// a WebSocket client on either relay receives every event (each relay
/// tails the whole outbox).
fn mqtt_two_relays_share_the_stream_and_both_push_every_event(app: &TestApp) {
    const MESSAGES: usize = 200;
    let Some(db) = app.db.as_ref() else { return };
    let dir = tempfile::tempdir().unwrap();
    let broker = Mosquitto::start(dir.path()).expect("mosquitto starts");
    let group = unique("vigil");
    let relays: Vec<RelayProcess> = (0..2)
        .map(|_| {
            let mut env = pipeline_env(&broker);
            env.push(("VIGIL_MQTT_SHARE_GROUP", group.clone()));
            let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
            RelayProcess::start(db, &app.signer, dir.path(), &env).expect("a relay starts")
        })
        .collect();
    let sensor = unique("shared");
    let key = sensor_key(app, &sensor);
    let mut sockets: Vec<_> = relays
        .iter()
        .map(|r| {
            let mut ws = crate::relay::Socket::authenticated(app, &r.url, Role::Viewer);
            ws.subscribe(&["threats"], json!({"sensor_id": sensor}));
            ws
        })
        .collect();
    let client = publisher(&broker);
    for m in 0..MESSAGES {
        // Low severity: events only, no alert.
        let e = json!({"event_id": format!("s-{m}"), "sensor_id": sensor, "observed_at": just_now(),
                       "event_type": "port_scan", "source_ip": "198.51.100.77", "severity_hint": "low"});
        publish(
            &client,
            &format!("vigil/sensors/{sensor}/events"),
            Some(&key),
            e.to_string().as_bytes(),
        );
    }
    let stored = format!("SELECT count(*) FROM threat_events WHERE sensor_id = '{sensor}'");
    wait_for_count(app, &stored, MESSAGES as i64, &relays[0]);
    // Split: both relays stored some of them, and together exactly all.
    let counts: Vec<f64> = relays
        .iter()
        .map(|r| r.metric("vigil_relay_mqtt_events_stored_total"))
        .collect();
    assert!(counts.iter().all(|c| *c > 0.0), "not split: {counts:?}");
    assert_eq!(counts.iter().sum::<f64>(), MESSAGES as f64, "{counts:?}");
    // Every socket, on either relay, gets every event, in order, once.
    for ws in &mut sockets {
        let mut seen = std::collections::HashSet::new();
        let mut last = 0;
        while seen.len() < MESSAGES {
            let m = ws.event_where(|m| m["event"] == "threat.created");
            let id = m["id"].as_i64().unwrap();
            assert!(id > last, "in outbox order");
            last = id;
            assert!(
                seen.insert(m["data"]["id"].as_str().unwrap().to_string()),
                "once: {m}"
            );
        }
    }
}

/// What a client that subscribes now to `sensor`'s control topic gets
/// within 2 s: whether it came retained, and the message.
fn control_message(broker: &Mosquitto, sensor: &str) -> Option<(bool, Value)> {
    control_message_as(broker, sensor, None)
}

fn control_message_as(
    broker: &Mosquitto,
    sensor: &str,
    login: Option<(&str, &str)>,
) -> Option<(bool, Value)> {
    let mut options = MqttOptions::new(unique("control"), "127.0.0.1", broker.addr.port());
    if let Some((user, password)) = login {
        options.set_credentials(user, password);
    }
    let (client, mut connection) = Client::new(options, 10);
    client
        .subscribe(format!("vigil/sensors/{sensor}/control"), QoS::AtLeastOnce)
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(2);
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match connection.recv_timeout(left) {
            Ok(Ok(Event::Incoming(Packet::Publish(p)))) => {
                return Some((p.retain, serde_json::from_slice(&p.payload).unwrap()));
            }
            Ok(Ok(_)) => {}
            _ => break,
        }
    }
    None
}

/// Wait (up to 20 s) until a fresh subscriber gets `sensor`'s retained
/// control message at `version`.
fn wait_for_control(broker: &Mosquitto, sensor: &str, version: i64, relay: &RelayProcess) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = None;
    while Instant::now() < deadline {
        seen = control_message(broker, sensor);
        // A message published while the client subscribes arrives live
        // (retain flag off); only the broker's stored copy has it on.
        if let Some((true, m)) = &seen
            && m["version"] == version
        {
            return m.clone();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "no retained control message at version {version} for {sensor} (last seen {seen:?}); relay log:\n{}",
        relay.logs()
    );
}

/// Sensor control: a configuration changed over HTTP (If-Match, audited,
/// published to the outbox) is retained on the sensor's control topic, so a
/// sensor that subscribes afterwards gets it; bad changes change nothing;
/// a relay started later against another broker publishes it again.
fn mqtt_a_sensor_config_changed_over_http_is_retained_on_its_control_topic(app: &TestApp) {
    let Some(ingest) = ingest(app, None) else {
        vigil_e2e::skip(vigil_e2e::NEEDS_OWN_APP)
    };
    let sensor = unique("ctl");
    let made = app.post_json_as(
        Role::Supervisor,
        "/api/sensors",
        &json!({"id": sensor, "name": sensor, "kind": "wireless"}),
    );
    assert_eq!(made.status, 201, "{}", made.text());
    assert_eq!(made.json()["config"], json!({}));
    // A new sensor's (empty) configuration is published too.
    let first = wait_for_control(&ingest.broker, &sensor, 1, &ingest.relay);
    assert_eq!(first["config"], json!({}));

    let path = format!("/api/sensors/{sensor}");
    let config = json!({"mode": "passive", "channels": [1, 6, 11], "report_seconds": 30});
    let good = json!({"config": config});
    let fresh = [("if-match", "\"1\"")];
    // Bad changes: no If-Match, a stale one, not an object, too big, a viewer.
    app.send_as(Role::Supervisor, "PATCH", &path, &[], Some(&good))
        .assert_problem(428, "precondition-required");
    app.send_as(
        Role::Supervisor,
        "PATCH",
        &path,
        &[("if-match", "\"7\"")],
        Some(&good),
    )
    .assert_problem(412, "precondition-failed");
    for bad in [
        json!({"config": [1, 2]}),
        json!({"config": "passive"}),
        json!({"config": {"blob": "x".repeat(17 * 1024)}}),
    ] {
        let problem = app
            .send_as(Role::Supervisor, "PATCH", &path, &fresh, Some(&bad))
            .assert_problem(422, "validation");
        assert_eq!(problem["errors"][0]["field"], "config", "{problem}");
    }
    let viewer = app.send_as(Role::Viewer, "PATCH", &path, &fresh, Some(&good));
    assert_eq!(viewer.status, 403, "{}", viewer.text());
    let unchanged = app.get_as(Role::Viewer, &path).json();
    assert_eq!(
        (unchanged["version"].clone(), unchanged["config"].clone()),
        (json!(1), json!({}))
    );
    let updates = format!(
        "SELECT count(*) FROM audit_log WHERE action = 'sensor.updated' AND subject_id = '{sensor}'"
    );
    assert_eq!(count(app, &updates), Some(0));

    // The change: If-Match with the current ETag.
    let r = app.send_as(Role::Supervisor, "PATCH", &path, &fresh, Some(&good));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("etag"), Some("\"2\""));
    assert_eq!(r.json()["config"], config);
    // Audited with before and after, and in the outbox with id and config.
    let audited = format!(
        "SELECT count(*) FROM audit_log WHERE action = 'sensor.updated' AND subject_id = '{sensor}'
            AND json_extract(before, '$.config') = '{{}}'
            AND json_extract(after, '$.config.mode') = 'passive'"
    );
    assert_eq!(count(app, &audited), Some(1));
    let published = format!(
        "SELECT count(*) FROM events WHERE type = 'sensor.updated'
            AND json_extract(payload, '$.id') = '{sensor}'
            AND json_extract(payload, '$.config.report_seconds') = 30"
    );
    assert_eq!(count(app, &published), Some(1));
    // A sensor subscribing afterwards gets its configuration, retained.
    let message = wait_for_control(&ingest.broker, &sensor, 2, &ingest.relay);
    assert_eq!(
        message,
        json!({"sensor_id": sensor, "version": 2, "config": config})
    );

    // A relay starting against a broker that has never seen it publishes
    // every sensor's configuration once.
    let db = app.db.as_ref().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let other = Mosquitto::start(dir.path()).expect("mosquitto starts");
    let env = pipeline_env(&other);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let relay = RelayProcess::start(db, &app.signer, dir.path(), &env).expect("the relay starts");
    let again = wait_for_control(&other, &sensor, 2, &relay);
    assert_eq!(again, message, "the same bytes from either relay");
}

/// The broker ACL the README documents: the relay reads what sensors send
/// and writes their control topics; each sensor, logged in with its id as
/// user name, writes only its own events and heartbeats and reads only its
/// own control topic.
const ACL: &str = "\
user vigil-relay
topic read vigil/sensors/+/events
topic read vigil/sensors/+/heartbeat
topic write vigil/sensors/+/control

pattern write vigil/sensors/%u/events
pattern write vigil/sensors/%u/heartbeat
pattern read vigil/sensors/%u/control
";

/// A broker that wants logins and enforces the README's ACL: the relay
/// logs in and ingests; a sensor cannot forge its own control message; a
/// relay with a wrong password stays unready and says why in its log.
fn mqtt_a_broker_with_logins_and_an_acl(app: &TestApp) {
    let Some(db) = app.db.as_ref() else { return };
    let sensor = unique("acl");
    let made = app.post_json_as(
        Role::Supervisor,
        "/api/sensors",
        &json!({"id": sensor, "name": sensor, "kind": "network"}),
    );
    assert_eq!(made.status, 201, "{}", made.text());
    let key = sensor_key(app, &sensor);
    let dir = tempfile::tempdir().unwrap();
    let users = [
        ("vigil-relay", "relay-secret"),
        (sensor.as_str(), "sensor-secret"),
    ];
    let broker = Mosquitto::start_with(
        dir.path(),
        &Security {
            users: &users,
            acl: Some(ACL),
            tls: None,
        },
    )
    .expect("mosquitto starts");
    let mut env = pipeline_env(&broker);
    env.push(("VIGIL_MQTT_USERNAME", "vigil-relay".into()));
    env.push(("VIGIL_MQTT_PASSWORD", "relay-secret".into()));
    let vars: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    // Ready means logged in and subscribed.
    let relay = RelayProcess::start(db, &app.signer, dir.path(), &vars).expect("the relay starts");
    let login = Some((sensor.as_str(), "sensor-secret"));
    let client = publisher_with(&broker, login, None);
    publish(
        &client,
        &format!("vigil/sensors/{sensor}/events"),
        Some(&key),
        event(&sensor, "acl-1", "port_scan", "198.51.100.9")
            .to_string()
            .as_bytes(),
    );
    let mine = format!("SELECT count(*) FROM threat_events WHERE sensor_id = '{sensor}'");
    wait_for_count(app, &mine, 1, &relay);
    // The relay's retained control message reaches the sensor; the sensor's
    // own attempt to write one is refused by the broker.
    let deadline = Instant::now() + Duration::from_secs(20);
    while control_message_as(&broker, &sensor, login).is_none() {
        assert!(
            Instant::now() < deadline,
            "no control message: {}",
            relay.logs()
        );
    }
    client
        .publish(
            format!("vigil/sensors/{sensor}/control"),
            QoS::AtLeastOnce,
            true,
            json!({"sensor_id": sensor, "version": 999, "config": {"forged": true}}).to_string(),
        )
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let (_, message) = control_message_as(&broker, &sensor, login).expect("the relay's message");
    assert_eq!(message["version"], 1, "{message}");
    assert_eq!(message["config"], json!({}), "{message}");

    // A wrong password: never ready, and the log says what to check.
    let mut env = pipeline_env(&broker);
    env.push(("VIGIL_MQTT_USERNAME", "vigil-relay".into()));
    env.push(("VIGIL_MQTT_PASSWORD", "wrong".into()));
    let vars: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let refused = RelayProcess::start_unready(db, &app.signer, dir.path(), &vars).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !refused.logs().contains("VIGIL_MQTT_PASSWORD") {
        assert!(
            Instant::now() < deadline,
            "no clear log line: {}",
            refused.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        !refused.logs().contains("wrong"),
        "the password is never logged"
    );
    let ready =
        vigil_e2e::client::request("GET", &format!("{}/readyz", refused.url), &[], None).unwrap();
    assert_eq!(ready.status, 503, "{}", ready.text());
    assert_eq!(refused.metric("vigil_relay_mqtt_broker_connected"), 0.0);
}

/// `mqtts://` with `VIGIL_MQTT_CA_FILE`: the relay trusts a private CA
/// (here a throwaway one for 127.0.0.1) and ingests over TLS.
fn mqtt_over_tls_with_a_private_ca(app: &TestApp) {
    let Some(db) = app.db.as_ref() else { return };
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::create(dir.path()).expect("a test CA (openssl)");
    let broker = Mosquitto::start_with(
        dir.path(),
        &Security {
            tls: Some(&ca),
            ..Default::default()
        },
    )
    .expect("mosquitto starts");
    assert!(broker.url.starts_with("mqtts://"), "{}", broker.url);
    let mut env = pipeline_env(&broker);
    env.push(("VIGIL_MQTT_CA_FILE", ca.ca.display().to_string()));
    let vars: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let relay = RelayProcess::start(db, &app.signer, dir.path(), &vars).expect("the relay starts");
    let sensor = unique("tls");
    let key = sensor_key(app, &sensor);
    let client = publisher_with(&broker, None, Some(&ca));
    publish(
        &client,
        &format!("vigil/sensors/{sensor}/events"),
        Some(&key),
        event(&sensor, "tls-1", "port_scan", "198.51.100.10")
            .to_string()
            .as_bytes(),
    );
    let mine = format!("SELECT count(*) FROM threat_events WHERE sensor_id = '{sensor}'");
    wait_for_count(app, &mine, 1, &relay);
}
