//! The `allowed_outbound_hosts` entry grammar and the matching of a request
//! URL against it (Spin's crates/outbound-networking-config/src/allowed_hosts.rs).

use std::net::IpAddr;
use std::ops::Range;

use anyhow::{Context, Result, bail, ensure};
use url::Host;

/// The domain of Spin's service chaining (`http://<component>.spin.internal`).
const SERVICE_CHAINING_DOMAIN_SUFFIX: &str = ".spin.internal";

/// One parsed `allowed_outbound_hosts` entry: `<scheme>://<host>[:<port>]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHost {
    scheme: SchemeConfig,
    host: HostConfig,
    port: PortConfig,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum SchemeConfig {
    Any,
    One(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostConfig {
    Any,
    /// `*.example.com`, stored as the suffix `.example.com`.
    AnySubdomain(String),
    /// `self` / `self.alt`: requests to this app.
    ToSelf,
    Literal(Host<String>),
    Cidr(Cidr),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PortConfig {
    Any,
    List(Vec<PortSpec>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PortSpec {
    Port(u16),
    /// `a..b`: end EXCLUSIVE, as Spin's `Range<u16>`.
    Range(Range<u16>),
}

/// An IP network, host bits truncated (ip_network's `from_str_truncate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// `a.b.c.d/n` or `x:y::z/n`; a bare address is NOT a network here.
    fn parse(s: &str) -> Option<Cidr> {
        let (ip, prefix) = s.split_once('/')?;
        let addr: IpAddr = ip.parse().ok()?;
        let prefix: u8 = prefix.parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if prefix > max {
            return None;
        }
        let addr = match addr {
            IpAddr::V4(a) => IpAddr::V4((u32::from(a) & mask32(prefix)).into()),
            IpAddr::V6(a) => IpAddr::V6((u128::from(a) & mask128(prefix)).into()),
        };
        Some(Cidr { addr, prefix })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                u32::from(ip) & mask32(self.prefix) == u32::from(net)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                u128::from(ip) & mask128(self.prefix) == u128::from(net)
            }
            _ => false,
        }
    }
}

fn mask32(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

fn mask128(prefix: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0)
}

/// Default ports Spin knows (`well_known_port`).
fn well_known_port(scheme: &str) -> Option<u16> {
    match scheme {
        "postgres" => Some(5432),
        "mysql" => Some(3306),
        "redis" => Some(6379),
        "mqtt" => Some(1883),
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

const LEARN_MORE: &str = "Learn more: https://spinframework.dev/v3/http-outbound#granting-http-permissions-to-components";

impl AllowedHost {
    /// Spin's `AllowedHostConfig::parse`, step for step (the split on the
    /// LAST `:` means an IPv6 literal needs an explicit port).
    pub fn parse(entry: &str) -> Result<AllowedHost> {
        let url = entry.trim();
        let Some((scheme, rest)) = url.split_once("://") else {
            match url {
                "*" | ":" | "" | "?" => bail!(
                    "{url:?} is not an allowed outbound host format.\nHosts must be in the form <scheme>://<host>[:<port>], with '*' wildcards allowed for each.\nIf you intended to allow all outbound networking, you can use '*://*:*' - this will obviate all network sandboxing.\n{LEARN_MORE}"
                ),
                _ => bail!(
                    "{url:?} does not contain a scheme (e.g., 'http://' or '*://')\n{LEARN_MORE}"
                ),
            }
        };
        let (host, rest) = rest.rsplit_once(':').unwrap_or((rest, ""));
        let port = match rest.split_once('/') {
            Some((port, path)) => {
                ensure!(path.is_empty(), "{url:?} has a path but is not allowed to");
                port
            }
            None => rest,
        };
        let port = PortConfig::parse(port, scheme)
            .with_context(|| format!("Invalid allowed host port {port:?}"))?;
        let scheme = SchemeConfig::parse(scheme)
            .with_context(|| format!("Invalid allowed host scheme {scheme:?}"))?;
        let host =
            HostConfig::parse(host).with_context(|| format!("Invalid allowed host {host:?}"))?;
        Ok(AllowedHost { scheme, host, port })
    }

    fn allows(&self, url: &OutboundUrl) -> bool {
        self.scheme.allows(&url.scheme)
            && self.host.allows(&url.host)
            && self.port.allows(url.port, &url.scheme)
    }

    fn allows_relative(&self, schemes: &[&str]) -> bool {
        schemes.iter().any(|s| self.scheme.allows(s))
            && matches!(self.host, HostConfig::Any | HostConfig::ToSelf)
    }

    pub(super) fn is_for_service_chaining(&self) -> bool {
        match &self.host {
            HostConfig::Literal(Host::Domain(d)) => d.ends_with(SERVICE_CHAINING_DOMAIN_SUFFIX),
            HostConfig::AnySubdomain(suffix) => suffix == SERVICE_CHAINING_DOMAIN_SUFFIX,
            _ => false,
        }
    }
}

impl SchemeConfig {
    fn parse(scheme: &str) -> Result<Self> {
        if scheme == "*" {
            return Ok(Self::Any);
        }
        ensure!(!scheme.starts_with('{'), "scheme lists are not supported");
        ensure!(
            scheme.chars().all(char::is_alphabetic),
            "only alphabetic characters are allowed"
        );
        Ok(Self::One(scheme.to_string()))
    }

    fn allows(&self, scheme: &str) -> bool {
        match self {
            Self::Any => true,
            Self::One(s) => s == scheme,
        }
    }
}

impl HostConfig {
    fn parse(host: &str) -> Result<Self> {
        let host = host.trim();
        if host == "*" {
            return Ok(Self::Any);
        }
        if host == "self" || host == "self.alt" {
            return Ok(Self::ToSelf);
        }
        if host.starts_with('{') {
            ensure!(host.ends_with('}'), "unterminated host list");
            bail!("host lists are not yet supported")
        }
        if let Some(net) = Cidr::parse(host) {
            return Ok(Self::Cidr(net));
        }
        let host = host.trim_end_matches('/');
        ensure!(!host.contains('/'), "must not include a path");
        if let Some(domain) = host.strip_prefix("*.") {
            ensure!(
                !domain.contains('*'),
                "wildcards are allowed only as prefixes"
            );
            return Ok(Self::AnySubdomain(format!(".{domain}")));
        }
        ensure!(
            !host.contains('*'),
            "wildcards are allowed only as subdomains"
        );
        Ok(Self::Literal(Host::parse(host)?))
    }

    fn allows(&self, host: &str) -> bool {
        let Ok(host) = Host::parse(host) else {
            return false;
        };
        match (self, host) {
            (Self::Any, _) => true,
            (Self::AnySubdomain(suffix), Host::Domain(d)) => d.ends_with(suffix.as_str()),
            (Self::Literal(literal), host) => host == *literal,
            (Self::Cidr(c), Host::Ipv4(ip)) => c.contains(ip.into()),
            (Self::Cidr(c), Host::Ipv6(ip)) => c.contains(ip.into()),
            (Self::AnySubdomain(_), _) | (Self::Cidr(_), Host::Domain(_)) | (Self::ToSelf, _) => {
                false
            }
        }
    }
}

impl PortConfig {
    fn parse(port: &str, scheme: &str) -> Result<Self> {
        if port.is_empty() {
            let p = well_known_port(scheme).with_context(|| {
                format!("no port was provided and the scheme {scheme:?} does not have a known default port number")
            })?;
            return Ok(Self::List(vec![PortSpec::Port(p)]));
        }
        if port == "*" {
            return Ok(Self::Any);
        }
        ensure!(!port.starts_with('{'), "port lists are not yet supported");
        let spec = if let Some((start, end)) = port.split_once("..") {
            let n = |s: &str| {
                s.parse::<u16>()
                    .with_context(|| format!("port range {port:?} contains non-number"))
            };
            PortSpec::Range(n(start)?..n(end)?)
        } else {
            PortSpec::Port(
                port.parse()
                    .with_context(|| format!("port {port:?} is not a number"))?,
            )
        };
        Ok(Self::List(vec![spec]))
    }

    fn allows(&self, port: Option<u16>, scheme: &str) -> bool {
        match self {
            Self::Any => true,
            Self::List(list) => {
                let Some(port) = port.or_else(|| well_known_port(scheme)) else {
                    return false;
                };
                list.iter().any(|p| match p {
                    PortSpec::Port(p) => *p == port,
                    PortSpec::Range(r) => r.contains(&port),
                })
            }
        }
    }
}

/// The parts of a request URL that are checked (Spin's `OutboundUrl`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundUrl {
    scheme: String,
    host: String,
    port: Option<u16>,
}

impl OutboundUrl {
    /// Parses `url`; failing that (or if it has no host), `{scheme}://{url}`.
    /// A userinfo part is percent-encoded first, as Spin does.
    pub fn parse(url: &str, scheme: &str) -> Result<Self> {
        let mut url = url.to_string();
        if let Some(at) = url.find('@') {
            let scheme_end = url.find("://").map(|e| e + 3).unwrap_or(0);
            let path_start = url[scheme_end..]
                .find('/')
                .map(|e| e + scheme_end)
                .unwrap_or(usize::MAX);
            if at >= scheme_end && at < path_start {
                let encoded = percent_encode(&url[scheme_end..at]);
                url = format!("{}{encoded}{}", &url[..scheme_end], &url[at..]);
            }
        }
        let parsed = match url::Url::parse(&url) {
            Ok(u) if u.has_host() => u,
            first => match url::Url::parse(&format!("{scheme}://{url}")) {
                Ok(u) => u,
                Err(second) => {
                    return Err(match first {
                        Err(e) => e.into(),
                        Ok(_) => {
                            anyhow::Error::from(second).context("could not convert into a url")
                        }
                    });
                }
            },
        };
        Ok(OutboundUrl {
            scheme: parsed.scheme().to_string(),
            host: parsed
                .host_str()
                .with_context(|| format!("{url:?} does not have a host component"))?
                .to_string(),
            port: parsed.port(),
        })
    }
}

/// `urlencoding::encode`: everything but `A-Za-z0-9-_.~` as `%XX`.
/// Everything but RFC 3986's unreserved characters is escaped in a userinfo.
const USERINFO: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

fn percent_encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, USERINFO).to_string()
}

/// A component's resolved `allowed_outbound_hosts`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedHosts(pub(super) Vec<AllowedHost>);

impl AllowedHosts {
    pub fn allows(&self, url: &OutboundUrl) -> bool {
        self.0.iter().any(|h| h.allows(url))
    }

    /// Whether self-requests (`self.alt` / no host) with any of `schemes` may go.
    pub fn allows_relative(&self, schemes: &[&str]) -> bool {
        self.0.iter().any(|h| h.allows_relative(schemes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(entries: &[&str]) -> AllowedHosts {
        AllowedHosts(
            entries
                .iter()
                .map(|e| AllowedHost::parse(e).unwrap_or_else(|err| panic!("{e}: {err:#}")))
                .collect(),
        )
    }

    fn allows(entries: &[&str], url: &str) -> bool {
        hosts(entries).allows(&OutboundUrl::parse(url, "https").unwrap())
    }

    #[test]
    fn entry_grammar() {
        // Spin's own cases (allowed_hosts.rs tests) plus the error paths.
        let ok = [
            "http://example.com",
            "http://example.com/",
            "https://example.com:8443",
            "*://example.com:*",
            "*://*:*",
            "http://*",
            "https://*.example.com",
            "http://self",
            "http://self.alt",
            "http://127.0.0.1:3000",
            "http://[::1]:8080",
            "http://10.0.0.0/8",
            "http://192.168.1.1/24:8080",
            "http://example.com:8000..8010",
            "redis://db",
            "  https://trimmed.example  ",
        ];
        for e in ok {
            AllowedHost::parse(e).unwrap_or_else(|err| panic!("{e}: {err:#}"));
        }
        let bad = [
            "",
            "*",
            "example.com",
            "http://example.com/path",
            "http://example.com:80/path",
            "*://example.com",   // no default port for '*'
            "ftp://example.com", // nor for ftp
            "h2c+x://example.com:1",
            "{http,https}://example.com",
            "http://{a,b}",
            "http://example.com:{80,443}",
            "http://ex*ample.com",
            "http://*.ex*ample.com",
            "http://example.com:eighty",
            "http://example.com:1..x",
            "http://[::1]", // the port split takes the last ':'
        ];
        for e in bad {
            assert!(AllowedHost::parse(e).is_err(), "{e:?} should not parse");
        }
        assert_eq!(
            AllowedHost::parse("http://Example.COM").unwrap(),
            AllowedHost::parse("http://example.com:80").unwrap()
        );
    }

    #[test]
    fn matching_scheme_host_port() {
        let e = ["http://example.com"];
        assert!(allows(&e, "http://example.com/x?y"));
        assert!(allows(&e, "http://example.com:80/"));
        assert!(allows(&e, "http://EXAMPLE.com/"));
        assert!(!allows(&e, "https://example.com/"));
        assert!(!allows(&e, "http://example.com:8080/"));
        assert!(!allows(&e, "http://www.example.com/"));

        let e = ["https://*.example.com"];
        assert!(allows(&e, "https://a.example.com/"));
        assert!(allows(&e, "https://a.b.example.com:443/"));
        assert!(!allows(&e, "https://example.com/"));
        assert!(!allows(&e, "https://badexample.com/"));
        assert!(!allows(&e, "http://a.example.com/"));

        let e = ["*://*:*"];
        assert!(allows(&e, "http://anything:1/"));
        assert!(allows(&e, "https://1.2.3.4/"));

        let e = ["http://*"];
        assert!(allows(&e, "http://x.y/"));
        assert!(!allows(&e, "http://x.y:81/"));

        let e = ["https://example.com:*"];
        assert!(allows(&e, "https://example.com:9/"));
        assert!(!allows(&e, "http://example.com:9/"));

        let e = ["http://example.com:8000..8010"];
        assert!(allows(&e, "http://example.com:8000/"));
        assert!(allows(&e, "http://example.com:8009/"));
        assert!(!allows(&e, "http://example.com:8010/"));

        let e = ["http://127.0.0.1:3000", "http://[::1]:3000"];
        assert!(allows(&e, "http://127.0.0.1:3000/"));
        assert!(allows(&e, "http://[::1]:3000/"));
        assert!(!allows(&e, "http://localhost:3000/"));
        assert!(!allows(&e, "http://127.0.0.2:3000/"));

        let e = ["http://10.0.0.0/8:*", "http://fd00::/8:*"];
        assert!(allows(&e, "http://10.200.1.1:5000/"));
        assert!(!allows(&e, "http://11.0.0.1:5000/"));
        assert!(allows(&e, "http://[fd12::1]:80/"));
        assert!(!allows(&e, "http://ten.example:80/"));

        // Userinfo is not the host.
        let e = ["https://example.com"];
        assert!(allows(&e, "https://user:p@ss@example.com/file@1.json"));
        assert!(!allows(&e, "https://example.com@evil.test/"));
        // The `self` entry allows only self-requests.
        assert!(!allows(&["http://self"], "http://self/"));
    }

    #[test]
    fn cidr() {
        let c = Cidr::parse("192.168.1.77/24").unwrap();
        assert_eq!(c.addr, "192.168.1.0".parse::<IpAddr>().unwrap());
        assert!(c.contains("192.168.1.200".parse().unwrap()));
        assert!(!c.contains("192.168.2.1".parse().unwrap()));
        assert!(
            Cidr::parse("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        assert!(
            !Cidr::parse("0.0.0.0/0")
                .unwrap()
                .contains("::1".parse().unwrap())
        );
        assert!(Cidr::parse("10.0.0.1").is_none());
        assert!(Cidr::parse("10.0.0.0/33").is_none());
    }
}
