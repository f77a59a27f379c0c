//! The realistic workload of `cargo xtask bench load`, deterministic from a
//! seed: 50 sensors; 35 % of events from 40 repeat offenders, the rest from
//! addresses all over the public space; an event-type mix like the seed data
//! of the backends Vigil replaces (scans and probes most, brute force next,
//! the rest rarer); destinations in the suite's zones (10 % in the critical OT
//! zone, half in the high internal one); sensor hints on a third; payloads of
//! about 100 bytes.

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
}

impl Mix {
    pub fn new(seed: u64, prefix: &str) -> Mix {
        Mix {
            state: seed,
            prefix: prefix.to_string(),
            next_id: 0,
        }
    }

    fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
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
            "tags": ["bench"],
        });
        if let Some(hint) = hint {
            event["severity_hint"] = json!(hint);
        }
        event
    }
}
