//! Database access for Vigil's native programs (the `vigil` CLI, later the
//! relay, and the test harness). Components reach the same database through
//! Spin's SQLite interface instead.
//!
//! - [`target`]: where the database is (a local file or a libSQL server) and how to connect.
//! - [`migrations`]: the numbered files in `migrations/`, embedded, applied once each
//!   with a checksum check.
//! - [`users`]: bootstrap administration (the first admin), audited.
//! - [`audit`]: appending to the hash-chained audit log, and verifying it.
//! - [`sql`]: the shared statement interface over a libSQL connection, and write transactions.
//! - [`lease`]: one runner per scheduled job across relays (`job_leases`).

pub mod audit;
pub mod lease;
pub mod migrations;
pub mod sql;
pub mod target;
pub mod users;

pub use target::Target;
