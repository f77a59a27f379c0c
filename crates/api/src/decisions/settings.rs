//! The decision rules' variables (safety policy, SLA, dispatch-type
//! actions), read by the decisions component and by playbooks in the
//! threats component: typed, parsed once per request, and a 503 naming the
//! variable when one is bad (`crate::settings`).

use std::sync::OnceLock;

use vigil_core::ApiError;
use vigil_core::decision::{Action, SafetyPolicy, SlaPolicy};
use vigil_core::net::ProtectedTargets;

use crate::settings::Reader;

pub const CONFIDENCE_FLOOR: &str = "decision_confidence_floor";
pub const PROTECTED_TARGETS: &str = "decision_protected_targets";
pub const IDENTITY_PATTERNS: &str = "decision_identity_patterns";
pub const SLA_MINUTES: &str = "decision_sla_minutes";
pub const DISPATCH_ACTIONS: &str = "decision_dispatch_actions";

/// Every variable the decision rules read.
pub const VARIABLES: &[&str] = &[
    CONFIDENCE_FLOOR,
    PROTECTED_TARGETS,
    IDENTITY_PATTERNS,
    SLA_MINUTES,
    DISPATCH_ACTIONS,
];

/// The rules decisions are opened and decided under.
#[derive(Clone, Debug)]
pub struct DecisionSettings {
    /// `decision_confidence_floor` (default 0.5), `decision_protected_targets`
    /// (CIDRs, addresses or host names; none by default) and
    /// `decision_identity_patterns` (phrases that assert an identity).
    pub safety: SafetyPolicy,
    /// `decision_sla_minutes`: P1,P2,P3,P4 (default 15,60,240,1440).
    pub sla: SlaPolicy,
    /// `decision_dispatch_actions`: actions that need a second approver
    /// (default dispatch, isolate_host, disable_account).
    pub dispatch_type: Vec<Action>,
}

/// The decision settings, read once per request.
pub fn get() -> Result<&'static DecisionSettings, ApiError> {
    static SETTINGS: OnceLock<Result<DecisionSettings, ApiError>> = OnceLock::new();
    SETTINGS.get_or_init(load).as_ref().map_err(Clone::clone)
}

fn load() -> Result<DecisionSettings, ApiError> {
    let mut r = Reader::new(VARIABLES);
    match (
        r.read(CONFIDENCE_FLOOR, SafetyPolicy::parse_floor),
        r.read(PROTECTED_TARGETS, ProtectedTargets::parse),
        r.read(IDENTITY_PATTERNS, |t| Ok(SafetyPolicy::parse_patterns(t))),
        r.read(SLA_MINUTES, SlaPolicy::from_minutes),
        r.read(DISPATCH_ACTIONS, Action::parse_list),
    ) {
        (
            Some(confidence_floor),
            Some(protected_targets),
            Some(identity_patterns),
            Some(sla),
            Some(dispatch_type),
        ) => Ok(DecisionSettings {
            safety: SafetyPolicy {
                confidence_floor,
                identity_patterns,
                protected_targets,
            },
            sla,
            dispatch_type,
        }),
        _ => Err(r.refusal()),
    }
}
