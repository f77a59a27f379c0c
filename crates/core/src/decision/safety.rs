//! The safety validator: what may be proposed, and who may approve it.

use serde::Serialize;

use super::record::Evidence;
use super::{Action, Actor, is_supervisor};
use crate::net::{ProtectedTargets, Target};
use crate::{ApiError, FieldError};

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

/// What the safety rules look at in a proposal; 422 naming
/// `parameters.target` when the target is not one they can compare.
pub fn proposal_of<'a>(
    action: Action,
    confidence: f64,
    summary: &'a str,
    evidence: &Evidence,
    parameters: &serde_json::Map<String, serde_json::Value>,
) -> Result<Proposal<'a>, ApiError> {
    let target = proposal_target(action, parameters.get("target"))
        .map_err(|why| ApiError::invalid_field("parameters.target", why))?;
    Ok(Proposal {
        action,
        confidence,
        summary,
        watchlist_match: evidence.watchlist_match,
        target,
    })
}

/// Safety violations as a 422, one error per broken rule.
pub fn refuse(violations: Vec<Violation>) -> ApiError {
    ApiError::validation(
        violations
            .into_iter()
            .map(|v| FieldError {
                field: format!("safety.{}", v.rule),
                message: v.message,
            })
            .collect(),
    )
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
    use crate::access::Role;
    use crate::decision::tests::actor;

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
