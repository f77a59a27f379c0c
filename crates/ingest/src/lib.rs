//! The threats domain: what makes an event posted over HTTP and the same
//! event arriving over MQTT end up identical in the database, and the rules
//! of sensors and playbooks. The rules are plain functions; the
//! [`pipeline`] that applies them to a batch reads and writes rows through
//! [`vigil_core::sql::Sql`], whose connection the caller supplies (Spin's
//! SQLite in the component, `libsql` in the relay) with the clock.
//!
//! - [`event`]: the event schema (version 1), event types and their MITRE
//!   ATT&CK techniques, validation with field-level errors, normalization.
//! - [`classify`]: address classes and the destination-zone map.
//! - [`geo`]: country and autonomous system from MaxMind-format databases.
//! - [`score`]: the 0–100 score with its breakdown, and severity from it.
//! - [`repeat`]: a source's recent activity (a score factor), for a batch.
//! - [`alert`]: which events raise alerts, and grouping within a window;
//!   acknowledging and resolving one ([`alert::transition`]: the alert
//!   after, its audit entry and event, without the database).
//! - [`sensor`]: sensor kinds and ids, online/stale/offline from the
//!   heartbeat's age, and recording that a sensor was heard from.
//! - [`playbook`]: triggers, actions, which actions must wait for a decision.
//! - [`execution`]: running a playbook against an alert: its [`plan`](execution::plan)
//!   (what each action comes to, decided without the database), webhooks by
//!   the caller, then decisions and the execution record in one transaction.
//! - [`pipeline`]: a submission validated, then stored with its alerts,
//!   outbox rows and audit entry in the caller's transaction.
//! - [`threat`]: a stored event read back, as the API and exports serve it.

pub mod alert;
pub mod classify;
pub mod event;
pub mod execution;
pub mod geo;
pub mod pipeline;
pub mod playbook;
pub mod repeat;
pub mod score;
pub mod sensor;
pub mod threat;
