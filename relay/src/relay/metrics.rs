//! The relay's counters and gauges, rendered as Prometheus text at `/metrics`.
//! Plain atomics: the hot paths only add to them.

use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

use super::jobs::JobMetrics;

#[derive(Default)]
pub struct Metrics {
    /// MQTT ingestion's counters.
    pub mqtt: IngestMetrics,
    /// The scheduled jobs' counters.
    pub jobs: Arc<JobMetrics>,
    /// Open WebSocket connections (authenticated or not yet).
    pub connections: AtomicI64,
    pub connections_total: AtomicU64,
    pub auth_failures_total: AtomicU64,
    pub events_pushed_total: AtomicU64,
    pub snapshots_total: AtomicU64,
    pub replays_total: AtomicU64,
    pub replayed_events_total: AtomicU64,
    pub resyncs_required_total: AtomicU64,
    pub slow_consumer_drops_total: AtomicU64,
    pub refused_connections_total: AtomicU64,
    /// The outbox id the poller has delivered through.
    pub outbox_position: AtomicI64,
    /// Age of the newest outbox row at the moment it was fanned out.
    pub outbox_lag_ms: AtomicI64,
    pub polls_total: AtomicU64,
    pub poll_errors_total: AtomicU64,
}

impl Metrics {
    pub fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Relaxed);
    }

    /// The exposition text; `subscriptions` is counted by the hub when asked.
    pub fn render(&self, subscriptions: usize) -> String {
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, value: String| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        };
        let c = |a: &AtomicU64| a.load(Relaxed).to_string();
        let g = |a: &AtomicI64| a.load(Relaxed).to_string();
        metric(
            "vigil_relay_connections",
            "gauge",
            "Open WebSocket connections.",
            g(&self.connections),
        );
        metric(
            "vigil_relay_connections_total",
            "counter",
            "WebSocket connections accepted.",
            c(&self.connections_total),
        );
        metric(
            "vigil_relay_refused_connections_total",
            "counter",
            "Upgrades refused (connection limit, origin).",
            c(&self.refused_connections_total),
        );
        metric(
            "vigil_relay_auth_failures_total",
            "counter",
            "Sockets closed with 4401.",
            c(&self.auth_failures_total),
        );
        metric(
            "vigil_relay_subscriptions",
            "gauge",
            "Channel subscriptions over all sockets.",
            subscriptions.to_string(),
        );
        metric(
            "vigil_relay_events_pushed_total",
            "counter",
            "Event messages queued to sockets (live and replayed).",
            c(&self.events_pushed_total),
        );
        metric(
            "vigil_relay_snapshots_total",
            "counter",
            "Snapshots sent.",
            c(&self.snapshots_total),
        );
        metric(
            "vigil_relay_replays_total",
            "counter",
            "Resumes served from the outbox.",
            c(&self.replays_total),
        );
        metric(
            "vigil_relay_replayed_events_total",
            "counter",
            "Events sent from the database while a socket caught up.",
            c(&self.replayed_events_total),
        );
        metric(
            "vigil_relay_resyncs_required_total",
            "counter",
            "Resumes refused with resync_required.",
            c(&self.resyncs_required_total),
        );
        metric(
            "vigil_relay_slow_consumer_drops_total",
            "counter",
            "Sockets closed with 1013 because their send queue was full.",
            c(&self.slow_consumer_drops_total),
        );
        metric(
            "vigil_relay_outbox_position",
            "gauge",
            "The outbox id fanned out through.",
            g(&self.outbox_position),
        );
        metric(
            "vigil_relay_outbox_lag_milliseconds",
            "gauge",
            "Age of the newest outbox row when it was fanned out.",
            g(&self.outbox_lag_ms),
        );
        metric(
            "vigil_relay_polls_total",
            "counter",
            "Outbox polls.",
            c(&self.polls_total),
        );
        metric(
            "vigil_relay_poll_errors_total",
            "counter",
            "Outbox polls that failed (the database was unreachable).",
            c(&self.poll_errors_total),
        );
        self.mqtt.render(&mut out);
        self.jobs.render(&mut out);
        out
    }
}

/// MQTT ingestion's counters (`super::ingest`).
#[derive(Default)]
pub struct IngestMetrics {
    pub messages_total: AtomicU64,
    pub events_stored_total: AtomicU64,
    pub duplicates_total: AtomicU64,
    pub dead_letters_total: AtomicU64,
    pub batches_total: AtomicU64,
    pub batch_failures_total: AtomicU64,
    pub broker_connected: AtomicU64,
    pub control_published_total: AtomicU64,
}

impl IngestMetrics {
    /// Prometheus text lines.
    pub fn render(&self, out: &mut String) {
        for (name, help, value) in [
            (
                "vigil_relay_mqtt_messages_total",
                "MQTT messages received",
                &self.messages_total,
            ),
            (
                "vigil_relay_mqtt_events_stored_total",
                "events stored from MQTT",
                &self.events_stored_total,
            ),
            (
                "vigil_relay_mqtt_duplicates_total",
                "redelivered or repeated events skipped",
                &self.duplicates_total,
            ),
            (
                "vigil_relay_mqtt_dead_letters_total",
                "messages (or parts) kept in dead_letters",
                &self.dead_letters_total,
            ),
            (
                "vigil_relay_mqtt_batches_total",
                "ingest transactions committed",
                &self.batches_total,
            ),
            (
                "vigil_relay_mqtt_batch_failures_total",
                "ingest transactions that failed (retried)",
                &self.batch_failures_total,
            ),
            (
                "vigil_relay_mqtt_broker_connected",
                "1 while connected to the broker",
                &self.broker_connected,
            ),
            (
                "vigil_relay_mqtt_control_published_total",
                "sensor control messages published (retained)",
                &self.control_published_total,
            ),
        ] {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} {}\n{name} {}\n",
                if name.ends_with("_total") {
                    "counter"
                } else {
                    "gauge"
                },
                value.load(Relaxed)
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        Metrics::add(&m.slow_consumer_drops_total);
        m.connections.store(3, Relaxed);
        let text = m.render(5);
        assert!(text.contains("# TYPE vigil_relay_connections gauge\nvigil_relay_connections 3\n"));
        assert!(text.contains("vigil_relay_slow_consumer_drops_total 1\n"));
        assert!(text.contains("vigil_relay_subscriptions 5\n"));
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let mut parts = line.split(' ');
            assert!(parts.next().unwrap().starts_with("vigil_relay_"));
            assert!(parts.next().unwrap().parse::<i64>().is_ok(), "{line}");
        }
    }
}
