//! Playbooks: a trigger (which alerts) and ordered actions (what to do).
//! Every action that changes a system (block, isolate, disable, quarantine,
//! dispatch) must wait for a human decision: the playbook opens a decision
//! instead of acting. Only notifications run on their own.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use vigil_core::FieldError;
use vigil_core::decision::{Action as DecisionAction, ThreatLevel};

use crate::event::{EventType, Severity};

pub const MAX_ACTIONS: usize = 20;
pub const MAX_URL_BYTES: usize = 2048;

/// Which alerts a playbook answers. Every condition given must hold; at
/// least one must be given, so no playbook matches everything by accident.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Trigger {
    /// Any of these event types.
    #[serde(default)]
    #[schemars(length(max = 32))]
    pub event_types: Vec<EventType>,
    /// At least this severity.
    #[serde(default)]
    pub min_severity: Option<Severity>,
    /// Any of these MITRE ATT&CK technique ids (e.g. `T1110`; a parent
    /// technique also matches its sub-techniques).
    #[serde(default)]
    #[schemars(length(max = 32))]
    pub techniques: Vec<String>,
    /// Any of these destination zones.
    #[serde(default)]
    #[schemars(length(max = 32))]
    pub zones: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    BlockIp,
    IsolateHost,
    DisableAccount,
    QuarantineFile,
    Dispatch,
    NotifyWebhook,
    OpenDecision,
}

impl ActionKind {
    /// Changes a system: may only run through an approved decision.
    pub fn is_consequential(self) -> bool {
        !matches!(self, ActionKind::NotifyWebhook | ActionKind::OpenDecision)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaybookAction {
    pub kind: ActionKind,
    /// Open a decision instead of acting. Must be true for actions that
    /// change a system; `open_decision` always opens one.
    #[serde(default)]
    pub requires_approval: bool,
    /// `notify_webhook` only: where to POST (http or https, a host allowed
    /// by the `webhook_origin` variable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    pub url: Option<String>,
    /// `open_decision` only: the action to propose (default `monitor`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proposed_action: Option<DecisionAction>,
}

impl PlaybookAction {
    /// Whether running it opens a decision.
    pub fn opens_decision(&self) -> bool {
        self.requires_approval || self.kind == ActionKind::OpenDecision
    }

    /// The action a decision opened for it proposes.
    pub fn decision_action(&self) -> DecisionAction {
        match self.kind {
            ActionKind::BlockIp => DecisionAction::BlockIp,
            ActionKind::IsolateHost => DecisionAction::IsolateHost,
            ActionKind::DisableAccount => DecisionAction::DisableAccount,
            ActionKind::QuarantineFile => DecisionAction::QuarantineFile,
            ActionKind::Dispatch => DecisionAction::Dispatch,
            ActionKind::NotifyWebhook => DecisionAction::Notify,
            ActionKind::OpenDecision => self.proposed_action.unwrap_or(DecisionAction::Monitor),
        }
    }
}

/// What an alert offers a playbook: the trigger's facts and the actions' targets.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AlertFacts {
    pub event_type: Option<EventType>,
    pub severity: Option<Severity>,
    pub technique: Option<String>,
    pub zone: Option<String>,
    pub source_ip: String,
    pub dest_ip: Option<String>,
    pub sensor_id: String,
    /// From the latest event's payload (`account`, `username` or `user`).
    pub account: Option<String>,
    /// From the latest event's payload (`sha256`, `file_hash` or `file`).
    pub file: Option<String>,
}

impl AlertFacts {
    /// The target an action of `kind` aims at; `None` when the alert has none.
    pub fn target(&self, kind: ActionKind) -> Option<String> {
        match kind {
            ActionKind::BlockIp => Some(self.source_ip.clone()),
            ActionKind::IsolateHost => self.dest_ip.clone(),
            ActionKind::DisableAccount => self.account.clone(),
            ActionKind::QuarantineFile => self.file.clone(),
            ActionKind::Dispatch => Some(self.sensor_id.clone()),
            ActionKind::NotifyWebhook | ActionKind::OpenDecision => Some(self.source_ip.clone()),
        }
    }

    /// Pick `account` and `file` out of an event payload.
    pub fn read_payload(&mut self, payload: &serde_json::Value) {
        let first = |keys: &[&str]| {
            keys.iter()
                .find_map(|k| payload.get(*k).and_then(|v| v.as_str()))
                .map(str::to_string)
        };
        self.account = first(&["account", "username", "user"]);
        self.file = first(&["sha256", "file_hash", "file"]);
    }
}

impl Trigger {
    pub fn is_empty(&self) -> bool {
        self.event_types.is_empty()
            && self.min_severity.is_none()
            && self.techniques.is_empty()
            && self.zones.is_empty()
    }

    pub fn matches(&self, alert: &AlertFacts) -> bool {
        let any = |wanted: bool, hit: bool| !wanted || hit;
        !self.is_empty()
            && any(
                !self.event_types.is_empty(),
                alert
                    .event_type
                    .is_some_and(|t| self.event_types.contains(&t)),
            )
            && self
                .min_severity
                .is_none_or(|min| alert.severity.is_some_and(|s| s >= min))
            && any(
                !self.techniques.is_empty(),
                alert.technique.as_deref().is_some_and(|t| {
                    self.techniques.iter().any(|w| {
                        t == w
                            || t.strip_prefix(w.as_str())
                                .is_some_and(|r| r.starts_with('.'))
                    })
                }),
            )
            && any(
                !self.zones.is_empty(),
                alert
                    .zone
                    .as_deref()
                    .is_some_and(|z| self.zones.iter().any(|w| w == z)),
            )
    }
}

/// `T1234` or `T1234.567`.
fn is_technique_id(t: &str) -> bool {
    let digits = |s: &str, n| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    match t.strip_prefix('T').map(|rest| rest.split_once('.')) {
        Some(Some((main, sub))) => digits(main, 4) && digits(sub, 3),
        Some(None) => digits(&t[1..], 4),
        None => false,
    }
}

/// Field-level problems with a playbook's trigger and actions (empty when valid).
pub fn validate(trigger: &Trigger, actions: &[PlaybookAction]) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let mut bad = |field: String, message: &str| {
        errors.push(FieldError {
            field,
            message: message.into(),
        })
    };
    if trigger.is_empty() {
        bad(
            "trigger".into(),
            "give at least one of event_types, min_severity, techniques, zones",
        );
    }
    for (i, t) in trigger.techniques.iter().enumerate() {
        if !is_technique_id(t) {
            bad(
                format!("trigger.techniques[{i}]"),
                "is not a technique id (T1234 or T1234.567)",
            );
        }
    }
    for (i, z) in trigger.zones.iter().enumerate() {
        if z.trim().is_empty() || z.len() > 64 {
            bad(format!("trigger.zones[{i}]"), "must be 1-64 characters");
        }
    }
    if actions.is_empty() || actions.len() > MAX_ACTIONS {
        bad("actions".into(), "must list 1-20 actions");
    }
    for (i, a) in actions.iter().enumerate() {
        let field = |name: &str| format!("actions[{i}].{name}");
        if a.kind.is_consequential() && !a.requires_approval {
            bad(
                field("requires_approval"),
                "must be true: this action changes a system, so it waits for a human decision",
            );
        }
        match (a.kind, &a.url) {
            (ActionKind::NotifyWebhook, None) => {
                bad(field("url"), "is required for notify_webhook")
            }
            (ActionKind::NotifyWebhook, Some(url)) if !is_http_url(url) => bad(
                field("url"),
                "must be an absolute http or https URL of at most 2048 bytes",
            ),
            (ActionKind::NotifyWebhook, Some(_)) => {}
            (_, Some(_)) => bad(field("url"), "is only for notify_webhook"),
            (_, None) => {}
        }
        if a.proposed_action.is_some() && a.kind != ActionKind::OpenDecision {
            bad(field("proposed_action"), "is only for open_decision");
        }
    }
    errors
}

fn is_http_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    url.len() <= MAX_URL_BYTES
        && rest.is_some_and(|r| {
            let host = r.split(['/', '?', '#']).next().unwrap_or("");
            !host.is_empty() && !host.contains('@') && !r.chars().any(char::is_whitespace)
        })
}

/// The origin (`scheme://host[:port]`) of an http(s) URL, with the default
/// port made explicit, to compare with the allowed webhook origin.
pub fn origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let default_port = match scheme {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    let authority = rest.split(['/', '?', '#']).next()?.to_ascii_lowercase();
    let has_port = authority.rsplit_once(':').is_some_and(|(_, p)| {
        !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && !p.contains(']')
    });
    Some(if has_port {
        format!("{scheme}://{authority}")
    } else {
        format!("{scheme}://{authority}:{default_port}")
    })
}

/// The header a webhook is signed with when `webhook_secret` is set.
pub const SIGNATURE_HEADER: &str = "x-vigil-signature";

/// The value of [`SIGNATURE_HEADER`]: `t=<unix seconds>,v1=<hex HMAC-SHA256
/// of "<t>.<body>" under the shared secret>`. A receiver recomputes it over
/// the raw body and refuses old `t`, so a captured request cannot be replayed.
pub fn webhook_signature(secret: &str, timestamp_s: i64, body: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(format!("{timestamp_s}.").as_bytes());
    mac.update(body);
    format!(
        "t={timestamp_s},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

/// The threat level a decision opened for an alert of `severity` carries.
pub fn threat_level(severity: Severity) -> ThreatLevel {
    match severity {
        Severity::Info | Severity::Low => ThreatLevel::Low,
        Severity::Medium => ThreatLevel::Medium,
        Severity::High => ThreatLevel::High,
        Severity::Critical => ThreatLevel::Critical,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn action(kind: ActionKind, requires_approval: bool) -> PlaybookAction {
        PlaybookAction {
            kind,
            requires_approval,
            url: None,
            proposed_action: None,
        }
    }

    fn facts() -> AlertFacts {
        AlertFacts {
            event_type: Some(EventType::CredentialStuffing),
            severity: Some(Severity::High),
            technique: Some("T1110.004".into()),
            zone: Some("dmz".into()),
            source_ip: "203.0.113.9".into(),
            dest_ip: Some("10.0.0.5".into()),
            sensor_id: "hp-1".into(),
            ..AlertFacts::default()
        }
    }

    #[test]
    fn every_condition_given_must_hold() {
        let alert = facts();
        let t = |f: fn(&mut Trigger)| {
            let mut t = Trigger::default();
            f(&mut t);
            t.matches(&alert)
        };
        assert!(!t(|_| {}), "an empty trigger matches nothing");
        assert!(t(|t| t.min_severity = Some(Severity::High)));
        assert!(!t(|t| t.min_severity = Some(Severity::Critical)));
        assert!(
            t(|t| t.techniques = vec!["T1110".into()]),
            "parent technique"
        );
        assert!(t(|t| t.techniques = vec!["T1110.004".into()]));
        assert!(!t(|t| t.techniques = vec!["T111".into()]));
        assert!(!t(|t| t.techniques = vec!["T1110.00".into()]));
        assert!(t(|t| t.zones = vec!["ot".into(), "dmz".into()]));
        assert!(!t(|t| t.zones = vec!["ot".into()]));
        assert!(t(|t| {
            t.event_types = vec![EventType::BruteForce, EventType::CredentialStuffing];
            t.min_severity = Some(Severity::Medium);
        }));
        assert!(!t(|t| {
            t.event_types = vec![EventType::CredentialStuffing];
            t.zones = vec!["ot".into()];
        }));
    }

    #[test]
    fn consequential_actions_must_wait_for_a_decision() {
        let trigger = Trigger {
            min_severity: Some(Severity::High),
            ..Trigger::default()
        };
        let errors = validate(&trigger, &[action(ActionKind::BlockIp, false)]);
        assert_eq!(errors[0].field, "actions[0].requires_approval");
        assert!(validate(&trigger, &[action(ActionKind::BlockIp, true)]).is_empty());
        assert!(validate(&trigger, &[action(ActionKind::OpenDecision, false)]).is_empty());
        assert!(action(ActionKind::OpenDecision, false).opens_decision());
        assert!(!action(ActionKind::NotifyWebhook, false).opens_decision());
    }

    #[test]
    fn validation_names_each_field() {
        let trigger = Trigger {
            techniques: vec!["X1".into()],
            ..Trigger::default()
        };
        let mut webhook = action(ActionKind::NotifyWebhook, false);
        webhook.url = Some("ftp://x".into());
        let mut block = action(ActionKind::BlockIp, true);
        block.url = Some("https://x".into());
        block.proposed_action = Some(DecisionAction::Monitor);
        let fields: Vec<String> = validate(&trigger, &[webhook, block])
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(
            fields,
            [
                "trigger.techniques[0]",
                "actions[0].url",
                "actions[1].url",
                "actions[1].proposed_action"
            ]
        );
        assert_eq!(validate(&Trigger::default(), &[])[0].field, "trigger");
        assert_eq!(validate(&Trigger::default(), &[])[1].field, "actions");
    }

    #[test]
    fn targets_come_from_the_alert() {
        let mut alert = facts();
        alert.read_payload(&serde_json::json!({"username": "svc-backup", "sha256": "ab12"}));
        assert_eq!(
            alert.target(ActionKind::BlockIp).as_deref(),
            Some("203.0.113.9")
        );
        assert_eq!(
            alert.target(ActionKind::IsolateHost).as_deref(),
            Some("10.0.0.5")
        );
        assert_eq!(
            alert.target(ActionKind::DisableAccount).as_deref(),
            Some("svc-backup")
        );
        assert_eq!(
            alert.target(ActionKind::QuarantineFile).as_deref(),
            Some("ab12")
        );
        assert_eq!(alert.target(ActionKind::Dispatch).as_deref(), Some("hp-1"));
        alert.dest_ip = None;
        assert_eq!(alert.target(ActionKind::IsolateHost), None);
    }

    #[test]
    fn webhook_signatures_are_hmac_sha256_of_time_and_body() {
        // Python: hmac.new(b"whsec-test", b'1800000000.{"a":1}', hashlib.sha256).hexdigest()
        assert_eq!(
            webhook_signature("whsec-test", 1_800_000_000, br#"{"a":1}"#),
            "t=1800000000,v1=50332a440ec52c80a9ad3eab86f56caee5ec5b06aacfb8c15a44a388eebf2350"
        );
    }

    #[test]
    fn origins_make_the_port_explicit() {
        assert_eq!(
            origin("https://Hooks.example/x?y").as_deref(),
            Some("https://hooks.example:443")
        );
        assert_eq!(
            origin("http://127.0.0.1:8080/a").as_deref(),
            Some("http://127.0.0.1:8080")
        );
        assert_eq!(origin("http://[::1]/a").as_deref(), Some("http://[::1]:80"));
        assert_eq!(origin("ftp://x"), None);
        assert!(is_http_url("https://hooks.example/x"));
        assert!(!is_http_url("https://user@hooks.example/x"));
        assert!(!is_http_url("https:///x"));
    }
}
