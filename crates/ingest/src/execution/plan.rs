//! What a playbook run does with each action, decided before anything is
//! written and without the database: the [`plan`] of a run. `finish`
//! (in the parent module) then carries it out inside the write transaction.

use vigil_core::decision::record::{Evidence, NewDecision, Subject, SubjectKind};
use vigil_core::decision::{
    Proposal, SafetyPolicy, ThreatLevel, check_submission, proposal_target,
};
use vigil_core::wire::wire;

use super::{ActionOutcome, Run};
use crate::playbook::{self, PlaybookAction};

/// What one action of a run comes to.
#[derive(Debug)]
pub enum Step {
    /// POST the notification to `url` (sent before the write transaction;
    /// its outcome is what came back, see [`notified`]).
    Notify { url: String },
    /// Open this decision about `target` (`ingested_by` is filled in when it
    /// is written: who ingested the alert's events).
    Decide {
        target: String,
        decision: Box<NewDecision>,
    },
    /// Nothing to run: the action is `skipped` (no target) or `refused`
    /// (the target is not one, or the safety check says no).
    Settled(ActionOutcome),
}

/// The step of every action of `run`, in order, under the safety rules
/// decisions are submitted under.
pub fn plan(run: &Run, safety: &SafetyPolicy) -> Vec<Step> {
    run.playbook
        .actions
        .iter()
        .enumerate()
        .map(|(index, action)| {
            if action.opens_decision() {
                decide(run, safety, index, action)
            } else {
                Step::Notify {
                    url: action.url.clone().unwrap_or_default(),
                }
            }
        })
        .collect()
}

/// The decision an action waits for, unless the alert gives it no target
/// (or none that is an address or a host name) or the safety check refuses it.
fn decide(run: &Run, safety: &SafetyPolicy, index: usize, action: &PlaybookAction) -> Step {
    let Some(target) = run.facts.target(action.kind) else {
        return Step::Settled(
            ActionOutcome::new(index, action, "skipped", None)
                .detail(format!("the alert gives {} no target", wire(&action.kind))),
        );
    };
    let proposed = action.decision_action();
    // The safety check and the decision see a machine in its one spelling.
    let checked = match proposal_target(proposed, Some(&serde_json::Value::String(target.clone())))
    {
        Ok(checked) => checked,
        Err(why) => {
            return Step::Settled(
                ActionOutcome::new(index, action, "refused", Some(target))
                    .detail(format!("the target {why}")),
            );
        }
    };
    let target = match &checked {
        Some(canonical) if proposed.targets_network() => canonical.to_string(),
        _ => target,
    };
    let summary: String = format!("{}: {} {target}", run.playbook.name, wire(&proposed))
        .replace('\n', " ")
        .chars()
        .take(200)
        .collect();
    let proposal = Proposal {
        action: proposed,
        confidence: run.confidence,
        summary: &summary,
        watchlist_match: false,
        target: checked,
    };
    let violations = check_submission(&proposal, safety);
    if !violations.is_empty() {
        let why: Vec<String> = violations.into_iter().map(|v| v.message).collect();
        return Step::Settled(
            ActionOutcome::new(index, action, "refused", Some(target)).detail(why.join("; ")),
        );
    }
    let alert = &run.alert;
    let parameters = serde_json::json!({
        "target": target, "playbook_id": run.playbook.id, "execution_id": run.id, "action_index": index,
    });
    let decision = NewDecision {
        source: "playbook".into(),
        subject: Subject {
            kind: SubjectKind::Alert,
            id: alert.id.clone(),
        },
        action: proposed,
        parameters: parameters.as_object().cloned().unwrap_or_default(),
        threat_level: run
            .facts
            .severity
            .map_or(ThreatLevel::Low, playbook::threat_level),
        confidence: run.confidence,
        summary,
        rationale: format!(
            "Playbook {:?} ({}) on alert {}: {} {} event(s) from {}, max score {}.",
            run.playbook.name,
            run.mode_name(),
            alert.id,
            alert.event_count,
            alert.event_type,
            alert.source_ip,
            alert.max_score
        ),
        evidence: Evidence {
            refs: run.refs.clone(),
            watchlist_match: false,
        },
        ingested_by: vec![],
    };
    Step::Decide {
        target,
        decision: Box::new(decision),
    }
}

/// The outcome of a notification: `sent` on a 2xx, else `failed` with the
/// status or why it did not go out (`sent`: each webhook's result by action index).
pub fn notified(
    index: usize,
    action: &PlaybookAction,
    url: &str,
    sent: &[(usize, Result<u16, String>)],
) -> ActionOutcome {
    let (outcome, detail) = match sent.iter().find(|(i, _)| *i == index) {
        Some((_, Ok(status))) if (200..300).contains(status) => ("sent", format!("HTTP {status}")),
        Some((_, Ok(status))) => ("failed", format!("HTTP {status}")),
        Some((_, Err(why))) => ("failed", why.clone()),
        None => ("failed", "not sent".to_string()),
    };
    ActionOutcome::new(index, action, outcome, Some(url.into())).detail(detail)
}

/// An execution's status: `completed_with_errors` when an action failed or
/// was refused, else `completed` (a skipped action is no error).
pub fn status(outcomes: &[ActionOutcome]) -> &'static str {
    if outcomes
        .iter()
        .any(|o| o.outcome == "failed" || o.outcome == "refused")
    {
        "completed_with_errors"
    } else {
        "completed"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::Alert;
    use crate::event::Severity;
    use crate::execution::{Mode, Playbook};
    use crate::playbook::{ActionKind, AlertFacts, Trigger};
    use vigil_core::decision::Action as DecisionAction;

    fn action(kind: ActionKind) -> PlaybookAction {
        PlaybookAction {
            kind,
            requires_approval: kind.is_consequential(),
            url: (kind == ActionKind::NotifyWebhook).then(|| "https://hooks.example/x".into()),
            proposed_action: None,
        }
    }

    fn run(actions: Vec<PlaybookAction>, confidence: f64) -> Run {
        Run {
            id: "run-1".into(),
            playbook: Playbook {
                id: "pb-1".into(),
                name: "Contain".into(),
                description: String::new(),
                enabled: true,
                trigger: Trigger::default(),
                actions,
                version: 1,
                created_at: String::new(),
                updated_at: String::new(),
            },
            alert: Alert {
                id: "al-1".into(),
                status: "open".into(),
                source_ip: "203.0.113.7".into(),
                event_type: "port_scan".into(),
                sensor_id: "sensor-1".into(),
                severity: "critical".into(),
                max_score: 91,
                event_count: 3,
                first_seen: String::new(),
                last_seen: String::new(),
                version: 1,
                created_at: String::new(),
                updated_at: String::new(),
            },
            facts: AlertFacts {
                severity: Some(Severity::Critical),
                source_ip: "203.0.113.7".into(),
                sensor_id: "sensor-1".into(),
                ..AlertFacts::default()
            },
            mode: Mode::Automatic,
            by: "playbook:pb-1".into(),
            confidence,
            refs: vec!["alert:al-1".into(), "threat:ev-1".into()],
            started: 0,
        }
    }

    fn outcome(step: &Step) -> &ActionOutcome {
        match step {
            Step::Settled(o) => o,
            other => panic!("not settled: {other:?}"),
        }
    }

    #[test]
    fn a_notification_is_sent_and_a_block_waits_for_a_decision() {
        let r = run(
            vec![
                action(ActionKind::NotifyWebhook),
                action(ActionKind::BlockIp),
            ],
            0.9,
        );
        let steps = plan(&r, &SafetyPolicy::default());
        assert!(matches!(&steps[0], Step::Notify { url } if url == "https://hooks.example/x"));
        let Step::Decide { target, decision } = &steps[1] else {
            panic!("{:?}", steps[1]);
        };
        assert_eq!(target, "203.0.113.7");
        assert_eq!(decision.action, DecisionAction::BlockIp);
        assert_eq!(decision.threat_level, ThreatLevel::Critical);
        assert_eq!(decision.subject.id, "al-1");
        assert_eq!(decision.summary, "Contain: block_ip 203.0.113.7");
        assert_eq!(decision.parameters["action_index"], 1);
        assert_eq!(decision.parameters["execution_id"], "run-1");
        assert_eq!(decision.evidence.refs, r.refs);
        assert!(
            decision
                .rationale
                .contains("(automatic) on alert al-1: 3 port_scan")
        );
    }

    #[test]
    fn no_target_is_skipped() {
        // The alert's latest event named no destination host.
        let steps = plan(
            &run(vec![action(ActionKind::IsolateHost)], 0.9),
            &SafetyPolicy::default(),
        );
        let o = outcome(&steps[0]);
        assert_eq!(o.outcome, "skipped");
        assert_eq!(
            o.detail.as_deref(),
            Some("the alert gives isolate_host no target")
        );
    }

    #[test]
    fn below_the_confidence_floor_is_refused_but_monitor_is_not() {
        let mut monitor = action(ActionKind::OpenDecision);
        monitor.proposed_action = Some(DecisionAction::Monitor);
        let steps = plan(
            &run(vec![action(ActionKind::BlockIp), monitor], 0.2),
            &SafetyPolicy::default(),
        );
        let o = outcome(&steps[0]);
        assert_eq!(o.outcome, "refused");
        assert_eq!(o.target.as_deref(), Some("203.0.113.7"));
        assert!(
            matches!(&steps[1], Step::Decide { decision, .. } if decision.action == DecisionAction::Monitor)
        );
    }

    #[test]
    fn a_target_that_is_no_address_is_refused() {
        let mut r = run(vec![action(ActionKind::BlockIp)], 0.9);
        r.facts.source_ip = "not an address".into();
        let o = plan(&r, &SafetyPolicy::default()).remove(0);
        assert_eq!(outcome(&o).outcome, "refused");
        assert!(
            outcome(&o)
                .detail
                .as_deref()
                .unwrap()
                .starts_with("the target ")
        );
    }

    #[test]
    fn a_long_playbook_name_is_cut_to_a_200_character_summary() {
        let mut r = run(vec![action(ActionKind::Dispatch)], 0.9);
        r.playbook.name = "x\n".repeat(150);
        let Step::Decide { decision, .. } = plan(&r, &SafetyPolicy::default()).remove(0) else {
            panic!()
        };
        assert_eq!(decision.summary.chars().count(), 200);
        assert!(!decision.summary.contains('\n'));
    }

    #[test]
    fn webhook_outcomes_and_the_status() {
        let a = action(ActionKind::NotifyWebhook);
        let sent = vec![(0, Ok(204)), (1, Ok(500)), (2, Err("timed out".into()))];
        let got: Vec<ActionOutcome> = (0..4).map(|i| notified(i, &a, "u", &sent)).collect();
        let seen: Vec<(&str, &str)> = got
            .iter()
            .map(|o| (o.outcome.as_str(), o.detail.as_deref().unwrap()))
            .collect();
        assert_eq!(
            seen,
            [
                ("sent", "HTTP 204"),
                ("failed", "HTTP 500"),
                ("failed", "timed out"),
                ("failed", "not sent")
            ]
        );
        assert_eq!(status(&got[..1]), "completed");
        assert_eq!(status(&got), "completed_with_errors");
        let skipped = ActionOutcome::new(0, &a, "skipped", None);
        assert_eq!(status(&[skipped]), "completed");
    }
}
