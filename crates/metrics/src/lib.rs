//! Vigil's metrics rules, plain Rust over [`vigil_core::sql::Sql`], so they
//! run natively in tests, in the metrics component (Spin's SQLite), and in
//! the `vigil` CLI and relay (libSQL). Everything here reads the hourly
//! rollups that every writer keeps in its own transaction
//! ([`vigil_core::rollup`]) and a few small live tables (sensors, open
//! alerts and decisions), never the raw events.
//!
//! - [`window`]: `range=24h|7d|30d|all` or `from`/`to`, buckets (hour, day),
//!   the 10,000-bucket limit and zero-filled bucket lists.
//! - [`kpi`]: the formulas: rates, percentiles from the fixed-bucket
//!   histogram, the alert-fatigue score, the risk index.
//! - [`read`]: the rollups summed over a window (one statement per table).
//! - [`summary`]: `GET /api/metrics/summary` and the stats of decisions
//!   and threats.
//! - [`trends`]: zero-filled time series; the risk history.
//! - [`fleet`]: sensor fleet health and the events map by country.
//! - [`weekly`]: the weekly report (weeks end on Sunday, UTC) and its
//!   persistence (the relay's `weekly_report` job).
//! - [`prometheus`]: the `/metrics` text exposition.
//! - [`rebuild`]: recompute the rollups from the raw rows (`vigil metrics rebuild`).

pub mod fleet;
pub mod kpi;
pub mod prometheus;
pub mod read;
pub mod rebuild;
pub mod summary;
pub mod trends;
pub mod weekly;
pub mod window;

#[cfg(test)]
mod tests;
