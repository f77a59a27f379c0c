//! `cargo xtask bench mqtt`: MQTT → committed rows. A real Mosquitto, the
//! release relay ingesting from it into a fresh SQLite file (or a libSQL
//! server with `--sqld`), and 50 sensors publishing the realistic mix
//! (QoS 1, `--per-message` events a message) for `--seconds`. Prints what
//! was published and what was committed per second, until the relay has
//! caught up; broker, publishers and relay share the machine.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::PublishProperties;
use rumqttc::v5::{Client, MqttOptions};
use vigil_core::token::TokenSigner;
use vigil_db::Target;
use vigil_e2e::RelayProcess;
use vigil_e2e::mosquitto::Mosquitto;

use crate::{cargo, root, run};
use vigil_traffic::{Mix, SENSORS};

struct Options {
    seconds: u64,
    per_message: usize,
    sqld: bool,
}

fn options(args: &[String]) -> Result<Options> {
    let mut o = Options {
        seconds: 20,
        per_message: 10,
        sqld: false,
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = || args.next().context("a value after the option");
        match arg.as_str() {
            "--seconds" => o.seconds = value()?.parse()?,
            "--per-message" => o.per_message = value()?.parse()?,
            "--sqld" => o.sqld = true,
            other => bail!(
                "unknown option {other}: cargo xtask bench mqtt [--seconds N] [--per-message N] [--sqld]"
            ),
        }
    }
    Ok(o)
}

pub fn bench(args: &[String]) -> Result<()> {
    let o = options(args)?;
    run(cargo().args([
        "build",
        "--release",
        "--package",
        "vigil-relay",
        "--bin",
        "vigil",
    ]))?;
    let bin = root().join("target/release/vigil");
    let dir = tempfile::Builder::new()
        .prefix("vigil-bench-mqtt-")
        .tempdir()?;
    let mut sqld = None;
    let db = if o.sqld {
        let server = vigil_e2e::sqld::Sqld::start(dir.path())?;
        let target = server.target();
        sqld = Some(server);
        target
    } else {
        Target::Local(dir.path().join("vigil.db"))
    };
    vigil_e2e::migrate(&db)?;
    vigil_e2e::seed_principals(&db)?;
    let keys = sensor_keys(&db)?;
    let broker = Mosquitto::start(dir.path())?;
    let signer = TokenSigner::generate("bench");
    let relay = RelayProcess::start_with(
        &bin,
        &db,
        &signer,
        dir.path(),
        &[
            ("VIGIL_MQTT_URL", &broker.url),
            ("VIGIL_THREAT_ZONES", vigil_e2e::TEST_THREAT_ZONES),
        ],
    )?;
    println!(
        "relay: {} on {}; {SENSORS} sensors publishing {} events a message, QoS 1, for {} s",
        bin.display(),
        if o.sqld { "sqld" } else { "a SQLite file" },
        o.per_message,
        o.seconds
    );

    let published = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let duration = Duration::from_secs(o.seconds);
    let publishers: Vec<_> = keys
        .into_iter()
        .enumerate()
        .map(|(i, (sensor, key))| {
            let (published, port, per_message) =
                (published.clone(), broker.addr.port(), o.per_message);
            std::thread::spawn(move || {
                publish(
                    i as u64,
                    &sensor,
                    &key,
                    port,
                    per_message,
                    duration,
                    &published,
                )
            })
        })
        .collect();
    let mut last = (0, started);
    let mut previous = 0;
    loop {
        std::thread::sleep(Duration::from_secs(1));
        let stored = stored(&db)?;
        let sent = published.load(Relaxed);
        println!(
            "{:>5.1} s: published {sent:>9} events, committed {stored:>9} ({:>6} in the last second)",
            started.elapsed().as_secs_f64(),
            stored - previous
        );
        if stored > last.0 {
            last = (stored, Instant::now());
        }
        previous = stored;
        let publishing = started.elapsed() < duration;
        if !publishing && (stored as u64 >= sent || last.1.elapsed() > Duration::from_secs(5)) {
            break;
        }
    }
    for p in publishers {
        let _ = p.join();
    }
    let sent = published.load(Relaxed);
    let seconds = last.1.duration_since(started).as_secs_f64();
    println!(
        "\npublished {sent} events in {} s ({:.0}/s); committed {} in {seconds:.1} s: {:.0} events/s sustained",
        o.seconds,
        sent as f64 / o.seconds as f64,
        last.0,
        last.0 as f64 / seconds
    );
    println!(
        "relay: {} batches, {} dead letters, resident memory {} MB",
        relay.metric("vigil_relay_mqtt_batches_total"),
        relay.metric("vigil_relay_mqtt_dead_letters_total"),
        relay
            .resident_mb()
            .map_or("?".into(), |m| format!("{m:.0}"))
    );
    if (last.0 as u64) < sent {
        bail!(
            "{} published events were not committed",
            sent - last.0 as u64
        );
    }
    drop(relay);
    drop(sqld);
    Ok(())
}

/// A key for each sensor of the mix, straight into the database.
fn sensor_keys(db: &Target) -> Result<Vec<(String, String)>> {
    vigil_e2e::block_on(async {
        let conn = db.connect().await?;
        let (admin, _) = vigil_e2e::test_principal(vigil_core::Role::Admin);
        let mut keys = Vec::new();
        for n in 0..SENSORS {
            let sensor = format!("sensor-{n:02}");
            let (key, prefix, hash) = vigil_core::api_key::generate();
            conn.execute(
                "INSERT INTO api_keys (id, name, kind, sensor_id, prefix, secret_hash, scopes, created_by, created_at)
                 VALUES (?1, ?1, 'sensor', ?1, ?2, ?3, '[\"sensors:ingest\"]', ?4, 0)",
                [sensor.as_str(), prefix.as_str(), hash.as_str(), admin.as_str()],
            )
            .await?;
            keys.push((sensor, key));
        }
        Ok(keys)
    })
}

fn stored(db: &Target) -> Result<i64> {
    vigil_e2e::block_on(async {
        let conn = db.connect().await?;
        Ok(
            vigil_db::target::query_i64(&conn, "SELECT count(*) FROM threat_events", ())
                .await?
                .unwrap_or(0),
        )
    })
}

/// One sensor: messages of `per_message` events of the mix as fast as QoS 1
/// allows, for `duration`.
fn publish(
    seed: u64,
    sensor: &str,
    key: &str,
    port: u16,
    per_message: usize,
    duration: Duration,
    published: &AtomicU64,
) {
    let mut options = MqttOptions::new(format!("bench-{sensor}"), "127.0.0.1", port);
    options.set_keep_alive(Duration::from_secs(30));
    let (client, mut connection) = Client::new(options, 64);
    std::thread::spawn(move || for _ in connection.iter() {});
    let properties = PublishProperties {
        user_properties: vec![("authorization".into(), format!("Bearer {key}"))],
        ..Default::default()
    };
    let topic = format!("vigil/sensors/{sensor}/events");
    let mut mix = Mix::new(seed, sensor);
    let started = Instant::now();
    while started.elapsed() < duration {
        let now = vigil_core::time::now_millis();
        let events: Vec<serde_json::Value> = (0..per_message)
            .map(|_| {
                let mut e = mix.event(now - 1000);
                e["sensor_id"] = sensor.into();
                e
            })
            .collect();
        let body = serde_json::json!({"events": events}).to_string();
        if client
            .publish_with_properties(&topic, QoS::AtLeastOnce, false, body, properties.clone())
            .is_err()
        {
            return;
        }
        published.fetch_add(per_message as u64, Relaxed);
    }
    let _ = client.disconnect();
}
