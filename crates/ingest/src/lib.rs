//! The threats domain: what makes an event posted over HTTP and the same
//! event arriving over MQTT end up identical in the database, and the rules
//! of sensors and playbooks. Plain Rust, no I/O beyond reading a GeoIP file
//! it is handed: the caller supplies the clock, the zone map and the
//! source's recent activity.
//!
//! - [`event`]: the event schema (version 1), event types and their MITRE
//!   ATT&CK techniques, validation with field-level errors, normalization.
//! - [`classify`]: address classes and the destination-zone map.
//! - [`geo`]: country and autonomous system from MaxMind-format databases.
//! - [`score`]: the 0–100 score with its breakdown, and severity from it.
//! - [`repeat`]: a source's recent activity (a score factor), for a batch.
//! - [`alert`]: which events raise alerts, and grouping within a window.
//! - [`sensor`]: sensor kinds and ids, and online/stale/offline from the
//!   heartbeat's age.
//! - [`playbook`]: triggers, actions, which actions must wait for a decision.

pub mod alert;
pub mod classify;
pub mod event;
pub mod geo;
pub mod playbook;
pub mod repeat;
pub mod score;
pub mod sensor;
