//! Decisions (human in the loop): the state machine that decides every
//! transition, priority and SLA from the threat level, and the safety
//! validator. The `decisions` component and the threats playbooks call this;
//! nothing else decides whether a transition is legal.
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

pub mod record;

use serde::{Deserialize, Serialize};

use crate::access::Role;
use crate::net::{ProtectedTargets, Target};
pub use crate::wire::{parse_wire, wire};

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

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ThreatLevel {
    Low,
    Medium,
    High,
    Critical,
}

/// P1 is the most urgent.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
pub enum Priority {
    P1,
    P2,
    P3,
    P4,
}

impl Priority {
    /// 1 for P1 … 4 for P4 (as stored).
    pub fn rank(self) -> i64 {
        self as i64 + 1
    }

    pub fn from_rank(rank: i64) -> Option<Priority> {
        [Priority::P1, Priority::P2, Priority::P3, Priority::P4]
            .get(usize::try_from(rank - 1).ok()?)
            .copied()
    }

    pub fn from_threat_level(level: ThreatLevel) -> Priority {
        match level {
            ThreatLevel::Critical => Priority::P1,
            ThreatLevel::High => Priority::P2,
            ThreatLevel::Medium => Priority::P3,
            ThreatLevel::Low => Priority::P4,
        }
    }
}

/// Time allowed for a decision, by priority (configurable; defaults 15 min,
/// 1 h, 4 h, 24 h).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlaPolicy {
    pub p1_ms: i64,
    pub p2_ms: i64,
    pub p3_ms: i64,
    pub p4_ms: i64,
}

impl Default for SlaPolicy {
    fn default() -> Self {
        const MIN: i64 = 60_000;
        SlaPolicy {
            p1_ms: 15 * MIN,
            p2_ms: 60 * MIN,
            p3_ms: 4 * 60 * MIN,
            p4_ms: 24 * 60 * MIN,
        }
    }
}

impl SlaPolicy {
    /// From the minutes allowed for P1,P2,P3,P4 (`"15,60,240,1440"`), as
    /// the `decision_sla_minutes` setting holds them.
    pub fn from_minutes(list: &str) -> Result<SlaPolicy, String> {
        const WHAT: &str =
            "must be four whole numbers of minutes from 1 to 525600 (a year), P1 to P4";
        let minutes: Vec<i64> = list
            .split(',')
            .map(|m| {
                m.trim()
                    .parse::<i64>()
                    .ok()
                    .filter(|m| (1..=525_600).contains(m))
            })
            .collect::<Option<_>>()
            .ok_or_else(|| format!("{:?} {WHAT}", list.trim()))?;
        match minutes[..] {
            [p1, p2, p3, p4] => Ok(SlaPolicy {
                p1_ms: p1 * 60_000,
                p2_ms: p2 * 60_000,
                p3_ms: p3 * 60_000,
                p4_ms: p4 * 60_000,
            }),
            _ => Err(format!("{:?} {WHAT}", list.trim())),
        }
    }

    pub fn deadline(&self, priority: Priority, submitted_at: i64) -> i64 {
        submitted_at
            + match priority {
                Priority::P1 => self.p1_ms,
                Priority::P2 => self.p2_ms,
                Priority::P3 => self.p3_ms,
                Priority::P4 => self.p4_ms,
            }
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

/// Mean, median and 90th percentile of durations, in seconds.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct DurationSummary {
    pub count: usize,
    pub mean_seconds: f64,
    pub median_seconds: f64,
    pub p90_seconds: f64,
}

/// Summarize durations in milliseconds (nearest-rank percentiles); `None` when empty.
pub fn summarize(mut millis: Vec<i64>) -> Option<DurationSummary> {
    if millis.is_empty() {
        return None;
    }
    millis.sort_unstable();
    let n = millis.len();
    let rank = |p: f64| millis[((p * n as f64).ceil() as usize).clamp(1, n) - 1] as f64 / 1000.0;
    Some(DurationSummary {
        count: n,
        mean_seconds: millis.iter().sum::<i64>() as f64 / n as f64 / 1000.0,
        median_seconds: rank(0.5),
        p90_seconds: rank(0.9),
    })
}

/// What the safety validator checks (configurable).
#[derive(Clone, Debug, PartialEq)]
pub struct SafetyPolicy {
    /// Below this confidence only `monitor` may be proposed or approved.
    pub confidence_floor: f64,
    /// Phrases in a summary that assert who someone is.
    pub identity_patterns: Vec<String>,
    /// Targets (networks or host names) that only a supervisor may act on.
    pub protected_targets: ProtectedTargets,
}

impl Default for SafetyPolicy {
    fn default() -> Self {
        SafetyPolicy {
            confidence_floor: 0.5,
            identity_patterns: vec![
                "identified as".into(),
                "is the suspect".into(),
                "matches the identity".into(),
            ],
            protected_targets: ProtectedTargets::default(),
        }
    }
}

impl SafetyPolicy {
    /// `decision_confidence_floor`: a number from 0 to 1.
    pub fn parse_floor(text: &str) -> Result<f64, String> {
        text.trim()
            .parse::<f64>()
            .ok()
            .filter(|f| (0.0..=1.0).contains(f))
            .ok_or_else(|| format!("{:?} is not a number from 0 to 1", text.trim()))
    }

    /// `decision_identity_patterns`: comma-separated phrases.
    pub fn parse_patterns(text: &str) -> Vec<String> {
        text.split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    }

    /// From the settings as written (`decision_confidence_floor`, and the
    /// comma-separated `decision_protected_targets` and
    /// `decision_identity_patterns`); unset ones keep their defaults, a bad
    /// one is an error naming the setting.
    pub fn from_settings(
        floor: Option<&str>,
        protected_targets: Option<&str>,
        identity_patterns: Option<&str>,
    ) -> Result<SafetyPolicy, String> {
        let mut policy = SafetyPolicy::default();
        if let Some(floor) = floor {
            policy.confidence_floor =
                Self::parse_floor(floor).map_err(|why| format!("confidence floor: {why}"))?;
        }
        if let Some(targets) = protected_targets {
            policy.protected_targets = ProtectedTargets::parse(targets)
                .map_err(|why| format!("protected targets: {why}"))?;
        }
        if let Some(patterns) = identity_patterns {
            policy.identity_patterns = Self::parse_patterns(patterns);
        }
        Ok(policy)
    }
}

/// The parts of a proposal the safety rules look at.
#[derive(Clone, Debug, PartialEq)]
pub struct Proposal<'a> {
    pub action: Action,
    pub confidence: f64,
    pub summary: &'a str,
    /// `watchlist_match: true` in the evidence.
    pub watchlist_match: bool,
    /// The action's target, canonical ([`Target::parse`]), if it has one.
    pub target: Option<Target>,
}

/// The target of a proposed `action` from its `parameters.target`, canonical
/// ([`Target::parse`]) so that the safety check compares one spelling. An
/// action on a machine (`block_ip`, `isolate_host`) must name an address or
/// a host name; another action's target (an account, a file hash) is
/// checked against the protected list only when it reads as one. The error
/// says what is wrong with `parameters.target`.
pub fn proposal_target(
    action: Action,
    target: Option<&serde_json::Value>,
) -> Result<Option<Target>, String> {
    let text = match target {
        None | Some(serde_json::Value::Null) => return Ok(None),
        Some(serde_json::Value::String(text)) => text,
        Some(_) => return Err("must be a string".into()),
    };
    match Target::parse(text) {
        Ok(target) => Ok(Some(target)),
        Err(why) if action.targets_network() => Err(why),
        Err(_) => Ok(None),
    }
}

/// One broken safety rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Violation {
    pub rule: &'static str,
    pub message: String,
}

fn asserts_identity(policy: &SafetyPolicy, summary: &str) -> bool {
    let lower = summary.to_lowercase();
    policy
        .identity_patterns
        .iter()
        .any(|p| lower.contains(&p.to_lowercase()))
}

/// Rules for submitting a proposal.
pub fn check_submission(p: &Proposal, policy: &SafetyPolicy) -> Vec<Violation> {
    let mut v = Vec::new();
    if p.confidence < policy.confidence_floor && p.action != Action::Monitor {
        v.push(Violation {
            rule: "confidence_floor",
            message: format!(
                "below confidence {} only `monitor` may be proposed",
                policy.confidence_floor
            ),
        });
    }
    if asserts_identity(policy, p.summary) && !p.watchlist_match {
        v.push(Violation {
            rule: "identity_claim",
            message:
                "a summary that asserts an identity needs `watchlist_match: true` in the evidence"
                    .into(),
        });
    }
    v
}

/// Rules for approving it (the submission rules, and who may approve what).
pub fn check_approval(p: &Proposal, approver: &Actor, policy: &SafetyPolicy) -> Vec<Violation> {
    let mut v = check_submission(p, policy);
    let supervisor = is_supervisor(approver);
    if asserts_identity(policy, p.summary) && !supervisor {
        v.push(Violation {
            rule: "identity_claim_approver",
            message: "an identity claim is approved by a supervisor".into(),
        });
    }
    if p.target
        .as_ref()
        .is_some_and(|t| policy.protected_targets.protects(t))
        && !supervisor
    {
        v.push(Violation {
            rule: "protected_target",
            message: "actions against protected assets are approved by a supervisor".into(),
        });
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actor(id: &str, role: Role) -> Actor {
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
    fn targets_of_proposals() {
        use serde_json::json;
        let t = |a, v: serde_json::Value| proposal_target(a, Some(&v));
        assert_eq!(
            t(Action::BlockIp, json!("::ffff:10.0.0.5")).unwrap(),
            Some(Target::parse("10.0.0.5").unwrap())
        );
        assert_eq!(
            t(Action::IsolateHost, json!("DB.internal.")).unwrap(),
            Some(Target::Host("db.internal".into()))
        );
        assert!(t(Action::BlockIp, json!("10.0.0.0/8")).is_err());
        assert!(t(Action::IsolateHost, json!("db internal")).is_err());
        assert!(t(Action::BlockIp, json!(["10.0.0.5"])).is_err());
        assert!(t(Action::Notify, json!(7)).is_err());
        // An account or a file is not a machine: kept as written, unchecked.
        assert_eq!(
            t(Action::DisableAccount, json!("CORP\\j.doe")).unwrap(),
            None
        );
        assert_eq!(
            t(Action::DisableAccount, json!("DC01.")).unwrap(),
            Some(Target::Host("dc01".into()))
        );
        assert_eq!(proposal_target(Action::BlockIp, None).unwrap(), None);
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

    #[test]
    fn priority_and_deadline_follow_the_threat_level() {
        let sla = SlaPolicy::default();
        assert_eq!(
            Priority::from_threat_level(ThreatLevel::Critical),
            Priority::P1
        );
        assert_eq!(sla.deadline(Priority::P1, 0), 15 * 60_000);
        assert_eq!(sla.deadline(Priority::P4, 0), 24 * 60 * 60_000);
        assert!(Priority::P1 < Priority::P2, "P1 sorts first");
    }

    #[test]
    fn duration_summaries() {
        assert_eq!(summarize(vec![]), None);
        let s = summarize((1..=10).map(|i| i * 1000).collect()).unwrap();
        assert_eq!(
            (s.count, s.mean_seconds, s.median_seconds, s.p90_seconds),
            (10, 5.5, 5.0, 9.0)
        );
        let one = summarize(vec![2500]).unwrap();
        assert_eq!((one.median_seconds, one.p90_seconds), (2.5, 2.5));
    }

    #[test]
    fn the_safety_validator() {
        let policy = SafetyPolicy {
            protected_targets: ProtectedTargets::parse("10.0.0.0/24, dc01").unwrap(),
            ..SafetyPolicy::default()
        };
        let low = Proposal {
            action: Action::BlockIp,
            confidence: 0.3,
            summary: "scan",
            watchlist_match: false,
            target: None,
        };
        assert_eq!(check_submission(&low, &policy)[0].rule, "confidence_floor");
        let monitor = Proposal {
            action: Action::Monitor,
            ..low.clone()
        };
        assert!(check_submission(&monitor, &policy).is_empty());

        let claim = Proposal {
            action: Action::Notify,
            confidence: 0.9,
            summary: "Person Identified As J. Doe",
            watchlist_match: false,
            target: None,
        };
        assert_eq!(check_submission(&claim, &policy)[0].rule, "identity_claim");
        let backed = Proposal {
            watchlist_match: true,
            ..claim.clone()
        };
        assert!(check_submission(&backed, &policy).is_empty());
        let analyst = actor("ana", Role::Analyst);
        assert_eq!(
            check_approval(&backed, &analyst, &policy)[0].rule,
            "identity_claim_approver"
        );
        assert!(check_approval(&backed, &actor("s", Role::Supervisor), &policy).is_empty());

        let protected = Proposal {
            action: Action::BlockIp,
            confidence: 0.9,
            summary: "brute force",
            watchlist_match: false,
            target: Some(Target::parse("10.0.0.7").unwrap()),
        };
        assert_eq!(
            check_approval(&protected, &analyst, &policy)[0].rule,
            "protected_target"
        );
        let elsewhere = Proposal {
            target: Some(Target::parse("10.0.1.7").unwrap()),
            ..protected.clone()
        };
        assert!(check_approval(&elsewhere, &analyst, &policy).is_empty());
        let host = Proposal {
            target: Some(Target::parse("DC01").unwrap()),
            ..protected.clone()
        };
        assert_eq!(
            check_approval(&host, &analyst, &policy)[0].rule,
            "protected_target"
        );
        for spelling in ["::ffff:10.0.0.7", "10.0.0.7/32", "dc01.", "0x0a.0.0.7"] {
            let p = Proposal {
                target: Some(Target::parse(spelling).unwrap()),
                ..protected.clone()
            };
            assert_eq!(
                check_approval(&p, &analyst, &policy)[0].rule,
                "protected_target",
                "{spelling}"
            );
        }
    }
}
