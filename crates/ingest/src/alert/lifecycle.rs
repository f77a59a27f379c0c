//! An alert's life once open: acknowledged, then resolved (or resolved at
//! once), each by a person with a note. [`transition`] decides one command
//! without the database: the alert after it, its audit entry and its
//! outbox event; the threats component writes them.

use vigil_core::ApiError;
use vigil_core::audit::Actor;
use vigil_core::audited::Audited;
use vigil_core::time::rfc3339;

use super::Alert;

/// An alert's life: open → acknowledged → resolved, or open → resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlertStatus {
    Open,
    Acknowledged,
    Resolved,
}

impl AlertStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertStatus::Open => "open",
            AlertStatus::Acknowledged => "acknowledged",
            AlertStatus::Resolved => "resolved",
        }
    }

    pub fn parse(s: &str) -> Option<AlertStatus> {
        [
            AlertStatus::Open,
            AlertStatus::Acknowledged,
            AlertStatus::Resolved,
        ]
        .into_iter()
        .find(|a| a.as_str() == s)
    }

    /// Acknowledging: only an open alert.
    pub fn acknowledge(self) -> Option<AlertStatus> {
        (self == AlertStatus::Open).then_some(AlertStatus::Acknowledged)
    }

    /// Resolving: an open or acknowledged alert.
    pub fn resolve(self) -> Option<AlertStatus> {
        (self != AlertStatus::Resolved).then_some(AlertStatus::Resolved)
    }
}

/// What a person does to an alert.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlertCommand {
    Acknowledge,
    Resolve,
}

/// A note is at most this many characters.
const MAX_NOTE: usize = 2000;

impl AlertCommand {
    pub fn name(self) -> &'static str {
        match self {
            AlertCommand::Acknowledge => "acknowledge",
            AlertCommand::Resolve => "resolve",
        }
    }

    /// The note given with the command, trimmed (blank is none): at most
    /// 2000 characters, and required to resolve (422 otherwise). Checked
    /// before the alert is read.
    pub fn note(self, note: Option<String>) -> Result<Option<String>, ApiError> {
        let note = note.map(|n| n.trim().to_string()).filter(|n| !n.is_empty());
        if note.as_ref().is_some_and(|n| n.chars().count() > MAX_NOTE) {
            return Err(ApiError::invalid_field(
                "note",
                "must be at most 2000 characters",
            ));
        }
        if self == AlertCommand::Resolve && note.is_none() {
            return Err(ApiError::invalid_field("note", "is required to resolve"));
        }
        Ok(note)
    }

    fn next(self, status: AlertStatus) -> Option<AlertStatus> {
        match self {
            AlertCommand::Acknowledge => status.acknowledge(),
            AlertCommand::Resolve => status.resolve(),
        }
    }
}

/// One command decided: the alert's new status, the alert after it, and
/// the audit entry and `alert.updated` event that record it.
#[derive(Debug)]
pub struct AlertTransition {
    pub to: AlertStatus,
    pub after: Alert,
    pub audited: Audited,
}

/// Apply `command` (with its checked `note`) to `before`, by `who` at `now`:
/// 409 when the alert's status does not allow it.
pub fn transition(
    before: &Alert,
    command: AlertCommand,
    note: Option<&str>,
    who: &Actor,
    now: i64,
) -> Result<AlertTransition, ApiError> {
    let status = AlertStatus::parse(&before.status).ok_or_else(ApiError::internal)?;
    let to = command.next(status).ok_or_else(|| {
        ApiError::new(409, "illegal-transition", "Illegal transition").with_detail(format!(
            "cannot {} an alert that is {}",
            command.name(),
            before.status
        ))
    })?;
    let after = Alert {
        status: to.as_str().into(),
        version: before.version + 1,
        updated_at: rfc3339(now),
        ..before.clone()
    };
    let action = format!("alert.{}d", command.name());
    let audited = Audited::new(who.entry(&action, "alert", &before.id, now))
        .before(before)
        .after(&serde_json::json!({"alert": after, "note": note}))
        .publish(
            "alert.updated",
            serde_json::json!({"alert": after, "command": command.name()}),
        );
    Ok(AlertTransition { to, after, audited })
}

#[cfg(test)]
mod tests {
    use super::AlertStatus::*;
    use super::*;

    #[test]
    fn the_alert_lifecycle() {
        assert_eq!(Open.acknowledge(), Some(Acknowledged));
        assert_eq!(Acknowledged.acknowledge(), None);
        assert_eq!(Resolved.acknowledge(), None);
        assert_eq!(Open.resolve(), Some(Resolved));
        assert_eq!(Acknowledged.resolve(), Some(Resolved));
        assert_eq!(Resolved.resolve(), None);
    }

    fn alert(status: &str) -> Alert {
        Alert {
            id: "al-1".into(),
            status: status.into(),
            source_ip: "203.0.113.7".into(),
            event_type: "brute_force".into(),
            sensor_id: "sensor-1".into(),
            severity: "high".into(),
            max_score: 80,
            event_count: 4,
            first_seen: "2026-12-01T00:00:00Z".into(),
            last_seen: "2026-12-01T00:05:00Z".into(),
            version: 3,
            created_at: "2026-12-01T00:00:01Z".into(),
            updated_at: "2026-12-01T00:05:01Z".into(),
        }
    }

    fn who() -> Actor {
        Actor {
            actor: "user-1".into(),
            request_id: Some("req-1".into()),
            client_addr: None,
        }
    }

    #[test]
    fn acknowledging_an_open_alert() {
        let t = transition(&alert("open"), AlertCommand::Acknowledge, None, &who(), 9).unwrap();
        assert_eq!(t.to, Acknowledged);
        assert_eq!(
            (t.after.status.as_str(), t.after.version),
            ("acknowledged", 4)
        );
        assert_eq!(t.after.event_count, 4);
        let e = &t.audited.entry;
        assert_eq!(
            (e.action.as_str(), e.actor.as_str(), e.at),
            ("alert.acknowledged", "user-1", 9)
        );
        assert_eq!(e.subject_id.as_deref(), Some("al-1"));
        let before: serde_json::Value = serde_json::from_str(e.before.as_deref().unwrap()).unwrap();
        assert_eq!(before["status"], "open");
        let after: serde_json::Value = serde_json::from_str(e.after.as_deref().unwrap()).unwrap();
        assert_eq!(after["alert"]["version"], 4);
        assert!(after["note"].is_null());
        let event = t.audited.event.unwrap();
        assert_eq!(event.event_type, "alert.updated");
        assert_eq!(event.payload["command"], "acknowledge");
        assert_eq!(event.payload["alert"]["status"], "acknowledged");
    }

    #[test]
    fn resolving_records_the_note() {
        let t = transition(
            &alert("acknowledged"),
            AlertCommand::Resolve,
            Some("blocked upstream"),
            &who(),
            9,
        )
        .unwrap();
        assert_eq!(t.to, Resolved);
        assert_eq!(t.audited.entry.action, "alert.resolved");
        let after: serde_json::Value =
            serde_json::from_str(t.audited.entry.after.as_deref().unwrap()).unwrap();
        assert_eq!(after["note"], "blocked upstream");
    }

    #[test]
    fn an_illegal_command_is_a_409() {
        let e = transition(
            &alert("resolved"),
            AlertCommand::Acknowledge,
            None,
            &who(),
            9,
        )
        .unwrap_err();
        assert_eq!(e.status, 409);
        assert_eq!(
            e.detail.as_deref(),
            Some("cannot acknowledge an alert that is resolved")
        );
        let e =
            transition(&alert("bogus"), AlertCommand::Resolve, Some("x"), &who(), 9).unwrap_err();
        assert_eq!(e.status, 500);
    }

    #[test]
    fn notes() {
        let ack = AlertCommand::Acknowledge;
        assert_eq!(ack.note(Some("  ".into())).unwrap(), None);
        assert_eq!(
            ack.note(Some(" hi ".into())).unwrap().as_deref(),
            Some("hi")
        );
        assert_eq!(ack.note(Some("x".repeat(2001))).unwrap_err().status, 422);
        assert_eq!(AlertCommand::Resolve.note(None).unwrap_err().status, 422);
        assert!(AlertCommand::Resolve.note(Some("done".into())).is_ok());
    }
}
