//! One command applied to a stored decision, decided without the database:
//! from the decision before, the command (with what the person said), the
//! decision rules and the time, to the decision after it, its audit entry
//! and its `decision.updated` event ([`apply`]). [`transitions::record_transition`](super::transitions::record_transition)
//! writes what it returns.

use super::record::Decision;
use super::{
    Action, Actor, Command, SafetyPolicy, Transition, check_approval, proposal_of, refuse,
    transition,
};
use crate::ApiError;
use crate::audit::Actor as AuditActor;
use crate::audited::Audited;
use crate::time::rfc3339;

/// The rules a command is decided under (the decisions settings).
#[derive(Clone, Copy, Debug)]
pub struct Rules<'a> {
    /// Actions that need a second, different approver.
    pub dispatch_type: &'a [Action],
    /// The safety check an approval must pass again.
    pub safety: &'a SafetyPolicy,
}

/// A command on a decision, by whom, with what the person said about it.
pub struct Change<'a> {
    pub command: &'a Command,
    /// The decision actor (a user, or `system:…` for the scheduler).
    pub actor: &'a Actor,
    pub note: Option<&'a str>,
    /// A dismissal's reason, or an outcome's result.
    pub reason: Option<&'a str>,
    pub outcome_detail: Option<&'a str>,
}

/// One command decided: what the state machine says, the decision after
/// it, and its audit entry and event.
#[derive(Debug)]
pub struct Applied {
    pub to: Transition,
    pub after: Decision,
    pub audited: Audited,
}

/// Whether `command` approves the action (so the safety check runs again,
/// now with the approver).
fn approves(command: &Command) -> bool {
    matches!(
        command,
        Command::Approve | Command::SecondApproval { approve: true }
    )
}

/// Apply `change` to `before` under `rules`, audited as `who` (under the
/// change's actor) at `now`: 409 when the state machine has no such move,
/// 403 when this actor may not make it, 422 when a field is missing or an
/// approval breaks a safety rule.
pub fn apply(
    before: &Decision,
    change: &Change,
    rules: &Rules,
    who: &AuditActor,
    now: i64,
) -> Result<Applied, ApiError> {
    let to = transition(
        &before.state(),
        change.command,
        change.actor,
        rules.dispatch_type,
    )?;
    if approves(change.command) {
        let proposal = proposal_of(
            before.proposed_action,
            before.confidence,
            &before.summary,
            &before.evidence,
            &before.parameters,
        )?;
        let violations = check_approval(&proposal, change.actor, rules.safety);
        if !violations.is_empty() {
            return Err(refuse(violations));
        }
    }
    let after = after(before, &to, change.outcome_detail, now);
    let name = change.command.name();
    let mut entry = who.entry(&format!("decision.{name}"), "decision", &before.id, now);
    entry.actor = change.actor.id.clone();
    let event = serde_json::json!({
        "decision": after, "command": name, "from": before.status, "actor": change.actor.id,
    });
    let audited = Audited::new(entry)
        .before(before)
        .after(&after)
        .publish("decision.updated", event);
    Ok(Applied { to, after, audited })
}

/// The decision as it reads at `now` once `to` is written: what the
/// `UPDATE` of a transition changes, and the overdue flag that follows.
fn after(before: &Decision, to: &Transition, outcome_detail: Option<&str>, now: i64) -> Decision {
    Decision {
        status: to.to,
        version: before.version + 1,
        assignee: to.assignee.clone(),
        first_approver: to.first_approver.clone(),
        outcome_detail: outcome_detail
            .map(str::to_string)
            .or_else(|| before.outcome_detail.clone()),
        updated_at: rfc3339(now),
        overdue: to.to.is_open() && now > before.deadline_ms,
        ..before.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::Role;
    use crate::decision::record::{Evidence, Subject, SubjectKind};
    use crate::decision::{DismissReason, Priority, Status, ThreatLevel};

    const DEADLINE: i64 = 1_000_000;

    fn decision(status: Status, action: Action, confidence: f64) -> Decision {
        let parameters = serde_json::json!({"target": "203.0.113.7"});
        Decision {
            id: "d-1".into(),
            source: "engine".into(),
            subject: Subject {
                kind: SubjectKind::Alert,
                id: "al-1".into(),
            },
            proposed_action: action,
            parameters: parameters.as_object().cloned().unwrap(),
            threat_level: ThreatLevel::High,
            confidence,
            summary: "block the scanner".into(),
            rationale: "r".into(),
            evidence: Evidence::default(),
            priority: Priority::P2,
            sla_deadline: rfc3339(DEADLINE),
            overdue: false,
            status,
            version: 7,
            assignee: (status != Status::Pending).then(|| "ana".into()),
            submitted_by: "engine-1".into(),
            ingested_by: vec![],
            first_approver: None,
            outcome_detail: None,
            created_at: rfc3339(0),
            updated_at: rfc3339(0),
            deadline_ms: DEADLINE,
        }
    }

    fn actor(id: &str, role: Role) -> Actor {
        Actor {
            id: id.into(),
            role: Some(role),
        }
    }

    fn who() -> AuditActor {
        AuditActor {
            actor: "ana".into(),
            request_id: Some("req-1".into()),
            client_addr: None,
        }
    }

    fn change<'a>(command: &'a Command, actor: &'a Actor) -> Change<'a> {
        Change {
            command,
            actor,
            note: None,
            reason: None,
            outcome_detail: None,
        }
    }

    fn rules(safety: &SafetyPolicy) -> Rules<'_> {
        Rules {
            dispatch_type: &Action::DEFAULT_DISPATCH_TYPE,
            safety,
        }
    }

    #[test]
    fn claiming_gives_the_decision_an_assignee_and_records_it() {
        let before = decision(Status::Pending, Action::BlockIp, 0.9);
        let ana = actor("ana", Role::Analyst);
        let safety = SafetyPolicy::default();
        let a = apply(
            &before,
            &change(&Command::Claim, &ana),
            &rules(&safety),
            &who(),
            5,
        )
        .unwrap();
        assert_eq!(a.to.to, Status::Claimed);
        assert_eq!(a.after.status, Status::Claimed);
        assert_eq!(a.after.version, 8);
        assert_eq!(a.after.assignee.as_deref(), Some("ana"));
        assert_eq!(a.after.updated_at, rfc3339(5));
        assert!(!a.after.overdue);
        let e = &a.audited.entry;
        assert_eq!(
            (e.action.as_str(), e.actor.as_str()),
            ("decision.claim", "ana")
        );
        assert_eq!(
            e.before.as_deref(),
            Some(serde_json::to_string(&before).unwrap().as_str())
        );
        let event = a.audited.event.as_ref().unwrap();
        assert_eq!(event.event_type, "decision.updated");
        assert_eq!(event.payload["from"], "pending");
        assert_eq!(event.payload["command"], "claim");
        assert_eq!(event.payload["decision"]["status"], "claimed");
    }

    #[test]
    fn past_the_deadline_an_open_decision_reads_overdue_and_a_closed_one_not() {
        let safety = SafetyPolicy::default();
        let ana = actor("ana", Role::Analyst);
        let before = decision(Status::Claimed, Action::Monitor, 0.9);
        let late = DEADLINE + 1;
        let released = apply(
            &before,
            &change(&Command::Release, &ana),
            &rules(&safety),
            &who(),
            late,
        )
        .unwrap();
        assert!(released.after.overdue);
        let dismiss = Command::Dismiss {
            reason: DismissReason::Duplicate,
            note: None,
        };
        let dismissed = apply(
            &before,
            &change(&dismiss, &ana),
            &rules(&safety),
            &who(),
            late,
        )
        .unwrap();
        assert_eq!(dismissed.after.status, Status::Dismissed);
        assert!(!dismissed.after.overdue);
    }

    #[test]
    fn an_outcome_keeps_its_detail() {
        let safety = SafetyPolicy::default();
        let ana = actor("ana", Role::Analyst);
        let before = decision(Status::Approved, Action::BlockIp, 0.9);
        let outcome = Command::Outcome { executed: true };
        let mut c = change(&outcome, &ana);
        c.outcome_detail = Some("blocked at the edge");
        let a = apply(&before, &c, &rules(&safety), &who(), 5).unwrap();
        assert_eq!(a.after.status, Status::Executed);
        assert_eq!(
            a.after.outcome_detail.as_deref(),
            Some("blocked at the edge")
        );
    }

    #[test]
    fn an_approval_below_the_confidence_floor_is_refused() {
        let safety = SafetyPolicy::default();
        let ana = actor("ana", Role::Analyst);
        let before = decision(Status::Claimed, Action::BlockIp, 0.2);
        let e = apply(
            &before,
            &change(&Command::Approve, &ana),
            &rules(&safety),
            &who(),
            5,
        )
        .unwrap_err();
        assert_eq!(e.status, 422);
        assert!(e.errors.iter().any(|f| f.field.starts_with("safety.")));
        // Releasing it is no approval: no safety check.
        assert!(
            apply(
                &before,
                &change(&Command::Release, &ana),
                &rules(&safety),
                &who(),
                5
            )
            .is_ok()
        );
    }

    #[test]
    fn illegal_and_not_allowed_moves() {
        let safety = SafetyPolicy::default();
        let ana = actor("ana", Role::Analyst);
        let bob = actor("bob", Role::Analyst);
        let pending = decision(Status::Pending, Action::BlockIp, 0.9);
        let e = apply(
            &pending,
            &change(&Command::Approve, &ana),
            &rules(&safety),
            &who(),
            5,
        )
        .unwrap_err();
        assert_eq!(e.status, 409);
        let claimed = decision(Status::Claimed, Action::BlockIp, 0.9);
        let e = apply(
            &claimed,
            &change(&Command::Approve, &bob),
            &rules(&safety),
            &who(),
            5,
        )
        .unwrap_err();
        assert_eq!(e.status, 403);
    }

    #[test]
    fn a_dispatch_type_approval_waits_for_a_second_approver() {
        let safety = SafetyPolicy::default();
        let sup = actor("ana", Role::Supervisor);
        let before = decision(Status::Claimed, Action::IsolateHost, 0.9);
        let a = apply(
            &before,
            &change(&Command::Approve, &sup),
            &rules(&safety),
            &who(),
            5,
        )
        .unwrap();
        assert_eq!(a.after.status, Status::AwaitingSecondApproval);
        assert_eq!(a.after.first_approver.as_deref(), Some("ana"));
    }
}
