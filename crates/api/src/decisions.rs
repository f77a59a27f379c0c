//! Decisions as stored, shared by the `decisions` component (engines and
//! analysts submit) and the `threats` component (playbooks open decisions
//! for actions that must wait for a person), so both open them one way.
//!
//! - [`record`]: a decision as stored and served, and reading it back.
//! - [`settings`]: the safety policy, SLA and dispatch-type actions (variables).

pub mod record;
pub mod settings;

use spin_sdk::sqlite::Connection;
use vigil_core::audit::AuditEntry;

use crate::ApiError;
use crate::db::{SpinSql, ready};
use record::Decision;
pub use record::NewDecision;

/// Insert `new` as a pending decision inside the caller's transaction (see
/// [`record::open_pending`]), its deadline under the `decision_sla_minutes`
/// setting (a 503 naming it when it is bad).
pub fn open_pending(
    conn: &Connection,
    id: &str,
    new: &NewDecision,
    submitted_by: &str,
    entry: AuditEntry,
    now: i64,
) -> Result<Decision, ApiError> {
    ready(record::open_pending(
        &SpinSql(conn),
        id,
        new,
        submitted_by,
        entry,
        &settings::get()?.sla,
        now,
    ))
}
