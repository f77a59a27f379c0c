//! Decisions (human in the loop): the state machine that decides every
//! transition (here), priority and SLA from the threat level (`sla`), the
//! safety validator (`safety`), duration summaries (`stats`), a command
//! applied to a stored decision without the database ([`change`]: the
//! decision after it, its audit entry and event), and the rows a transition
//! writes ([`transitions`]; a decision as stored: [`record`]). The `decisions` component and the
//! threats playbooks call this; nothing else decides whether a transition is
//! legal.
//!
//! ```text
//! pending ─claim→ claimed ─approve→ approved ─outcome→ executed | failed
//!    ↑  ←release─    │        (dispatch-type: → awaiting_second_approval
//!    │               │           ─second approval→ authorized ─outcome→ executed | failed
//!    │               │           ─second rejection→ rejected)
//!    │               ├─reject→ rejected      (note required)
//!    │               ├─dismiss→ dismissed    (reason; note for `unknown`)
//!    │               └─escalate→ escalated ─claim (supervisor+)→ claimed
//!    └── overdue (pending or claimed) → escalated, by the scheduler, never silently
//! ```

pub mod change;
pub mod record;
mod safety;
mod sla;
mod stats;
pub mod transitions;

use serde::{Deserialize, Serialize};

use crate::access::Role;
pub use crate::wire::{parse_wire, wire};
pub use safety::{
    Proposal, SafetyPolicy, Violation, check_approval, check_submission, proposal_of,
    proposal_target, refuse,
};
pub use sla::{Priority, SlaPolicy, ThreatLevel};
pub use stats::{DurationSummary, summarize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pending,
    Claimed,
    Approved,
    Rejected,
    Dismissed,
    Escalated,
    AwaitingSecondApproval,
    Authorized,
    Executed,
    Failed,
    Expired,
}

impl Status {
    pub const ALL: [Status; 11] = [
        Status::Pending,
        Status::Claimed,
        Status::Approved,
        Status::Rejected,
        Status::Dismissed,
        Status::Escalated,
        Status::AwaitingSecondApproval,
        Status::Authorized,
        Status::Executed,
        Status::Failed,
        Status::Expired,
    ];

    /// Still waiting for a person (counts towards the SLA and the queue).
    pub fn is_open(self) -> bool {
        matches!(
            self,
            Status::Pending | Status::Claimed | Status::Escalated | Status::AwaitingSecondApproval
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    BlockIp,
    IsolateHost,
    DisableAccount,
    QuarantineFile,
    Dispatch,
    Notify,
    Monitor,
    Custom,
}

impl Action {
    /// Actions that need a second, different approver with supervisor rights
    /// unless configured otherwise.
    pub const DEFAULT_DISPATCH_TYPE: [Action; 3] = [
        Action::Dispatch,
        Action::IsolateHost,
        Action::DisableAccount,
    ];

    /// Whether the action's target is a machine on the network (an address
    /// or a host name), as opposed to an account, a file or a place.
    pub fn targets_network(self) -> bool {
        matches!(self, Action::BlockIp | Action::IsolateHost)
    }

    /// The `decision_dispatch_actions` setting: comma-separated action
    /// names; the error names one that is not an action.
    pub fn parse_list(list: &str) -> Result<Vec<Action>, String> {
        list.split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(|n| {
                parse_wire::<Action>(n).ok_or_else(|| {
                    format!("{n:?} is not an action (block_ip, isolate_host, disable_account, quarantine_file, dispatch, notify, monitor, custom)")
                })
            })
            .collect()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DismissReason {
    FalsePositive,
    FalsePositiveMotion,
    NormalBehavior,
    CameraFault,
    Weather,
    Duplicate,
    Test,
    Unknown,
}

/// What someone asks of a decision.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    Claim,
    Release,
    Approve,
    Reject {
        note: String,
    },
    Dismiss {
        reason: DismissReason,
        note: Option<String>,
    },
    Escalate {
        note: String,
    },
    SecondApproval {
        approve: bool,
    },
    /// The executor reports what happened.
    Outcome {
        executed: bool,
    },
    /// The scheduler found it overdue.
    EscalateOverdue,
}

impl Command {
    pub fn name(&self) -> &'static str {
        match self {
            Command::Claim => "claim",
            Command::Release => "release",
            Command::Approve => "approve",
            Command::Reject { .. } => "reject",
            Command::Dismiss { .. } => "dismiss",
            Command::Escalate { .. } => "escalate",
            Command::SecondApproval { .. } => "second-approval",
            Command::Outcome { .. } => "outcome",
            Command::EscalateOverdue => "escalate-overdue",
        }
    }
}

/// Who asks: a user (with a role) or a machine (the executor, the scheduler).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    pub id: String,
    pub role: Option<Role>,
}

/// The parts of a decision the rules look at.
#[derive(Clone, Debug, PartialEq)]
pub struct DecisionState {
    pub status: Status,
    pub action: Action,
    pub submitted_by: String,
    /// For a decision a playbook opened: who ingested the events of the
    /// alert it acts on (users, `key:<id>`). They count as its submitters.
    pub ingested_by: Vec<String>,
    pub assignee: Option<String>,
    pub first_approver: Option<String>,
    pub deadline: i64,
}

/// What a legal transition changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    pub to: Status,
    pub assignee: Option<String>,
    pub first_approver: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransitionError {
    /// Not possible from the current status (409, naming it).
    Illegal { from: Status, command: &'static str },
    /// Possible, but not for this actor (403).
    NotAllowed(String),
    /// A required field is missing or empty (422).
    Invalid {
        field: &'static str,
        message: String,
    },
}

/// Whether `actor` submitted the decision, for the rule that an analyst
/// cannot approve what they submitted: whoever proposed it, and for a
/// decision a playbook opened, whoever ingested the events that triggered
/// it (posting events is a way to propose what a playbook then asks for).
pub fn is_submitter(d: &DecisionState, actor: &Actor) -> bool {
    d.submitted_by == actor.id || d.ingested_by.contains(&actor.id)
}

fn is_supervisor(actor: &Actor) -> bool {
    actor.role.is_some_and(|r| r >= Role::Supervisor)
}

fn required(text: &str, field: &'static str) -> Result<(), TransitionError> {
    if text.trim().is_empty() {
        return Err(TransitionError::Invalid {
            field,
            message: "is required".into(),
        });
    }
    Ok(())
}

/// The one place a transition is decided. `dispatch_type` lists the actions
/// that need a second approver.
pub fn transition(
    d: &DecisionState,
    command: &Command,
    actor: &Actor,
    dispatch_type: &[Action],
) -> Result<Transition, TransitionError> {
    use Status::*;
    let illegal = || TransitionError::Illegal {
        from: d.status,
        command: command.name(),
    };
    let same = |to| Transition {
        to,
        assignee: d.assignee.clone(),
        first_approver: d.first_approver.clone(),
    };
    let is_assignee = d.assignee.as_deref() == Some(actor.id.as_str());
    let must_hold = || {
        if is_assignee {
            Ok(())
        } else {
            Err(TransitionError::NotAllowed(
                "claim the decision first".into(),
            ))
        }
    };
    match (d.status, command) {
        (Pending, Command::Claim) => Ok(Transition {
            to: Claimed,
            assignee: Some(actor.id.clone()),
            first_approver: None,
        }),
        (Escalated, Command::Claim) => {
            if !is_supervisor(actor) {
                return Err(TransitionError::NotAllowed(
                    "an escalated decision is claimed by a supervisor".into(),
                ));
            }
            Ok(Transition {
                to: Claimed,
                assignee: Some(actor.id.clone()),
                first_approver: None,
            })
        }
        (Claimed, Command::Release) => {
            if !is_assignee && !is_supervisor(actor) {
                return Err(TransitionError::NotAllowed(
                    "only the assignee or a supervisor can release".into(),
                ));
            }
            Ok(Transition {
                to: Pending,
                assignee: None,
                first_approver: None,
            })
        }
        (Claimed, Command::Approve) => {
            must_hold()?;
            if is_submitter(d, actor) && !is_supervisor(actor) {
                return Err(TransitionError::NotAllowed(
                    "an analyst cannot approve what they submitted".into(),
                ));
            }
            let to = if dispatch_type.contains(&d.action) {
                AwaitingSecondApproval
            } else {
                Approved
            };
            Ok(Transition {
                to,
                assignee: d.assignee.clone(),
                first_approver: Some(actor.id.clone()),
            })
        }
        (Claimed, Command::Reject { note }) => {
            must_hold()?;
            required(note, "note")?;
            Ok(same(Rejected))
        }
        (Claimed, Command::Dismiss { reason, note }) => {
            must_hold()?;
            if *reason == DismissReason::Unknown {
                required(note.as_deref().unwrap_or(""), "note")?;
            }
            Ok(same(Dismissed))
        }
        (Claimed, Command::Escalate { note }) => {
            must_hold()?;
            required(note, "note")?;
            Ok(Transition {
                to: Escalated,
                assignee: None,
                first_approver: None,
            })
        }
        (AwaitingSecondApproval, Command::SecondApproval { approve }) => {
            if !is_supervisor(actor) {
                return Err(TransitionError::NotAllowed(
                    "the second approval needs a supervisor".into(),
                ));
            }
            if d.first_approver.as_deref() == Some(actor.id.as_str()) {
                return Err(TransitionError::NotAllowed(
                    "the second approver must be a different person".into(),
                ));
            }
            Ok(same(if *approve { Authorized } else { Rejected }))
        }
        (Approved | Authorized, Command::Outcome { executed }) => {
            Ok(same(if *executed { Executed } else { Failed }))
        }
        (Pending | Claimed, Command::EscalateOverdue) => Ok(Transition {
            to: Escalated,
            assignee: None,
            first_approver: None,
        }),
        _ => Err(illegal()),
    }
}

/// Whether a decision is past its deadline while still open.
pub fn is_overdue(d: &DecisionState, now: i64) -> bool {
    d.status.is_open() && now > d.deadline
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A user acting with `role` (the safety tests use it too).
    pub(super) fn actor(id: &str, role: Role) -> Actor {
        Actor {
            id: id.into(),
            role: Some(role),
        }
    }

    fn decision(status: Status, action: Action) -> DecisionState {
        DecisionState {
            status,
            action,
            submitted_by: "engine".into(),
            ingested_by: vec![],
            assignee: None,
            first_approver: None,
            deadline: 1_000,
        }
    }

    fn run(d: &DecisionState, c: Command, a: &Actor) -> Result<Transition, TransitionError> {
        transition(d, &c, a, &Action::DEFAULT_DISPATCH_TYPE)
    }

    /// Every status × every command × every kind of actor: a transition
    /// succeeds only where the table below says it can, and never for an
    /// actor the rules exclude.
    #[test]
    fn the_state_machine_exhaustively() {
        use Status::*;
        let commands = [
            Command::Claim,
            Command::Release,
            Command::Approve,
            Command::Reject { note: "n".into() },
            Command::Dismiss {
                reason: DismissReason::Weather,
                note: None,
            },
            Command::Escalate { note: "n".into() },
            Command::SecondApproval { approve: true },
            Command::Outcome { executed: true },
            Command::EscalateOverdue,
        ];
        // (from, command) pairs that are legal for someone.
        let legal = |s: Status, c: &Command| {
            matches!(
                (s, c),
                (Pending, Command::Claim)
                    | (Escalated, Command::Claim)
                    | (
                        Claimed,
                        Command::Release
                            | Command::Approve
                            | Command::Reject { .. }
                            | Command::Dismiss { .. }
                            | Command::Escalate { .. }
                    )
                    | (AwaitingSecondApproval, Command::SecondApproval { .. })
                    | (Approved | Authorized, Command::Outcome { .. })
                    | (Pending | Claimed, Command::EscalateOverdue)
            )
        };
        let actors = [
            actor("holder", Role::Analyst),
            actor("holder", Role::Supervisor),
            actor("other", Role::Analyst),
            actor("other", Role::Supervisor),
            actor("engine", Role::Analyst),
            Actor {
                id: "key:x".into(),
                role: None,
            },
        ];
        let mut checked = 0;
        for status in Status::ALL {
            for command in &commands {
                for who in &actors {
                    let d = DecisionState {
                        status,
                        action: Action::Dispatch,
                        submitted_by: "engine".into(),
                        ingested_by: vec![],
                        assignee: Some("holder".into()),
                        first_approver: Some("holder".into()),
                        deadline: 0,
                    };
                    let result = transition(&d, command, who, &Action::DEFAULT_DISPATCH_TYPE);
                    if !legal(status, command) {
                        assert_eq!(
                            result,
                            Err(TransitionError::Illegal {
                                from: status,
                                command: command.name()
                            }),
                            "{status:?} {command:?}"
                        );
                    } else if let Ok(t) = &result {
                        // Who may do what, when it is legal at all.
                        let supervisor = who.role.is_some_and(|r| r >= Role::Supervisor);
                        match command {
                            Command::Approve
                            | Command::Reject { .. }
                            | Command::Dismiss { .. }
                            | Command::Escalate { .. } => assert_eq!(who.id, "holder"),
                            Command::Release => assert!(who.id == "holder" || supervisor),
                            Command::Claim if status == Escalated => assert!(supervisor),
                            Command::SecondApproval { .. } => {
                                assert!(supervisor && who.id != "holder")
                            }
                            _ => {}
                        }
                        assert_ne!(t.to, status, "a transition moves");
                    }
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, 11 * 9 * 6);
    }

    #[test]
    fn the_happy_path_of_a_plain_action() {
        let ana = actor("ana", Role::Analyst);
        let mut d = decision(Status::Pending, Action::BlockIp);
        let t = run(&d, Command::Claim, &ana).unwrap();
        assert_eq!(
            (t.to, t.assignee.as_deref()),
            (Status::Claimed, Some("ana"))
        );
        d.status = t.to;
        d.assignee = t.assignee;
        let t = run(&d, Command::Approve, &ana).unwrap();
        assert_eq!(t.to, Status::Approved);
        d.status = t.to;
        let executor = Actor {
            id: "key:exec".into(),
            role: None,
        };
        assert_eq!(
            run(&d, Command::Outcome { executed: true }, &executor)
                .unwrap()
                .to,
            Status::Executed
        );
    }

    #[test]
    fn dispatch_needs_a_second_different_supervisor() {
        let sup = actor("sup", Role::Supervisor);
        let mut d = decision(Status::Claimed, Action::Dispatch);
        d.assignee = Some("sup".into());
        let t = run(&d, Command::Approve, &sup).unwrap();
        assert_eq!(t.to, Status::AwaitingSecondApproval);
        d.status = t.to;
        d.first_approver = t.first_approver;
        assert!(matches!(
            run(&d, Command::SecondApproval { approve: true }, &sup),
            Err(TransitionError::NotAllowed(_))
        ));
        let analyst = actor("ana", Role::Analyst);
        assert!(matches!(
            run(&d, Command::SecondApproval { approve: true }, &analyst),
            Err(TransitionError::NotAllowed(_))
        ));
        let other = actor("sup2", Role::Supervisor);
        assert_eq!(
            run(&d, Command::SecondApproval { approve: true }, &other)
                .unwrap()
                .to,
            Status::Authorized
        );
        assert_eq!(
            run(&d, Command::SecondApproval { approve: false }, &other)
                .unwrap()
                .to,
            Status::Rejected
        );
    }

    #[test]
    fn illegal_transitions_name_the_current_state() {
        let ana = actor("ana", Role::Analyst);
        let d = decision(Status::Executed, Action::BlockIp);
        assert_eq!(
            run(&d, Command::Approve, &ana),
            Err(TransitionError::Illegal {
                from: Status::Executed,
                command: "approve"
            })
        );
        let d = decision(Status::Pending, Action::BlockIp);
        assert!(
            matches!(
                run(&d, Command::Approve, &ana),
                Err(TransitionError::Illegal { .. })
            ),
            "claim first"
        );
    }

    #[test]
    fn only_the_assignee_decides_and_notes_are_required() {
        let mut d = decision(Status::Claimed, Action::BlockIp);
        d.assignee = Some("ana".into());
        let bob = actor("bob", Role::Analyst);
        assert!(matches!(
            run(&d, Command::Approve, &bob),
            Err(TransitionError::NotAllowed(_))
        ));
        let ana = actor("ana", Role::Analyst);
        assert!(matches!(
            run(&d, Command::Reject { note: " ".into() }, &ana),
            Err(TransitionError::Invalid { field: "note", .. })
        ));
        let unknown = Command::Dismiss {
            reason: DismissReason::Unknown,
            note: None,
        };
        assert!(matches!(
            run(&d, unknown, &ana),
            Err(TransitionError::Invalid { field: "note", .. })
        ));
        let weather = Command::Dismiss {
            reason: DismissReason::Weather,
            note: None,
        };
        assert_eq!(run(&d, weather, &ana).unwrap().to, Status::Dismissed);
        // Release: the assignee or a supervisor.
        assert!(matches!(
            run(&d, Command::Release, &bob),
            Err(TransitionError::NotAllowed(_))
        ));
        assert_eq!(
            run(&d, Command::Release, &actor("s", Role::Supervisor))
                .unwrap()
                .to,
            Status::Pending
        );
    }

    #[test]
    fn analysts_cannot_approve_their_own_submission() {
        let mut d = decision(Status::Claimed, Action::BlockIp);
        d.submitted_by = "ana".into();
        d.assignee = Some("ana".into());
        assert!(matches!(
            run(&d, Command::Approve, &actor("ana", Role::Analyst)),
            Err(TransitionError::NotAllowed(_))
        ));
    }

    /// A playbook's decision on an alert an analyst fed: the analyst counts
    /// as its submitter and cannot approve it; a supervisor still may.
    #[test]
    fn who_ingested_the_triggering_events_counts_as_a_submitter() {
        let mut d = decision(Status::Claimed, Action::BlockIp);
        d.submitted_by = "playbook:p1".into();
        d.ingested_by = vec!["key:sensor-1".into(), "ana".into()];
        d.assignee = Some("ana".into());
        let ana = actor("ana", Role::Analyst);
        assert!(is_submitter(&d, &ana));
        assert!(matches!(
            run(&d, Command::Approve, &ana),
            Err(TransitionError::NotAllowed(_))
        ));
        d.assignee = Some("bob".into());
        assert!(!is_submitter(&d, &actor("bob", Role::Analyst)));
        assert_eq!(
            run(&d, Command::Approve, &actor("bob", Role::Analyst))
                .unwrap()
                .to,
            Status::Approved
        );
        d.assignee = Some("ana".into());
        assert_eq!(
            run(&d, Command::Approve, &actor("ana", Role::Supervisor))
                .unwrap()
                .to,
            Status::Approved
        );
    }

    #[test]
    fn settings_parse_or_say_why() {
        assert_eq!(
            Action::parse_list("dispatch, block_ip").unwrap(),
            vec![Action::Dispatch, Action::BlockIp]
        );
        assert!(
            Action::parse_list("dispatch,nuke")
                .unwrap_err()
                .contains("nuke")
        );
        assert_eq!(Action::parse_list("").unwrap(), vec![]);
        assert_eq!(SafetyPolicy::parse_floor(" 0.7 ").unwrap(), 0.7);
        for bad in ["", "abc", "1.5", "-0.1", "NaN"] {
            assert!(SafetyPolicy::parse_floor(bad).is_err(), "{bad}");
        }
        assert!(SlaPolicy::from_minutes("15,60,240").is_err());
        assert!(SlaPolicy::from_minutes("15,60,abc,1440").is_err());
        assert!(SafetyPolicy::from_settings(None, Some("10.0.0.0/abc"), None).is_err());
    }

    #[test]
    fn escalations_go_to_supervisors_and_overdue_items_escalate() {
        let d = decision(Status::Escalated, Action::BlockIp);
        assert!(matches!(
            run(&d, Command::Claim, &actor("ana", Role::Analyst)),
            Err(TransitionError::NotAllowed(_))
        ));
        assert_eq!(
            run(&d, Command::Claim, &actor("sup", Role::Supervisor))
                .unwrap()
                .to,
            Status::Claimed
        );
        let d = decision(Status::Pending, Action::BlockIp);
        assert!(is_overdue(&d, 1_001) && !is_overdue(&d, 1_000));
        let system = Actor {
            id: "system".into(),
            role: None,
        };
        assert_eq!(
            run(&d, Command::EscalateOverdue, &system).unwrap().to,
            Status::Escalated
        );
        let done = decision(Status::Dismissed, Action::BlockIp);
        assert!(!is_overdue(&done, 5_000));
    }

    #[test]
    fn wire_names_and_ranks_round_trip() {
        assert_eq!(
            wire(&Status::AwaitingSecondApproval),
            "awaiting_second_approval"
        );
        assert_eq!(parse_wire::<Action>("block_ip"), Some(Action::BlockIp));
        assert_eq!(parse_wire::<Action>("nuke"), None);
        for p in [Priority::P1, Priority::P4] {
            assert_eq!(Priority::from_rank(p.rank()), Some(p));
        }
        assert_eq!(Priority::from_rank(0), None);
    }
}
