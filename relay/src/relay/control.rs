//! Sensor control: each sensor's configuration (`sensors.config`, changed
//! through `PATCH /api/sensors/{id}`) published retained, QoS 1, to
//! `vigil/sensors/{id}/control` on the connection MQTT ingestion uses, so a
//! sensor that (re)connects gets its current configuration from the broker.
//!
//! Every sensor once at start-up (what changed while no relay ran), then
//! each sensor named by an outbox event that may change it (the poller hands
//! the ids over; `vigil_ingest::sensor::CONTROL_EVENTS`). The message is read
//! from the sensor's row when it is published, never from the event, so two
//! relays publishing the same sensor publish the same retained bytes, and a
//! relay behind another repeats the current configuration, not an old one.
//! A sensor no longer in the registry has its retained message cleared.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use anyhow::Result;
use rumqttc::v5::AsyncClient;
use rumqttc::v5::mqttbytes::QoS;
use serde_json::json;
use tokio::sync::{mpsc, watch};
use vigil_db::Target;
use vigil_ingest::sensor::{control_message, control_topic};

use super::log;
use super::metrics::Metrics;

/// Sensors read per statement at start-up.
const PAGE: i64 = 500;

/// Publish until `shutdown`: every sensor first, then those `changed` names.
pub async fn run(
    client: AsyncClient,
    target: Target,
    mut changed: mpsc::UnboundedReceiver<String>,
    metrics: Arc<Metrics>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_millis(250);
    // Start-up: every sensor, retried until it has gone through once.
    loop {
        match publish_all(&client, &target, &metrics).await {
            Ok(n) => {
                log::line(
                    json!({"level": "info", "msg": "sensor control published", "sensors": n}),
                );
                break;
            }
            Err(e) => {
                log::line(
                    json!({"level": "error", "msg": "sensor control not published; retrying", "error": format!("{e:#}")}),
                );
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = super::stopping(&mut shutdown) => return,
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
    let mut conn = None;
    loop {
        let first = tokio::select! {
            first = changed.recv() => first,
            _ = super::stopping(&mut shutdown) => None,
        };
        let Some(first) = first else { return };
        // What piled up meanwhile, each sensor once.
        let mut sensors = BTreeSet::from([first]);
        while let Ok(more) = changed.try_recv() {
            sensors.insert(more);
        }
        let mut backoff = Duration::from_millis(100);
        loop {
            let result = async {
                if conn.is_none() {
                    conn = Some(target.connect().await?);
                }
                let c = conn.as_ref().expect("connected above");
                for sensor in &sensors {
                    publish_one(&client, c, sensor, &metrics).await?;
                }
                anyhow::Ok(())
            }
            .await;
            match result {
                Ok(()) => break,
                Err(e) => {
                    conn = None;
                    log::line(
                        json!({"level": "error", "msg": "sensor control not published; retrying", "error": format!("{e:#}")}),
                    );
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = super::stopping(&mut shutdown) => return,
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
            }
        }
    }
}

/// Every sensor's control message, page by page; how many.
async fn publish_all(client: &AsyncClient, target: &Target, metrics: &Metrics) -> Result<usize> {
    let conn = target.connect().await?;
    let mut after = String::new();
    let mut published = 0;
    loop {
        let mut rows = conn
            .query(
                "SELECT id, version, config FROM sensors WHERE id > ?1 ORDER BY id LIMIT ?2",
                libsql::params![after.clone(), PAGE],
            )
            .await?;
        let mut page = Vec::new();
        while let Some(row) = rows.next().await? {
            page.push((
                row.get::<String>(0)?,
                row.get::<i64>(1)?,
                row.get::<String>(2)?,
            ));
        }
        for (id, version, config) in &page {
            send(client, id, control_message(id, *version, config), metrics).await?;
        }
        published += page.len();
        match page.pop() {
            Some((last, _, _)) if page.len() + 1 == PAGE as usize => after = last,
            _ => return Ok(published),
        }
    }
}

/// Sensor `id`'s control message as its row has it now, or a cleared one.
async fn publish_one(
    client: &AsyncClient,
    conn: &libsql::Connection,
    id: &str,
    metrics: &Metrics,
) -> Result<()> {
    let mut rows = conn
        .query(
            "SELECT version, config FROM sensors WHERE id = ?1",
            libsql::params![id],
        )
        .await?;
    let payload = match rows.next().await? {
        Some(row) => control_message(id, row.get::<i64>(0)?, &row.get::<String>(1)?),
        // An empty retained message removes the broker's retained one.
        None => Vec::new(),
    };
    send(client, id, payload, metrics).await
}

async fn send(client: &AsyncClient, id: &str, payload: Vec<u8>, metrics: &Metrics) -> Result<()> {
    client
        .publish(control_topic(id), QoS::AtLeastOnce, true, payload)
        .await?;
    metrics.mqtt.control_published_total.fetch_add(1, Relaxed);
    Ok(())
}
