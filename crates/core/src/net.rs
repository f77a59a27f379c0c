//! Network addresses: CIDR membership, shared by the safety validator
//! (protected targets) and ingestion (zones, source filters); the client
//! address of a request behind trusted proxies; the canonical form of an
//! action's target (so no spelling escapes a protected list); and which
//! browser origins may call the API (CORS).

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;

/// A list of networks (CIDRs or bare addresses), parsed once: e.g. the
/// `trusted_proxies` variable.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Networks(Vec<IpNet>);

impl Networks {
    /// Comma-separated CIDRs (`10.0.0.0/8`, `2001:db8::/32`) or addresses;
    /// the error names the entry that is neither.
    pub fn parse(list: &str) -> Result<Networks, String> {
        list.split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(|e| {
                e.parse::<IpNet>()
                    .or_else(|_| e.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("{e:?} is not a CIDR or an IP address"))
            })
            .collect::<Result<_, _>>()
            .map(Networks)
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }
}

/// An action's target in its one canonical spelling: an address (IPv4 for
/// an IPv4-mapped IPv6 one; `10.0.0.5/32` is `10.0.0.5`) or a host name
/// (lower case, IDNA to ASCII, no trailing dot). Two spellings of one
/// target are equal, so a protected list cannot be bypassed by spelling.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    Address(IpAddr),
    Host(String),
}

impl Target {
    /// Canonicalise `text`; the error says why it is neither an address nor
    /// a host name (a network wider than one address is neither: an action
    /// names one target).
    pub fn parse(text: &str) -> Result<Target, String> {
        let t = text.trim();
        if t.is_empty() {
            return Err("must be an IP address or a host name".into());
        }
        if t.len() > 253 + 1 {
            return Err("is too long for a host name".into());
        }
        let bare = t
            .strip_prefix('[')
            .and_then(|s| s.strip_suffix(']'))
            .unwrap_or(t);
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return Ok(Target::Address(ip.to_canonical()));
        }
        if t.contains('/') {
            let net = canonical_net(
                t.parse::<IpNet>()
                    .map_err(|_| format!("{t:?} is neither an address nor a host name"))?,
            );
            if net.prefix_len() != net.max_prefix_len() {
                return Err(format!(
                    "{t:?} is a network of more than one address; name one address"
                ));
            }
            return Ok(Target::Address(net.addr()));
        }
        // The WHATWG host parser: IDNA to ASCII and lower case, and the
        // other spellings of an IPv4 address (`0x0a.0.0.5`, `167772165`).
        let undotted = t.strip_suffix('.').unwrap_or(t);
        match url::Host::parse(undotted) {
            Ok(url::Host::Ipv4(ip)) => Ok(Target::Address(IpAddr::V4(ip))),
            Ok(url::Host::Ipv6(ip)) => Ok(Target::Address(IpAddr::V6(ip).to_canonical())),
            Ok(url::Host::Domain(name)) if is_host_name(&name) => Ok(Target::Host(name)),
            _ => Err(format!("{t:?} is neither an IP address nor a host name")),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Address(ip) => ip.fmt(f),
            Target::Host(name) => f.write_str(name),
        }
    }
}

/// A DNS name as the host parser leaves it: labels of 1–63 letters, digits,
/// hyphens (not at either end) or underscores, 253 characters at most.
fn is_host_name(name: &str) -> bool {
    name.len() <= 253
        && name.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        })
}

/// An IPv4-mapped IPv6 network (`::ffff:10.0.0.0/104`) as the IPv4 one,
/// host bits cleared.
fn canonical_net(net: IpNet) -> IpNet {
    if let IpNet::V6(v6) = net
        && v6.prefix_len() >= 96
        && let Some(v4) = v6.addr().to_ipv4_mapped()
        && let Ok(v4) = ipnet::Ipv4Net::new(v4, v6.prefix_len() - 96)
    {
        return IpNet::V4(v4.trunc());
    }
    net.trunc()
}

/// Targets only a supervisor may act on (`decision_protected_targets`):
/// networks and host names, parsed once, compared in canonical form.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProtectedTargets {
    networks: Vec<IpNet>,
    hosts: Vec<String>,
}

impl ProtectedTargets {
    /// Comma-separated CIDRs, addresses or host names; the error names the
    /// entry that is none of them.
    pub fn parse(list: &str) -> Result<ProtectedTargets, String> {
        let mut protected = ProtectedTargets::default();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            if let Ok(net) = entry.parse::<IpNet>() {
                protected.networks.push(canonical_net(net));
                continue;
            }
            match Target::parse(entry)
                .map_err(|_| format!("{entry:?} is not a CIDR, an address or a host name"))?
            {
                Target::Address(ip) => protected.networks.push(IpNet::from(ip)),
                Target::Host(name) => protected.hosts.push(name),
            }
        }
        Ok(protected)
    }

    pub fn protects(&self, target: &Target) -> bool {
        match target {
            Target::Address(ip) => self.networks.iter().any(|n| n.contains(ip)),
            Target::Host(name) => self.hosts.iter().any(|h| h == name),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.networks.is_empty() && self.hosts.is_empty()
    }
}

/// The browser origins allowed to call the API (`cors_allowed_origins`),
/// each as `scheme://host[:port]` in its serialised form. Empty by default:
/// no other origin's preflight is answered.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Origins(Vec<String>);

impl Origins {
    /// Comma-separated origins (`https://console.example.com`); the error
    /// names an entry that is not an http(s) origin (a path, `*` or `null`
    /// is refused: credentials are never offered to any origin).
    pub fn parse(list: &str) -> Result<Origins, String> {
        list.split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(|e| {
                let refused = || {
                    format!("{e:?} is not an origin (http or https://host[:port], nothing after)")
                };
                let url = url::Url::parse(e).map_err(|_| refused())?;
                let bare = matches!(url.scheme(), "http" | "https")
                    && url.host().is_some()
                    && url.path() == "/"
                    && url.query().is_none()
                    && url.fragment().is_none()
                    && url.username().is_empty()
                    && url.password().is_none();
                if !bare {
                    return Err(refused());
                }
                Ok(url.origin().ascii_serialization())
            })
            .collect::<Result<_, _>>()
            .map(Origins)
    }

    pub fn allows(&self, origin: &str) -> bool {
        self.0.iter().any(|o| o == origin)
    }
}

/// What to do about a request's `Origin` (see [`cors`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cors {
    /// No `Origin`: not a cross-origin browser request; nothing to add.
    NotCrossOrigin,
    /// An allowed origin: answer with `Access-Control-Allow-Origin` for it
    /// (and, for a preflight, the methods and headers).
    Allow { origin: String, preflight: bool },
    /// A preflight from an origin that is not allowed: refused (403).
    RefusePreflight,
    /// Any other request from an origin that is not allowed: answered
    /// without CORS headers, so the browser keeps the response from the page.
    Withhold,
}

/// The CORS decision for a request with `method`, its `Origin` header and
/// whether it has `Access-Control-Request-Method` (a preflight is an
/// `OPTIONS` with both).
pub fn cors(method: &str, origin: Option<&str>, requests_method: bool, allowed: &Origins) -> Cors {
    let Some(origin) = origin.map(str::trim).filter(|o| !o.is_empty()) else {
        return Cors::NotCrossOrigin;
    };
    let preflight = method.eq_ignore_ascii_case("OPTIONS") && requests_method;
    match (allowed.allows(origin), preflight) {
        (true, preflight) => Cors::Allow {
            origin: origin.to_string(),
            preflight,
        },
        (false, true) => Cors::RefusePreflight,
        (false, false) => Cors::Withhold,
    }
}

/// A base URL the app is reached at (`public_base_url`): http(s), a host,
/// no query, fragment or credentials; without a trailing `/`. Empty is none.
pub fn base_url(text: &str) -> Result<Option<String>, String> {
    let v = text.trim();
    if v.is_empty() {
        return Ok(None);
    }
    let url = url::Url::parse(v)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
        .filter(|u| u.query().is_none() && u.fragment().is_none())
        .filter(|u| u.username().is_empty() && u.password().is_none())
        .ok_or_else(|| format!("{v:?} is not an http(s) URL such as https://vigil.example.com"))?;
    Ok(Some(url.as_str().trim_end_matches('/').to_string()))
}

/// The client's address. `peer` is the address the runtime itself saw (the
/// last `spin-client-addr`: the runtime adds its own after any a client
/// sent, so earlier ones are the client's word). When the peer is a trusted
/// proxy, `X-Forwarded-For` (its values in order) is read from the right and
/// the first address that is not a trusted proxy is the client; otherwise
/// the header is the client's word too and is ignored. `None` when the peer
/// is not an address.
pub fn client_address(peer: &str, forwarded_for: &[&str], trusted: &Networks) -> Option<IpAddr> {
    let peer = peer
        .parse::<std::net::SocketAddr>()
        .map(|a| a.ip())
        .or_else(|_| peer.parse::<IpAddr>())
        .ok()?
        .to_canonical();
    if !trusted.contains(peer) {
        return Some(peer);
    }
    let hops: Vec<&str> = forwarded_for
        .iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        // A hop that is not an address ends what can be believed.
        let Ok(ip) = hop.parse::<IpAddr>() else {
            break;
        };
        client = ip.to_canonical();
        if !trusted.contains(client) {
            break;
        }
    }
    Some(client)
}

/// Whether `ip` is in `cidr` (`10.0.0.0/8`, `2001:db8::/32`, or a bare address).
pub fn in_cidr(ip: std::net::IpAddr, cidr: &str) -> bool {
    use std::net::IpAddr;
    let (net, bits) = match cidr.split_once('/') {
        Some((net, bits)) => (net, bits.parse::<u32>().ok()),
        None => (cidr, None),
    };
    match (ip, net.parse::<IpAddr>()) {
        (IpAddr::V4(ip), Ok(IpAddr::V4(net))) => {
            let bits = bits.unwrap_or(32).min(32);
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), Ok(IpAddr::V6(net))) => {
            let bits = bits.unwrap_or(128).min(128);
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_trusted_proxy_is_believed_about_the_client() {
        let trusted = Networks::parse("10.0.0.0/8, 192.0.2.7").unwrap();
        let none = Networks::default();
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        // Without trusted proxies the peer is the client, whatever it forwards.
        assert_eq!(
            client_address("203.0.113.9:5000", &["1.2.3.4"], &none),
            ip("203.0.113.9")
        );
        // From a trusted proxy, the rightmost untrusted hop.
        assert_eq!(
            client_address(
                "10.1.1.1:443",
                &["6.6.6.6, 198.51.100.4", "10.2.2.2"],
                &trusted
            ),
            ip("198.51.100.4")
        );
        // A forged hop left of the real client is never reached.
        assert_eq!(
            client_address("192.0.2.7:1", &["6.6.6.6, 198.51.100.4"], &trusted),
            ip("198.51.100.4")
        );
        // Only proxies, or garbage: the last believable hop.
        assert_eq!(
            client_address("10.1.1.1:1", &["10.3.3.3"], &trusted),
            ip("10.3.3.3")
        );
        assert_eq!(
            client_address("10.1.1.1:1", &["evil, <script>"], &trusted),
            ip("10.1.1.1")
        );
        assert_eq!(client_address("10.1.1.1:1", &[], &trusted), ip("10.1.1.1"));
        // IPv4-mapped IPv6 is the IPv4 address; a peer that is not an address is none.
        assert_eq!(
            client_address("[::ffff:203.0.113.9]:80", &[], &none),
            ip("203.0.113.9")
        );
        assert_eq!(client_address("x".repeat(300).as_str(), &[], &none), None);
        assert!(
            Networks::parse("10.0.0.0/abc")
                .unwrap_err()
                .contains("10.0.0.0/abc")
        );
        assert!(Networks::parse("10.0.0.0/33").is_err());
    }

    #[test]
    fn targets_have_one_spelling() {
        let t = |s: &str| Target::parse(s).unwrap().to_string();
        assert_eq!(t("10.0.0.5"), "10.0.0.5");
        assert_eq!(t("::ffff:10.0.0.5"), "10.0.0.5");
        assert_eq!(t("[::ffff:10.0.0.5]"), "10.0.0.5");
        assert_eq!(t("10.0.0.5/32"), "10.0.0.5");
        assert_eq!(t("::ffff:10.0.0.5/128"), "10.0.0.5");
        assert_eq!(t("0x0a.0.0.5"), "10.0.0.5");
        assert_eq!(t("167772165"), "10.0.0.5");
        assert_eq!(t("2001:DB8::1"), "2001:db8::1");
        assert_eq!(t("DB.internal."), "db.internal");
        assert_eq!(t(" Db.Internal "), "db.internal");
        assert_eq!(t("bücher.example"), "xn--bcher-kva.example");
        assert_eq!(t("dc01"), "dc01");
        for bad in [
            "",
            "10.0.0.0/24",
            "10.0.0.0/abc",
            "10.0.0.256",
            "db internal",
            "db..internal",
            "-db.internal",
            "http://db.internal/",
            "db.internal:22",
            "a/b",
            "x".repeat(300).as_str(),
        ] {
            assert!(Target::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_protected_list_holds_against_every_spelling() {
        let list =
            ProtectedTargets::parse("10.0.0.0/8, db.internal, ::ffff:192.0.2.0/120").unwrap();
        let protects = |s: &str| list.protects(&Target::parse(s).unwrap());
        for spelling in [
            "10.0.0.5",
            "::ffff:10.0.0.5",
            "10.0.0.5/32",
            "0x0a.0.0.5",
            "167772165",
            "DB.internal.",
            "db.INTERNAL",
            "192.0.2.9",
        ] {
            assert!(protects(spelling), "{spelling}");
        }
        assert!(!protects("11.0.0.5") && !protects("db.internal.example"));
        assert!(ProtectedTargets::parse("").unwrap().is_empty());
        let err = ProtectedTargets::parse("10.0.0.0/abc").unwrap_err();
        assert!(err.contains("10.0.0.0/abc"), "{err}");
        assert!(ProtectedTargets::parse("db internal").is_err());
    }

    #[test]
    fn cors_answers_only_listed_origins() {
        let origins =
            Origins::parse("https://console.example.com, http://LOCALHOST:8080/").unwrap();
        assert_eq!(
            cors(
                "OPTIONS",
                Some("https://console.example.com"),
                true,
                &origins
            ),
            Cors::Allow {
                origin: "https://console.example.com".into(),
                preflight: true
            }
        );
        assert!(matches!(
            cors("GET", Some("http://localhost:8080"), false, &origins),
            Cors::Allow {
                preflight: false,
                ..
            }
        ));
        assert_eq!(
            cors("OPTIONS", Some("https://evil.example"), true, &origins),
            Cors::RefusePreflight
        );
        assert_eq!(
            cors("POST", Some("https://evil.example"), false, &origins),
            Cors::Withhold
        );
        assert_eq!(
            cors("OPTIONS", Some("null"), true, &origins),
            Cors::RefusePreflight
        );
        assert_eq!(cors("GET", None, false, &origins), Cors::NotCrossOrigin);
        // Empty by default: every preflight is refused.
        assert_eq!(
            cors(
                "OPTIONS",
                Some("https://console.example.com"),
                true,
                &Origins::default()
            ),
            Cors::RefusePreflight
        );
        for bad in [
            "*",
            "null",
            "https://x.example/path",
            "ftp://x.example",
            "x.example",
            "https://x.example?q",
        ] {
            assert!(Origins::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn base_urls() {
        assert_eq!(
            base_url(" https://Vigil.Example.com/ ").unwrap().as_deref(),
            Some("https://vigil.example.com")
        );
        assert_eq!(
            base_url("http://10.0.0.2:3000/vigil").unwrap().as_deref(),
            Some("http://10.0.0.2:3000/vigil")
        );
        assert_eq!(base_url("").unwrap(), None);
        for bad in [
            "vigil.example.com",
            "ftp://x",
            "https://x/?a=1",
            "https://u:p@x",
            "https://",
        ] {
            assert!(base_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cidr_matching() {
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        assert!(in_cidr(ip("10.1.2.3"), "10.0.0.0/8"));
        assert!(!in_cidr(ip("11.1.2.3"), "10.0.0.0/8"));
        assert!(in_cidr(ip("192.0.2.1"), "192.0.2.1"));
        assert!(in_cidr(ip("2001:db8::1"), "2001:db8::/32"));
        assert!(!in_cidr(ip("2001:db9::1"), "2001:db8::/32"));
        assert!(!in_cidr(ip("10.0.0.1"), "2001:db8::/32"));
        assert!(in_cidr(ip("8.8.8.8"), "0.0.0.0/0"));
        assert!(!in_cidr(ip("10.0.0.1"), "not a cidr"));
    }
}
