//! One component's outbound rules: its entries checked and resolved at load
//! (templates against the variables), and the verdict on one request URI.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::{Context, Result, bail, ensure};
use http::Uri;

use super::allowed_hosts::{AllowedHost, AllowedHosts, OutboundUrl};
use crate::manifest::Manifest;
use crate::variables::{Part, Resolver, parse_template};

/// A manifest entry: parsed if literal, else a template resolved later.
enum Entry {
    Exact(AllowedHost),
    Template { raw: String, parts: Vec<Part> },
}

/// Spin's `AllowedHostsConfig::parse_partial`: literal entries must parse
/// now; templated ones wait for their variables.
fn parse_entries(hosts: &[String]) -> Result<Vec<Entry>> {
    if hosts.len() == 1 && hosts[0] == "insecure:allow-all" {
        bail!(
            "'insecure:allow-all' is not allowed - use '*://*:*' instead if you really want to allow all outbound traffic'"
        );
    }
    hosts
        .iter()
        .map(|h| {
            let parts = parse_template(h)?;
            Ok(if parts.iter().all(|p| matches!(p, Part::Lit(_))) {
                Entry::Exact(AllowedHost::parse(h)?)
            } else {
                Entry::Template {
                    raw: h.clone(),
                    parts,
                }
            })
        })
        .collect()
}

/// What the hook does with one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Send,
    /// To this app, via its listen address.
    SendToSelf,
    /// Allowed, but to `<component>.spin.internal`, which this host cannot route.
    ServiceChaining,
    Deny,
}

/// One component's outbound rules, fixed at load (the env provider does not
/// change while the process runs, so resolving once equals Spin's per-instance
/// resolution).
#[derive(Debug)]
pub struct OutboundPolicy {
    pub(super) component: String,
    /// `Err`: the resolved entries did not parse; every request is denied.
    pub(super) allowed: Result<AllowedHosts, String>,
}

impl OutboundPolicy {
    /// Parses, validates (defaults only, as Spin's loader) and resolves one
    /// component's entries. Errors are start-up failures.
    pub fn load(component: &str, hosts: &[String], resolver: &Resolver) -> Result<Self> {
        let entries = parse_entries(hosts)?;
        for e in &entries {
            if let Entry::Template { raw, parts } = e {
                // A variable without a default cannot be checked yet.
                if let Ok(resolved) = resolver.resolve_template_defaults(parts) {
                    AllowedHost::parse(&resolved).with_context(|| {
                        format!("using default variable value(s) with template {raw:?} results in invalid config {resolved:?}")
                    })?;
                }
            }
            if let Entry::Exact(h) = e {
                ensure!(
                    !h.is_for_service_chaining(),
                    "service chaining (`*.spin.internal` in allowed_outbound_hosts) is not supported by vigil-host"
                );
            }
        }
        let allowed = entries
            .into_iter()
            .map(|e| match e {
                Entry::Exact(h) => Ok(h),
                Entry::Template { raw, parts } => {
                    let value = resolver
                        .resolve_template(&parts)
                        .map_err(|e| format!("{raw:?}: {e}"))?;
                    AllowedHost::parse(&value)
                        .map_err(|e| format!("{raw:?} resolves to {value:?}: {e:#}"))
                }
            })
            .collect::<Result<Vec<_>, String>>()
            .map(AllowedHosts);
        Ok(Self {
            component: component.to_string(),
            allowed,
        })
    }

    /// The policies of every component in the manifest, keyed by id.
    pub fn load_all(
        manifest: &Manifest,
        resolver: &Resolver,
    ) -> Result<HashMap<String, Arc<OutboundPolicy>>> {
        let mut out = HashMap::new();
        for (id, c) in manifest.components.iter() {
            let policy = Self::load(id, &c.allowed_outbound_hosts, resolver)
                .context("`allowed_outbound_hosts` is malformed")
                .with_context(|| format!("Failed to load component `{id}`"))?;
            if let Err(e) = &policy.allowed {
                eprintln!(
                    "vigil-host: component {id:?}: invalid allowed_outbound_hosts ({e}); its outbound requests will be denied"
                );
            }
            out.insert(id.clone(), Arc::new(policy));
        }
        Ok(out)
    }

    /// Spin's `prepare_request` check for a request URI as wasmtime built it
    /// (scheme and authority always present for p2).
    pub fn decide(&self, uri: &Uri) -> Decision {
        let Ok(allowed) = &self.allowed else {
            return Decision::Deny;
        };
        let host = uri.authority().map(|a| a.host());
        if host.is_none_or(|h| h.is_empty() || h == "self.alt") {
            return if allowed.allows_relative(&["http", "https"]) {
                Decision::SendToSelf
            } else {
                Decision::Deny
            };
        }
        match OutboundUrl::parse(&uri.to_string(), "https") {
            Ok(url) if allowed.allows(&url) => {
                // trigger-http's interceptor: `<one label>.spin.internal`.
                let chained = host.and_then(|h| h.split_once('.')).map(|(_, rest)| rest)
                    == Some("spin.internal");
                if chained {
                    Decision::ServiceChaining
                } else {
                    Decision::Send
                }
            }
            _ => Decision::Deny,
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use std::collections::BTreeMap;

    use crate::manifest::Variable;
    use crate::variables::EnvProvider;

    pub(crate) fn resolver(vars: &[(&str, Option<&str>)]) -> Resolver {
        let vars: BTreeMap<String, Variable> = vars
            .iter()
            .map(|(k, d)| {
                (
                    k.to_string(),
                    Variable {
                        description: None,
                        required: d.is_none(),
                        default: d.map(str::to_string),
                        secret: false,
                    },
                )
            })
            .collect();
        Resolver::new(vars, EnvProvider::default()).unwrap()
    }

    fn uri(s: &str) -> Uri {
        s.parse().unwrap()
    }

    #[test]
    fn insecure_allow_all_is_refused() {
        assert!(parse_entries(&["insecure:allow-all".to_string()]).is_err());
    }

    #[test]
    fn templates_and_decisions() {
        let r = resolver(&[
            ("origin", Some("http://127.0.0.1:4000")),
            ("empty", Some("")),
            ("needed", None),
        ]);
        let entries = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();

        let p = OutboundPolicy::load("c", &entries(&["{{ origin }}"]), &r).unwrap();
        assert_eq!(p.decide(&uri("http://127.0.0.1:4000/hook")), Decision::Send);
        assert_eq!(p.decide(&uri("http://127.0.0.1:4001/hook")), Decision::Deny);
        assert_eq!(p.decide(&uri("http://self.alt/x")), Decision::Deny);

        // A default that yields an invalid entry fails the load, as `spin up`.
        let err = OutboundPolicy::load("c", &entries(&["{{ empty }}"]), &r).unwrap_err();
        assert!(format!("{err:#}").contains("results in invalid config \"\""));
        assert!(OutboundPolicy::load("c", &entries(&["nonsense"]), &r).is_err());
        assert!(OutboundPolicy::load("c", &entries(&["{{ origin"]), &r).is_err());

        // No default: not checked at load; unresolvable at run time → deny all.
        let p = OutboundPolicy::load("c", &entries(&["{{ needed }}", "*://*:*"]), &r).unwrap();
        assert!(p.allowed.is_err());
        assert_eq!(p.decide(&uri("https://example.com/")), Decision::Deny);

        // Literal pieces around a variable.
        let r2 = resolver(&[("h", Some("example.com"))]);
        let p = OutboundPolicy::load("c", &entries(&["https://{{ h }}:8443"]), &r2).unwrap();
        assert_eq!(p.decide(&uri("https://example.com:8443/")), Decision::Send);

        let p = OutboundPolicy::load("c", &entries(&["http://self"]), &r).unwrap();
        assert_eq!(p.decide(&uri("http://self.alt/x")), Decision::SendToSelf);
        assert_eq!(p.decide(&uri("https://self.alt/x")), Decision::SendToSelf);
        assert_eq!(p.decide(&uri("http://127.0.0.1/x")), Decision::Deny);
        let p = OutboundPolicy::load("c", &entries(&["*://*:*"]), &r).unwrap();
        assert_eq!(p.decide(&uri("http://self.alt/x")), Decision::SendToSelf);
        let p = OutboundPolicy::load("c", &[], &r).unwrap();
        assert_eq!(p.decide(&uri("http://self.alt/x")), Decision::Deny);
        assert_eq!(p.decide(&uri("https://example.com/")), Decision::Deny);

        assert!(
            OutboundPolicy::load("c", &entries(&["http://*.spin.internal"]), &r).is_err(),
            "service chaining is refused at load"
        );
        let r3 = resolver(&[("t", Some("http://other.spin.internal"))]);
        let p = OutboundPolicy::load("c", &entries(&["{{ t }}"]), &r3).unwrap();
        assert_eq!(
            p.decide(&uri("http://other.spin.internal/")),
            Decision::ServiceChaining
        );
    }
}
