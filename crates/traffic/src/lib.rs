//! Realistic sensor traffic, deterministic from a seed, for `vigil simulate`
//! and the benchmarks (`cargo xtask bench load`, `bench mqtt`): 50 sensors;
//! 35 % of events from 40 repeat offenders, the rest from addresses all over
//! the public space; an event-type mix like the seed data of the backends
//! Vigil replaces (scans and probes most, brute force next, the rest
//! rarer); destinations in the suite's zones (10 % in the critical OT zone,
//! half in the high internal one); sensor hints on a third; payloads of
//! about 100 bytes. Also what a simulator sends besides: floods (one source
//! hammering one sensor), heartbeats, and malformed messages.

use serde_json::{Value, json};
use vigil_ingest::event::EventType;

pub const SENSORS: u64 = 50;
pub const OFFENDERS: u64 = 40;

/// Event types with their weight in the mix (per thousand).
const TYPES: [(EventType, u64); 16] = [
    (EventType::PortScan, 300),
    (EventType::HttpProbe, 150),
    (EventType::BruteForce, 180),
    (EventType::SshSession, 80),
    (EventType::SmbProbe, 50),
    (EventType::ExploitAttempt, 60),
    (EventType::SqlInjection, 50),
    (EventType::CredentialStuffing, 30),
    (EventType::MalwareDownload, 30),
    (EventType::C2Beacon, 20),
    (EventType::Dos, 10),
    (EventType::WifiDeauth, 10),
    (EventType::DataExfiltration, 10),
    (EventType::EvilTwin, 5),
    (EventType::BleSpam, 10),
    (EventType::UsbHidInjection, 5),
];

const PATHS: [&str; 6] = [
    "/wp-login.php",
    "/.env",
    "/cgi-bin/luci",
    "/api/v1/users?id=1%27%20OR%201=1",
    "/admin/config.php",
    "/vendor/phpunit/src/Util/PHP/eval-stdin.php",
];
const AGENTS: [&str; 4] = [
    "Mozilla/5.0 zgrab/0.x",
    "python-requests/2.31",
    "curl/8.4.0",
    "Go-http-client/1.1",
];

/// A splitmix64 stream: the same seed gives the same events everywhere.
pub struct Mix {
    state: u64,
    /// Prefix of every `event_id`, so separate streams never collide.
    prefix: String,
    next_id: u64,
    /// The `tags` every event carries.
    tag: String,
}

impl Mix {
    pub fn new(seed: u64, prefix: &str) -> Mix {
        Mix {
            state: seed,
            prefix: prefix.to_string(),
            next_id: 0,
            tag: "bench".into(),
        }
    }

    /// Events tagged `tag` instead of `bench`.
    pub fn tagged(mut self, tag: &str) -> Mix {
        self.tag = tag.into();
        self
    }

    fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn source_ip(&mut self) -> String {
        if self.below(100) < 35 {
            // The repeat offenders: a few public networks, one known to the suite's GeoIP.
            let n = self.below(OFFENDERS);
            match n % 4 {
                0 => format!("81.2.69.{}", 10 + n),
                1 => format!("45.155.205.{}", 10 + n),
                2 => format!("185.220.101.{}", 10 + n),
                _ => format!("2a02:cf40::{:x}", 10 + n),
            }
        } else {
            // Anywhere in 1.0.0.0–223.255.255.255 (a few land in private ranges, as in life).
            let a = 1 + self.below(223);
            format!(
                "{a}.{}.{}.{}",
                self.below(256),
                self.below(256),
                1 + self.below(254)
            )
        }
    }

    fn event_type(&mut self) -> EventType {
        let mut pick = self.below(TYPES.iter().map(|t| t.1).sum());
        for (t, weight) in TYPES {
            if pick < weight {
                return t;
            }
            pick -= weight;
        }
        EventType::Other
    }

    /// One event as a sensor posts it, observed at `observed_at_ms`.
    pub fn event(&mut self, observed_at_ms: i64) -> Value {
        self.next_id += 1;
        let event_type = self.event_type();
        let dest_ip = match self.below(10) {
            0 => format!("10.20.{}.{}", self.below(256), 1 + self.below(254)),
            1..=5 => format!(
                "10.{}.{}.{}",
                self.below(20),
                self.below(256),
                1 + self.below(254)
            ),
            _ => format!("192.168.{}.{}", self.below(4), 1 + self.below(254)),
        };
        let dest_port = [22, 80, 443, 445, 3389, 8080, 23, 502][self.below(8) as usize];
        let hint = match self.below(9) {
            0 => Some("medium"),
            1 => Some("high"),
            2 => Some("low"),
            _ => None,
        };
        let mut event = json!({
            "event_id": format!("{}-{}", self.prefix, self.next_id),
            "sensor_id": format!("sensor-{:02}", self.below(SENSORS)),
            "observed_at": observed_at_ms,
            "event_type": event_type,
            "source_ip": self.source_ip(),
            "source_port": 1024 + self.below(64_000),
            "dest_ip": dest_ip,
            "dest_port": dest_port,
            "protocol": "tcp",
            "confidence": 0.6 + self.below(41) as f64 / 100.0,
            "payload": {
                "path": PATHS[self.below(PATHS.len() as u64) as usize],
                "user_agent": AGENTS[self.below(AGENTS.len() as u64) as usize],
                "bytes": self.below(20_000),
            },
            "tags": [self.tag],
        });
        if let Some(hint) = hint {
            event["severity_hint"] = json!(hint);
        }
        event
    }
}

impl Mix {
    /// `count` events of one source, type and sensor in a burst: what
    /// alert grouping turns into one alert with a count.
    pub fn flood(&mut self, sensor: &str, count: usize, observed_at_ms: i64) -> Vec<Value> {
        let first = self.event(observed_at_ms);
        (0..count)
            .map(|_| {
                self.next_id += 1;
                let mut e = first.clone();
                e["event_id"] = json!(format!("{}-{}", self.prefix, self.next_id));
                e["sensor_id"] = json!(sensor);
                e["severity_hint"] = json!("high");
                e
            })
            .collect()
    }

    /// A heartbeat body as a sensor sends it.
    pub fn heartbeat(&mut self, uptime_seconds: u64) -> Value {
        json!({"version": "vigil-sim/1.0", "uptime_seconds": uptime_seconds,
               "metrics": {"queue_depth": self.below(50), "cpu_percent": self.below(100)}})
    }

    /// A message a broken sensor might send: not JSON, an event missing its
    /// type, or an event that names another sensor than its topic's.
    pub fn malformed(&mut self, sensor: &str, observed_at_ms: i64) -> Vec<u8> {
        match self.below(3) {
            0 => b"{\"events\": [ this is not JSON".to_vec(),
            1 => {
                let mut e = self.event(observed_at_ms);
                e["sensor_id"] = json!(sensor);
                e.as_object_mut().expect("an object").remove("event_type");
                json!({"events": [e]}).to_string().into_bytes()
            }
            _ => {
                let mut e = self.event(observed_at_ms);
                e["sensor_id"] = json!(format!("not-{sensor}"));
                json!({"events": [e]}).to_string().into_bytes()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_events_and_every_event_is_valid() {
        let (mut a, mut b) = (Mix::new(7, "t"), Mix::new(7, "t"));
        let now = 1_780_000_000_000;
        for _ in 0..200 {
            let (x, y) = (a.event(now), b.event(now));
            assert_eq!(x, y);
            let raw: vigil_ingest::event::RawEvent = serde_json::from_value(x).unwrap();
            assert!(vigil_ingest::event::validate(raw, now, 86_400_000, "e").is_ok());
        }
        let flood = a.flood("s-1", 20, now);
        assert_eq!(flood.len(), 20);
        assert!(
            flood
                .iter()
                .all(|e| e["sensor_id"] == "s-1" && e["source_ip"] == flood[0]["source_ip"])
        );
        let ids: std::collections::HashSet<_> =
            flood.iter().map(|e| e["event_id"].clone()).collect();
        assert_eq!(ids.len(), 20);
    }
}
