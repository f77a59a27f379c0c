//! Where an address is: its class (private, public …) and, for
//! destinations, the zone an operator assigned its network to.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use vigil_core::net::in_cidr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AddressClass {
    Private,
    Loopback,
    LinkLocal,
    Multicast,
    Reserved,
    Public,
}

/// The class of an address (RFC 1918, 4193, 3927, 6598, 5737, 3849 …).
pub fn classify(ip: IpAddr) -> AddressClass {
    let any = |nets: &[&str]| nets.iter().any(|n| in_cidr(ip, n));
    if ip.is_loopback() {
        AddressClass::Loopback
    } else if ip.is_multicast() {
        AddressClass::Multicast
    } else if any(&["169.254.0.0/16", "fe80::/10"]) {
        AddressClass::LinkLocal
    } else if any(&[
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "fc00::/7",
        "100.64.0.0/10",
    ]) {
        AddressClass::Private
    } else if ip.is_unspecified()
        || any(&[
            "0.0.0.0/8",
            "192.0.0.0/24",
            "192.0.2.0/24",
            "198.18.0.0/15",
            "198.51.100.0/24",
            "203.0.113.0/24",
            "240.0.0.0/4",
            "255.255.255.255/32",
            "2001:db8::/32",
            "::ffff:0:0/96",
            "64:ff9b::/96",
            "100::/64",
        ])
    {
        AddressClass::Reserved
    } else {
        AddressClass::Public
    }
}

/// How much an attack on a zone matters (a factor of the score).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Criticality {
    Low,
    Medium,
    High,
    Critical,
}

/// A zone: a name and how critical it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Zone {
    pub name: String,
    pub criticality: Criticality,
}

/// The operator's CIDR → zone map, first match wins.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ZoneMap {
    entries: Vec<(String, Zone)>,
}

impl ZoneMap {
    /// From `10.0.0.0/8=internal:high, 192.168.50.0/24=ot:critical, 172.20.0.0/16=dmz`
    /// (criticality defaults to medium). A bad entry is an error naming it.
    pub fn parse(text: &str) -> Result<ZoneMap, String> {
        let mut entries = Vec::new();
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (cidr, zone) = item
                .split_once('=')
                .ok_or_else(|| format!("{item:?}: expected CIDR=zone[:criticality]"))?;
            let (net, bits) = cidr.trim().split_once('/').unwrap_or((cidr.trim(), ""));
            let bits_ok = bits.is_empty() || bits.parse::<u8>().is_ok();
            if net.parse::<IpAddr>().is_err() || !bits_ok {
                return Err(format!("{item:?}: {cidr:?} is not a CIDR"));
            }
            let (name, level) = zone
                .trim()
                .split_once(':')
                .unwrap_or((zone.trim(), "medium"));
            let criticality = match level {
                "low" => Criticality::Low,
                "medium" => Criticality::Medium,
                "high" => Criticality::High,
                "critical" => Criticality::Critical,
                other => {
                    return Err(format!(
                        "{item:?}: criticality {other:?} is not low, medium, high or critical"
                    ));
                }
            };
            if name.is_empty() {
                return Err(format!("{item:?}: the zone needs a name"));
            }
            entries.push((
                cidr.trim().to_string(),
                Zone {
                    name: name.to_string(),
                    criticality,
                },
            ));
        }
        Ok(ZoneMap { entries })
    }

    pub fn zone_of(&self, ip: IpAddr) -> Option<&Zone> {
        self.entries
            .iter()
            .find(|(cidr, _)| in_cidr(ip, cidr))
            .map(|(_, z)| z)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn address_classes() {
        assert_eq!(classify(ip("10.1.2.3")), AddressClass::Private);
        assert_eq!(classify(ip("172.31.0.1")), AddressClass::Private);
        assert_eq!(classify(ip("172.32.0.1")), AddressClass::Public);
        assert_eq!(classify(ip("192.168.1.1")), AddressClass::Private);
        assert_eq!(classify(ip("fd00::1")), AddressClass::Private);
        assert_eq!(classify(ip("127.0.0.1")), AddressClass::Loopback);
        assert_eq!(classify(ip("::1")), AddressClass::Loopback);
        assert_eq!(classify(ip("169.254.3.4")), AddressClass::LinkLocal);
        assert_eq!(classify(ip("fe80::1")), AddressClass::LinkLocal);
        assert_eq!(classify(ip("224.0.0.251")), AddressClass::Multicast);
        assert_eq!(classify(ip("ff02::1")), AddressClass::Multicast);
        assert_eq!(classify(ip("203.0.113.9")), AddressClass::Reserved);
        assert_eq!(classify(ip("2001:db8::1")), AddressClass::Reserved);
        assert_eq!(classify(ip("0.0.0.0")), AddressClass::Reserved);
        assert_eq!(classify(ip("8.8.8.8")), AddressClass::Public);
        assert_eq!(classify(ip("2606:4700::1111")), AddressClass::Public);
    }

    #[test]
    fn zone_maps() {
        let map = ZoneMap::parse(
            "192.168.50.0/24=ot:critical, 10.0.0.0/8=internal:high, 172.20.0.0/16=dmz",
        )
        .unwrap();
        assert_eq!(map.zone_of(ip("192.168.50.7")).unwrap().name, "ot");
        assert_eq!(
            map.zone_of(ip("10.9.9.9")).unwrap().criticality,
            Criticality::High
        );
        assert_eq!(
            map.zone_of(ip("172.20.1.1")).unwrap().criticality,
            Criticality::Medium
        );
        assert!(map.zone_of(ip("8.8.8.8")).is_none());
        assert!(
            ZoneMap::parse("")
                .unwrap()
                .zone_of(ip("10.0.0.1"))
                .is_none()
        );
        for bad in [
            "10.0.0.0/8",
            "nonsense=x",
            "10.0.0.0/8=x:extreme",
            "10.0.0.0/8=",
        ] {
            assert!(ZoneMap::parse(bad).is_err(), "{bad}");
        }
    }
}
