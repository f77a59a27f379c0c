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
/// (comma-separated phrases that assert an identity).
pub fn safety() -> SafetyPolicy {
    let mut policy = SafetyPolicy::default();
    if let Some(floor) = variable("decision_confidence_floor").and_then(|v| v.trim().parse().ok()) {
        policy.confidence_floor = floor;
    }
    if let Some(targets) = list("decision_protected_targets") {
        policy.protected_targets = targets;
    }
    if let Some(patterns) = list("decision_identity_patterns") {
        policy.identity_patterns = patterns;
    }
    policy
}

/// `decision_sla_minutes`: P1,P2,P3,P4 (default 15,60,240,1440).
pub fn sla() -> SlaPolicy {
    let minutes: Vec<i64> = list("decision_sla_minutes")
        .unwrap_or_default()
        .iter()
        .filter_map(|m| m.parse().ok())
        .collect();
    match minutes[..] {
        [p1, p2, p3, p4] => SlaPolicy {
            p1_ms: p1 * 60_000,
            p2_ms: p2 * 60_000,
            p3_ms: p3 * 60_000,
            p4_ms: p4 * 60_000,
        },
        _ => SlaPolicy::default(),
    }
}

/// `decision_dispatch_actions`: actions that need a second approver
/// (default dispatch, isolate_host, disable_account).
pub fn dispatch_type() -> Vec<Action> {
    list("decision_dispatch_actions")
        .map(|names| names.iter().filter_map(|n| parse_wire(n)).collect())
        .unwrap_or_else(|| Action::DEFAULT_DISPATCH_TYPE.to_vec())
}
