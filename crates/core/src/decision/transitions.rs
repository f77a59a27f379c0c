//! Writing a transition that [`super::change::apply`] decided: the row, its
//! history, the metrics rollup (`crate::rollup`), its audit entry and outbox
//! event, in the caller's transaction; and the scheduler's escalation of
//! overdue decisions. The `decisions` component and the relay's jobs write
//! through here, on Spin's SQLite and on libSQL alike ([`Sql`]).

use super::change::{Applied, Change, Rules, apply};
use super::record::{COLUMNS, Decision, from_row};
use super::{Actor, Command, SafetyPolicy, wire};
use crate::ApiError;
use crate::audit::Actor as AuditActor;
use crate::audited;
use crate::sql::{Sql, Value, opt_text};

/// Write a transition of `before` that [`apply`] decided (`applied`): the
/// row (412 when the decision changed meanwhile), its history row, the
/// metrics rollup, and its audit entry and `decision.updated` event, inside
/// the caller's write transaction.
pub async fn record_transition(
    db: &impl Sql,
    before: &Decision,
    change: &Change<'_>,
    applied: &Applied,
    now: i64,
) -> Result<(), ApiError> {
    let Applied { to: t, .. } = applied;
    let actor = change.actor.id.as_str();
    let updated = db
        .query(
            "UPDATE decisions SET status = ?2, version = version + 1, assignee = ?3, first_approver = ?4,
                    outcome_detail = coalesce(?5, outcome_detail), updated_at = ?6
             WHERE id = ?1 AND version = ?7 RETURNING id",
            &[
                Value::Text(before.id.clone()),
                Value::Text(wire(&t.to)),
                opt_text(t.assignee.as_deref()),
                opt_text(t.first_approver.as_deref()),
                opt_text(change.outcome_detail),
                Value::Integer(now),
                Value::Integer(before.version),
            ],
        )
        .await?;
    if updated.is_empty() {
        return Err(ApiError::precondition_failed(
            "the decision changed meanwhile; reload it",
        ));
    }
    db.query(
        "INSERT INTO decision_transitions (decision_id, at, actor, command, from_status, to_status, note, reason)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        &[
            Value::Text(before.id.clone()),
            Value::Integer(now),
            Value::Text(actor.into()),
            Value::Text(change.command.name().into()),
            Value::Text(wire(&before.status)),
            Value::Text(wire(&t.to)),
            opt_text(change.note),
            opt_text(change.reason),
        ],
    )
    .await?;
    crate::rollup::decision_transition(
        db,
        &before.id,
        &wire(&before.status),
        &wire(&t.to),
        actor,
        change.reason,
        now,
    )
    .await?;
    audited::record(db, &applied.audited).await
}

/// How many overdue decisions one call escalates (the rest wait for the next).
pub const ESCALATIONS_PER_CALL: i64 = 500;

/// Escalate every open decision past its SLA deadline that nobody has
/// escalated yet (pending or claimed), most urgent first, inside the
/// caller's write transaction; the ids escalated. The scheduler's own
/// decision actor is `system:<who>`.
pub async fn escalate_overdue(
    db: &impl Sql,
    who: &AuditActor,
    now: i64,
) -> Result<Vec<String>, ApiError> {
    let system = Actor {
        id: format!("system:{}", who.actor),
        role: None,
    };
    // Escalating approves nothing: no second approver, no safety check.
    let safety = SafetyPolicy::default();
    let rules = Rules {
        dispatch_type: &[],
        safety: &safety,
    };
    let rows = db
        .query(
            &format!(
                "SELECT {COLUMNS} FROM decisions WHERE status IN ('pending', 'claimed') AND sla_deadline < ?1
                 ORDER BY priority, sla_deadline LIMIT ?2"
            ),
            &[Value::Integer(now), Value::Integer(ESCALATIONS_PER_CALL)],
        )
        .await?;
    let mut ids = Vec::new();
    for before in rows.iter().filter_map(|r| from_row(r, now)) {
        let change = Change {
            command: &Command::EscalateOverdue,
            actor: &system,
            note: Some("past its SLA deadline"),
            reason: None,
            outcome_detail: None,
        };
        let applied = apply(&before, &change, &rules, who, now)?;
        record_transition(db, &before, &change, &applied, now).await?;
        ids.push(before.id);
    }
    Ok(ids)
}
