//! Vigil's domain core: plain Rust, no Spin imports, so every rule here runs
//! natively in unit tests and unchanged inside the Wasm components.
//!
//! - [`access`]: roles, the permission table (the one place that says who may
//!   do what) and principals.
//! - [`api_key`]: API keys for sensors and services.
//! - [`token`]: Ed25519 (EdDSA) JWT access tokens: the public-key set, signing
//!   (used by `auth` and by tests) and verification (used by `platform`).
//! - [`problem`]: the RFC 7807 error every endpoint returns, with a stable
//!   `type` per kind of error.
//! - [`limits`]: a request's documented lengths and ranges, enforced from its JSON Schema.
//! - [`login`]: lockout, session lifetimes, refresh-token secrets.
//! - [`net`]: CIDR membership.
//! - [`password`]: argon2id hashing and the password policy.
//! - [`audit`]: the hash chain over audit entries, and appending to it.
//! - [`outbox`]: publishing events to the `events` outbox the relay tails.
//! - [`audited`]: what an audited change leaves (audit entry with before and
//!   after, outbox event), built by pure rules and written by one function.
//! - [`sql`]: the statement-level database interface components and relay share.
//! - [`decision`]: the decision state machine, priority and SLA, the safety validator;
//!   [`decision::record`]: a decision as stored; [`decision::change`]: a command
//!   applied to one (after, audit entry, event); [`decision::transitions`]: writing it.
//! - [`retention`]: what is deleted, and when (the relay's retention job).
//! - [`secret_box`]: secrets encrypted at rest (TOTP secrets), XChaCha20-Poly1305.
//! - [`rollup`]: the metrics rollups (hour and day rows), kept by every writer in its transaction.
//! - [`id`]: random UUIDv4 identifiers.
//! - [`totp`]: two-factor codes (RFC 6238), recovery codes.
//! - [`user`]: rules for user records (usernames, display names).
//! - [`wire`]: the snake_case wire names of enum values.
//! - [`time`]: UTC milliseconds and RFC 3339 formatting.

pub mod access;
pub mod api_key;
pub mod audit;
pub mod audited;
pub mod decision;
pub mod id;
pub mod limits;
pub mod login;
pub mod net;
pub mod outbox;
pub mod password;
pub mod problem;
pub mod retention;
pub mod rollup;
pub mod secret_box;
pub mod sql;
pub mod time;
pub mod token;
pub mod totp;
pub mod user;
pub mod wire;

pub use access::{Pending, Permission, Principal, Role};
pub use problem::{ApiError, FieldError};
