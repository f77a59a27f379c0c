//! What every audited change leaves behind, written in the transaction that
//! makes the change: an audit entry with the subject before and after, and
//! usually the outbox event that announces it. The rules that decide a
//! change build an [`Audited`] without touching the database (so they are
//! tested natively); [`record`] writes it, the same way for every caller.

use serde::Serialize;

use crate::ApiError;
use crate::audit::{self, AuditEntry};
use crate::outbox;
use crate::sql::Sql;

/// An outbox event: its type and JSON payload.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub event_type: String,
    pub payload: serde_json::Value,
}

/// The audit entry of one change and the event it publishes, if any.
#[derive(Clone, Debug, PartialEq)]
pub struct Audited {
    pub entry: AuditEntry,
    pub event: Option<Event>,
}

fn json(state: &impl Serialize) -> String {
    serde_json::to_string(state).expect("serializes")
}

impl Audited {
    /// `entry` (who did what to which subject, when), as yet with no before,
    /// after or event.
    pub fn new(entry: AuditEntry) -> Self {
        Audited { entry, event: None }
    }

    /// The subject as it was.
    pub fn before(mut self, state: &impl Serialize) -> Self {
        self.entry.before = Some(json(state));
        self
    }

    /// The subject as it is now (or what the change did to it).
    pub fn after(mut self, state: &impl Serialize) -> Self {
        self.entry.after = Some(json(state));
        self
    }

    /// Announce the change on the outbox as `event_type`.
    pub fn publish(mut self, event_type: &str, payload: serde_json::Value) -> Self {
        self.event = Some(Event {
            event_type: event_type.into(),
            payload,
        });
        self
    }
}

/// Append the entry to the audit chain and publish the event (stamped with
/// the entry's time), inside the caller's write transaction.
pub async fn record(db: &impl Sql, audited: &Audited) -> Result<(), ApiError> {
    audit::append(db, &audited.entry).await?;
    if let Some(event) = &audited.event {
        outbox::publish(db, &event.event_type, &event.payload, audited.entry.at).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::Actor;

    #[test]
    fn before_after_and_event() {
        let entry = Actor::program("t").entry("thing.updated", "thing", "1", 5);
        let a = Audited::new(entry)
            .before(&serde_json::json!({"v": 1}))
            .after(&serde_json::json!({"v": 2}))
            .publish("thing.updated", serde_json::json!({"id": "1"}));
        assert_eq!(a.entry.before.as_deref(), Some(r#"{"v":1}"#));
        assert_eq!(a.entry.after.as_deref(), Some(r#"{"v":2}"#));
        assert_eq!(a.event.unwrap().event_type, "thing.updated");
    }

    #[test]
    fn no_event_unless_published() {
        let entry = Actor::program("t").entry("user.unlocked", "user", "1", 5);
        let a = Audited::new(entry).after(&serde_json::json!({"n": 0}));
        assert!(a.event.is_none());
        assert!(a.entry.before.is_none());
    }
}
