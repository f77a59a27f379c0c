//! The decisions component's variables: safety policy, SLA, dispatch-type actions.

use vigil_core::decision::{Action, SafetyPolicy, SlaPolicy, parse_wire};

fn variable(name: &str) -> Option<String> {
    spin_sdk::variables::get(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
}

fn list(name: &str) -> Option<Vec<String>> {
    variable(name).map(|v| {
        v.split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    })
}

/// `decision_confidence_floor` (default 0.5), `decision_protected_targets`
/// (comma-separated CIDRs or host names) and `decision_identity_patterns`
/// (comma-separated phrases that assert an identity). A value that does
/// not parse leaves the defaults.
pub fn safety() -> SafetyPolicy {
    SafetyPolicy::from_settings(
        variable("decision_confidence_floor").as_deref(),
        variable("decision_protected_targets").as_deref(),
        variable("decision_identity_patterns").as_deref(),
    )
    .unwrap_or_default()
}

/// `decision_sla_minutes`: P1,P2,P3,P4 (default 15,60,240,1440).
pub fn sla() -> SlaPolicy {
    variable("decision_sla_minutes")
        .and_then(|v| SlaPolicy::from_minutes(&v).ok())
        .unwrap_or_default()
}

/// `decision_dispatch_actions`: actions that need a second approver
/// (default dispatch, isolate_host, disable_account).
pub fn dispatch_type() -> Vec<Action> {
    list("decision_dispatch_actions")
        .map(|names| names.iter().filter_map(|n| parse_wire(n)).collect())
        .unwrap_or_else(|| Action::DEFAULT_DISPATCH_TYPE.to_vec())
}
