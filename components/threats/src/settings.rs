//! The threats component's variables, typed and parsed once per request
//! (`vigil_api::settings`): a bad one is a 503 naming it, never a default.

use std::sync::OnceLock;

use vigil_api::ApiError;
use vigil_api::settings::{Reader, number, text};
use vigil_ingest::classify::ZoneMap;
use vigil_ingest::sensor::Liveness;

pub const THREAT_ZONES: &str = "threat_zones";
pub const EVENT_RETENTION_DAYS: &str = "event_retention_days";
pub const ALERT_WINDOW_MINUTES: &str = "alert_window_minutes";
pub const SENSOR_ONLINE_SECONDS: &str = "sensor_online_seconds";
pub const SENSOR_OFFLINE_SECONDS: &str = "sensor_offline_seconds";
pub const WEBHOOK_ORIGIN: &str = "webhook_origin";
pub const WEBHOOK_SECRET: &str = "webhook_secret";
pub const GEOIP_DATABASES: &str = "geoip_databases";
pub const PUBLIC_BASE_URL: &str = "public_base_url";

/// The component's own variables (besides the shared ones and the decision
/// rules', see the crate's `VARIABLES`).
pub const VARIABLES: &[&str] = &[
    THREAT_ZONES,
    EVENT_RETENTION_DAYS,
    ALERT_WINDOW_MINUTES,
    SENSOR_ONLINE_SECONDS,
    SENSOR_OFFLINE_SECONDS,
    WEBHOOK_ORIGIN,
    WEBHOOK_SECRET,
    GEOIP_DATABASES,
    PUBLIC_BASE_URL,
];

pub struct Settings {
    /// `threat_zones`: CIDR=zone[:criticality], comma-separated (none by default).
    pub zones: ZoneMap,
    /// `event_retention_days` (default 90): older events are refused.
    pub retention_ms: i64,
    /// `alert_window_minutes` (default 15): events of one group within it share an alert.
    pub alert_window_ms: i64,
    /// `sensor_online_seconds` (default 120) and `sensor_offline_seconds`
    /// (default 600, and more than the online age).
    pub liveness: Liveness,
    /// `webhook_origin`: the one origin playbook webhooks may be sent to (it
    /// is also the component's `allowed_outbound_hosts`).
    pub webhook_origin: Option<String>,
    /// `webhook_secret` (secret; empty by default): when set, webhooks carry
    /// an HMAC signature (`vigil_ingest::playbook::webhook_signature`).
    pub webhook_secret: Option<String>,
    /// `geoip_databases`: comma-separated MaxMind-format files (paths inside
    /// the component, under the `geoip/` mount); none by default.
    pub geoip_databases: Vec<String>,
    /// `public_base_url`: where sensors reach the app (`https://vigil.example.com`),
    /// for the `register_url` of onboarding tokens; unset by default.
    pub public_base_url: Option<String>,
}

/// The settings, read once per request.
pub fn get() -> Result<&'static Settings, ApiError> {
    static SETTINGS: OnceLock<Result<Settings, ApiError>> = OnceLock::new();
    SETTINGS.get_or_init(load).as_ref().map_err(Clone::clone)
}

const DAY_SECONDS: i64 = 86_400;

fn load() -> Result<Settings, ApiError> {
    let mut r = Reader::new(VARIABLES);
    let read = (
        r.read(THREAT_ZONES, ZoneMap::parse),
        r.read(EVENT_RETENTION_DAYS, number(1, 36_500)),
        r.read(ALERT_WINDOW_MINUTES, number(1, 7 * 24 * 60)),
        r.read(SENSOR_ONLINE_SECONDS, number(1, 365 * DAY_SECONDS)),
        r.read(SENSOR_OFFLINE_SECONDS, number(1, 365 * DAY_SECONDS)),
        r.read(WEBHOOK_ORIGIN, webhook_origin),
        r.read(WEBHOOK_SECRET, text),
        r.read(GEOIP_DATABASES, text),
        r.read(PUBLIC_BASE_URL, vigil_core::net::base_url),
    );
    let (
        Some(zones),
        Some(retention_days),
        Some(window_minutes),
        Some(online),
        Some(offline),
        Some(webhook_origin),
        Some(secret),
        Some(geoip),
        Some(public_base_url),
    ) = read
    else {
        return Err(r.refusal());
    };
    if online >= offline {
        r.read(SENSOR_OFFLINE_SECONDS, |_| -> Result<(), String> {
            Err(format!(
                "{offline} is not more than sensor_online_seconds ({online})"
            ))
        });
        return Err(r.refusal());
    }
    Ok(Settings {
        zones,
        retention_ms: retention_days * DAY_SECONDS * 1000,
        alert_window_ms: window_minutes * 60 * 1000,
        liveness: Liveness::from_seconds(Some(online), Some(offline)),
        webhook_origin,
        webhook_secret: Some(secret).filter(|s| !s.is_empty()),
        geoip_databases: geoip
            .split(',')
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .collect(),
        public_base_url,
    })
}

/// An http(s) origin, lower case without a trailing `/`; empty is none.
fn webhook_origin(value: &str) -> Result<Option<String>, String> {
    let v = value.trim().trim_end_matches('/').to_ascii_lowercase();
    if v.is_empty() {
        return Ok(None);
    }
    vigil_ingest::playbook::origin(&v)
        .map(|_| Some(v.clone()))
        .ok_or_else(|| format!("{v:?} is not an http(s) origin such as https://hooks.example.com"))
}
