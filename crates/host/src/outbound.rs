//! Outbound HTTP (`wasi:http/outgoing-handler`) under Spin's
//! `allowed_outbound_hosts` rules.
//!
//! Which Spin 4.0.2 source decides what:
//! * the entry grammar and the matching ([`AllowedHost`], [`OutboundUrl`]):
//!   crates/outbound-networking-config/src/allowed_hosts.rs;
//! * `{{ var }}` entries: checked at start-up against the variables'
//!   DEFAULTS only (crates/loader/src/local.rs, `load_component`: a default
//!   that yields an invalid entry fails `spin up`), then resolved with the
//!   providers (`SPIN_VARIABLE_*`, else the default) for requests
//!   (crates/factor-outbound-networking/src/lib.rs, `prepare`). A value that
//!   does not parse then DENIES every request of that component: it is logged,
//!   not fatal;
//! * sending: crates/factor-outbound-http/src/wasi.rs (`RequestSender`): a
//!   denied request resolves its future to `HttpRequestDenied`; `self.alt`
//!   (or no host) is a self-request to this server's listen address; the
//!   `Host` header is rebuilt from the URI; the first-byte timeout bounds
//!   everything up to the response head (connect included), the connect
//!   timeout the TCP connect alone, the between-bytes timeout each body frame.
//!
//! The bytes go out through wasmtime-wasi-http's
//! [`default_send_request_handler`] (HTTP/1.1, rustls with webpki roots for
//! `https`). Not supported: service chaining (`*.spin.internal` — refused at
//! load when literal, an error at request time when templated), Spin's
//! runtime-config client TLS settings, `blocked_networks`, connection pooling
//! and HTTP/2.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::sync::Arc;

use anyhow::{Context, Result, bail, ensure};
use http::Uri;
use http::header::{HOST, HeaderValue};
use url::Host;
use wasmtime_wasi_http::p2::bindings::http::types::ErrorCode;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::p2::default_send_request_handler;
use wasmtime_wasi_http::p2::types::{
    HostFutureIncomingResponse, IncomingResponse, OutgoingRequestConfig,
};
use wasmtime_wasi_http::p2::{HttpResult, WasiHttpHooks};

use crate::manifest::Manifest;
use crate::variables::{Part, Resolver, parse_template};

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

    fn is_for_service_chaining(&self) -> bool {
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
pub struct AllowedHosts(Vec<AllowedHost>);

impl AllowedHosts {
    pub fn allows(&self, url: &OutboundUrl) -> bool {
        self.0.iter().any(|h| h.allows(url))
    }

    /// Whether self-requests (`self.alt` / no host) with any of `schemes` may go.
    pub fn allows_relative(&self, schemes: &[&str]) -> bool {
        self.0.iter().any(|h| h.allows_relative(schemes))
    }
}

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
    component: String,
    /// `Err`: the resolved entries did not parse; every request is denied.
    allowed: Result<AllowedHosts, String>,
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

/// The `WasiHttpHooks` of one instance.
pub struct OutboundHttp {
    policy: Arc<OutboundPolicy>,
    /// This server's listen address, for self-requests (none: they fail).
    self_origin: Option<SocketAddr>,
}

impl OutboundHttp {
    pub fn new(policy: Arc<OutboundPolicy>, self_origin: Option<SocketAddr>) -> Self {
        Self {
            policy,
            self_origin,
        }
    }
}

impl WasiHttpHooks for OutboundHttp {
    fn send_request(
        &mut self,
        request: hyper::Request<HyperOutgoingBody>,
        config: OutgoingRequestConfig,
    ) -> HttpResult<HostFutureIncomingResponse> {
        let decision = self.policy.decide(request.uri());
        if let Err(e) = &self.policy.allowed {
            eprintln!(
                "vigil-host: component {:?}: outbound request denied: invalid allowed_outbound_hosts ({e})",
                self.policy.component
            );
        }
        let origin = self.self_origin;
        // Like Spin, even a denial is the FUTURE's result, not `handle`'s.
        let task = wasmtime_wasi::runtime::spawn(async move {
            Ok(send(request, config, decision, origin).await)
        });
        Ok(HostFutureIncomingResponse::pending(task))
    }
}

async fn send(
    mut request: hyper::Request<HyperOutgoingBody>,
    mut config: OutgoingRequestConfig,
    decision: Decision,
    self_origin: Option<SocketAddr>,
) -> Result<IncomingResponse, ErrorCode> {
    match decision {
        Decision::Deny => return Err(ErrorCode::HttpRequestDenied),
        Decision::ServiceChaining => {
            return Err(ErrorCode::InternalError(Some(
                "service chaining (*.spin.internal) is not supported by vigil-host".into(),
            )));
        }
        Decision::SendToSelf => {
            let Some(origin) = self_origin else {
                return Err(ErrorCode::HttpRequestUriInvalid);
            };
            let mut parts = http::uri::Parts::default();
            parts.scheme = Some(http::uri::Scheme::HTTP);
            parts.authority = Some(
                origin
                    .to_string()
                    .parse()
                    .map_err(|_| ErrorCode::HttpRequestUriInvalid)?,
            );
            parts.path_and_query = request.uri().path_and_query().cloned();
            *request.uri_mut() =
                Uri::from_parts(parts).map_err(|_| ErrorCode::HttpRequestUriInvalid)?;
            config.use_tls = false;
        }
        Decision::Send => {}
    }
    set_host_header(&mut request);
    let first_byte = config.first_byte_timeout;
    tokio::time::timeout(first_byte, default_send_request_handler(request, config))
        .await
        .unwrap_or(Err(ErrorCode::ConnectionReadTimeout))
}

/// Spin drops the guest's `Host` and hyper-util's client re-derives it from
/// the URI: the host, plus the port unless it is the scheme's default.
fn set_host_header<B>(request: &mut hyper::Request<B>) {
    let uri = request.uri().clone();
    request.headers_mut().remove(HOST);
    let Some(host) = uri.host() else {
        return;
    };
    let secure = uri.scheme() == Some(&http::uri::Scheme::HTTPS);
    let value = match uri.port_u16() {
        Some(443) if secure => host.to_string(),
        Some(80) if !secure => host.to_string(),
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    };
    if let Ok(v) = HeaderValue::from_str(&value) {
        request.headers_mut().insert(HOST, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    use crate::manifest::Variable;
    use crate::variables::EnvProvider;

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
        assert!(parse_entries(&["insecure:allow-all".to_string()]).is_err());
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

    fn resolver(vars: &[(&str, Option<&str>)]) -> Resolver {
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

    // ---- real sending, against a tiny server on 127.0.0.1:0 ----

    use std::time::Duration;

    use bytes::Bytes;
    use http_body_util::{BodyExt, Full};

    /// Echoes `method path host body` as the response body; `/slow` answers
    /// after 2 s.
    async fn echo_server() -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        |req: hyper::Request<hyper::body::Incoming>| async move {
                            if req.uri().path() == "/slow" {
                                tokio::time::sleep(Duration::from_secs(2)).await;
                            }
                            let head = format!(
                                "{} {} {} ",
                                req.method(),
                                req.uri(),
                                req.headers()
                                    .get(HOST)
                                    .and_then(|h| h.to_str().ok())
                                    .unwrap_or("-")
                            );
                            let body = req.into_body().collect().await?.to_bytes();
                            let mut out = head.into_bytes();
                            out.extend_from_slice(&body);
                            Ok::<_, hyper::Error>(hyper::Response::new(Full::new(Bytes::from(out))))
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        addr
    }

    fn request(method: &str, url: &str, body: &str) -> hyper::Request<HyperOutgoingBody> {
        let uri: Uri = url.parse().unwrap();
        // As wasmtime's `handle` builds it: Host = the guest's authority.
        let host = uri.authority().unwrap().to_string();
        hyper::Request::builder()
            .method(method)
            .uri(uri)
            .header(HOST, host)
            .header("content-type", "application/json")
            .body(
                Full::new(Bytes::from(body.to_string()))
                    .map_err(|never| match never {})
                    .boxed_unsync(),
            )
            .unwrap()
    }

    fn config(first_byte: Duration) -> OutgoingRequestConfig {
        OutgoingRequestConfig {
            use_tls: false,
            connect_timeout: Duration::from_secs(5),
            first_byte_timeout: first_byte,
            between_bytes_timeout: Duration::from_secs(5),
        }
    }

    async fn send_via_hook(
        hooks: &mut OutboundHttp,
        req: hyper::Request<HyperOutgoingBody>,
        first_byte: Duration,
    ) -> Result<(u16, String), ErrorCode> {
        let fut = hooks
            .send_request(req, config(first_byte))
            .expect("handle itself never fails");
        let HostFutureIncomingResponse::Pending(task) = fut else {
            panic!("expected a pending future");
        };
        let resp = task.await.expect("no trap")?;
        let status = resp.resp.status().as_u16();
        let body = resp.resp.into_body().collect().await?.to_bytes();
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }

    /// `ErrorCode` has no `PartialEq`: compare its variant name.
    fn assert_code(err: ErrorCode, want: &str) {
        assert_eq!(format!("{err:?}"), format!("ErrorCode::{want}"));
    }

    fn hooks_for(origin_var: &str, entries: &[&str], listen: Option<SocketAddr>) -> OutboundHttp {
        let r = resolver(&[("webhook_origin", Some(origin_var))]);
        let entries: Vec<String> = entries.iter().map(|s| s.to_string()).collect();
        OutboundHttp::new(
            Arc::new(OutboundPolicy::load("t", &entries, &r).unwrap()),
            listen,
        )
    }

    #[tokio::test]
    async fn allowed_request_is_sent_for_real() {
        let addr = echo_server().await;
        let origin = format!("http://{addr}");
        let mut hooks = hooks_for(&origin, &["{{ webhook_origin }}"], None);

        let (status, body) = send_via_hook(
            &mut hooks,
            request("POST", &format!("{origin}/hook?x=1"), r#"{"alert":7}"#),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        assert_eq!(status, 200);
        assert_eq!(body, format!(r#"POST /hook?x=1 {addr} {{"alert":7}}"#));

        // Another port on the same host, another host: denied, as the future's result.
        let other = format!("http://127.0.0.1:{}/hook", addr.port() + 1);
        let denied = send_via_hook(
            &mut hooks,
            request("POST", &other, "{}"),
            Duration::from_secs(5),
        );
        assert_code(denied.await.unwrap_err(), "HttpRequestDenied");
        let denied = send_via_hook(
            &mut hooks,
            request("GET", "https://example.com/", ""),
            Duration::from_secs(5),
        );
        assert_code(denied.await.unwrap_err(), "HttpRequestDenied");
    }

    #[tokio::test]
    async fn first_byte_timeout_and_refused_connection() {
        let addr = echo_server().await;
        let mut hooks = hooks_for("http://unused.invalid", &["http://127.0.0.1:*"], None);
        let slow = format!("http://{addr}/slow");
        let err = send_via_hook(
            &mut hooks,
            request("GET", &slow, ""),
            Duration::from_millis(200),
        )
        .await
        .unwrap_err();
        assert_code(err, "ConnectionReadTimeout");

        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let url = format!("http://127.0.0.1:{port}/");
        let err = send_via_hook(&mut hooks, request("GET", &url, ""), Duration::from_secs(5))
            .await
            .unwrap_err();
        assert_code(err, "ConnectionRefused");
    }

    #[tokio::test]
    async fn self_requests_go_to_the_listen_address() {
        let addr = echo_server().await;
        let mut hooks = hooks_for("http://unused.invalid", &["http://self"], Some(addr));
        let (_, body) = send_via_hook(
            &mut hooks,
            request("GET", "http://self.alt/api/x?y=2", ""),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        assert_eq!(body, format!("GET /api/x?y=2 {addr} "));

        // Without a server (no listen address) a self-request is invalid, as in Spin.
        let mut hooks = hooks_for("http://unused.invalid", &["http://self"], None);
        let err = send_via_hook(
            &mut hooks,
            request("GET", "http://self.alt/", ""),
            Duration::from_secs(5),
        )
        .await
        .unwrap_err();
        assert_code(err, "HttpRequestUriInvalid");
    }

    #[test]
    fn host_header_from_uri() {
        let mut req = hyper::Request::builder()
            .uri("http://127.0.0.1:80/x")
            .header(HOST, "127.0.0.1:80")
            .body(())
            .unwrap();
        set_host_header(&mut req);
        assert_eq!(req.headers()[HOST], "127.0.0.1");
        let mut req = hyper::Request::builder()
            .uri("https://example.com:8443/")
            .body(())
            .unwrap();
        set_host_header(&mut req);
        assert_eq!(req.headers()[HOST], "example.com:8443");
    }
}
