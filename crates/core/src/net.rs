//! Network addresses: CIDR membership, shared by the safety validator
//! (protected targets) and ingestion (zones, source filters), and the
//! client address of a request behind trusted proxies.

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
