//! For tests: writes small MaxMind DB format 2.0 files
//! (<https://maxmind.github.io/MaxMind-DB/>) so unit and end-to-end tests
//! build their own database instead of downloading GeoLite files. Not for
//! production data: it keeps the whole tree in memory, does not share
//! identical records and panics on bad input.
//!
//! Layout: binary search tree (one bit per level, record size 24, 28 or 32
//! bits), 16 zero bytes, the data section, then `\xAB\xCD\xEFMaxMind.com`
//! and the metadata map.

use std::net::IpAddr;

/// Starts the metadata section.
pub const METADATA_MARKER: &[u8] = b"\xAB\xCD\xEFMaxMind.com";

/// Separates the search tree from the data section.
const DATA_SECTION_SEPARATOR: [u8; 16] = [0; 16];

/// Fixed so that the same entries always give the same bytes.
const BUILD_EPOCH: u64 = 1_700_000_000;

/// One network and what to store for it: `(cidr, country ISO code, ASN,
/// AS organisation)`, e.g. `("192.0.2.0/24", Some("NL"), Some(64500),
/// Some("Example"))`. The CIDR may be IPv4 or IPv6; a bare address means a
/// single host.
pub type Entry<'a> = (&'a str, Option<&'a str>, Option<u32>, Option<&'a str>);

/// Builds a database with GeoLite2-Country (`country.iso_code`) and
/// GeoLite2-ASN (`autonomous_system_number`, `autonomous_system_organization`)
/// fields, as `ip_version` 4 or 6. In an IPv6 database IPv4 networks go under
/// `::/96`, as in MaxMind's own files. Where networks overlap, later entries
/// win inside their own range.
///
/// # Panics
///
/// On an unparsable CIDR, an `ip_version` other than 4 or 6, or an IPv6
/// network in an IPv4 database.
pub fn build(entries: &[Entry<'_>], ip_version: u8) -> Vec<u8> {
    let records: Vec<(&str, Value)> = entries
        .iter()
        .map(|&(cidr, country, asn, as_org)| {
            let mut fields = Vec::new();
            if let Some(iso) = country {
                let iso = Value::Map(vec![("iso_code".into(), Value::Str(iso.into()))]);
                fields.push(("country".into(), iso));
            }
            if let Some(asn) = asn {
                fields.push(("autonomous_system_number".into(), Value::U32(asn)));
            }
            if let Some(org) = as_org {
                fields.push((
                    "autonomous_system_organization".into(),
                    Value::Str(org.into()),
                ));
            }
            (cidr, Value::Map(fields))
        })
        .collect();
    build_values(&records, ip_version, None)
}

/// A value in the MaxMind DB data format (the subset tests need).
#[derive(Clone, Debug)]
pub(crate) enum Value {
    Str(String),
    U16(u16),
    U32(u32),
    U64(u64),
    Map(Vec<(String, Value)>),
    Array(Vec<Value>),
}

impl Value {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Value::Str(s) => {
                control(out, 2, s.len());
                out.extend_from_slice(s.as_bytes());
            }
            Value::U16(n) => uint(out, 5, u64::from(*n)),
            Value::U32(n) => uint(out, 6, u64::from(*n)),
            Value::U64(n) => uint(out, 9, *n),
            Value::Map(pairs) => {
                control(out, 7, pairs.len());
                for (key, value) in pairs {
                    Value::Str(key.clone()).encode(out);
                    value.encode(out);
                }
            }
            Value::Array(items) => {
                control(out, 11, items.len());
                for item in items {
                    item.encode(out);
                }
            }
        }
    }
}

/// Control byte: type in the top 3 bits (0 = extended, real type - 7 in the
/// next byte), size in the low 5, sizes of 29 and up in 1–3 more bytes.
fn control(out: &mut Vec<u8>, type_num: u8, size: usize) {
    let (low, extra): (u8, Vec<u8>) = match size {
        0..29 => (size as u8, vec![]),
        29..285 => (29, vec![(size - 29) as u8]),
        285..65_821 => (30, ((size - 285) as u16).to_be_bytes().to_vec()),
        _ => {
            let n = u32::try_from(size - 65_821).expect("value too large for MMDB");
            assert!(n < 1 << 24, "value too large for MMDB");
            (31, n.to_be_bytes()[1..].to_vec())
        }
    };
    if type_num <= 7 {
        out.push(type_num << 5 | low);
    } else {
        out.push(low);
        out.push(type_num - 7);
    }
    out.extend_from_slice(&extra);
}

/// Unsigned integers are big-endian with leading zero bytes dropped.
fn uint(out: &mut Vec<u8>, type_num: u8, n: u64) {
    let bytes = n.to_be_bytes();
    let skip = (n.leading_zeros() / 8) as usize;
    control(out, type_num, 8 - skip);
    out.extend_from_slice(&bytes[skip..]);
}

#[derive(Clone)]
enum Node {
    Empty,
    /// Offset of the record in the data section.
    Data(usize),
    Inner(Box<Node>, Box<Node>),
}

impl Node {
    fn split(&mut self) -> (&mut Node, &mut Node) {
        if !matches!(self, Node::Inner(..)) {
            let leaf = std::mem::replace(self, Node::Empty);
            *self = Node::Inner(Box::new(leaf.clone()), Box::new(leaf));
        }
        match self {
            Node::Inner(left, right) => (left, right),
            _ => unreachable!(),
        }
    }

    fn insert(&mut self, addr: u128, bits: u32, prefix: u32, data: usize) {
        let mut node = self;
        for depth in 0..prefix {
            let (left, right) = node.split();
            node = if (addr >> (bits - 1 - depth)) & 1 == 0 {
                left
            } else {
                right
            };
        }
        *node = Node::Data(data);
    }
}

/// Parses a CIDR into (address bits, prefix length) for a tree of
/// `ip_version` 4 or 6.
fn parse_cidr(cidr: &str, ip_version: u8) -> (u128, u32) {
    let (addr, prefix) = match cidr.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (cidr, None),
    };
    let addr: IpAddr = addr
        .parse()
        .unwrap_or_else(|e| panic!("bad network {cidr:?}: {e}"));
    let (bits, max) = match (addr, ip_version) {
        (IpAddr::V4(a), _) => (u128::from(u32::from(a)), 32),
        (IpAddr::V6(a), 6) => (u128::from(a), 128),
        (IpAddr::V6(_), _) => panic!("IPv6 network {cidr:?} in an IPv4 database"),
    };
    let prefix = match prefix {
        Some(p) => p
            .parse::<u32>()
            .ok()
            .filter(|p| *p <= max)
            .unwrap_or_else(|| panic!("bad prefix length in {cidr:?}")),
        None => max,
    };
    // In an IPv6 tree IPv4 lives at ::a.b.c.d/(96+n), where readers look.
    if ip_version == 6 && max == 32 {
        (bits, prefix + 96)
    } else {
        (bits, prefix)
    }
}

/// Builds a database from arbitrary records. `record_size` 24, 28 or 32;
/// `None` picks the smallest that fits.
pub(crate) fn build_values(
    entries: &[(&str, Value)],
    ip_version: u8,
    record_size: Option<u16>,
) -> Vec<u8> {
    assert!(
        ip_version == 4 || ip_version == 6,
        "ip_version must be 4 or 6"
    );
    let bits = if ip_version == 4 { 32 } else { 128 };

    let mut data = Vec::new();
    let mut root = Node::Empty;
    for (cidr, value) in entries {
        let (addr, prefix) = parse_cidr(cidr, ip_version);
        root.insert(addr, bits, prefix, data.len());
        value.encode(&mut data);
    }
    // Readers start at node 0, so the root must be a node even for /0.
    root.split();

    // Number the nodes breadth-first; a child's number is known when its
    // parent is written because it is numbered when first seen.
    enum Rec {
        Node(usize),
        Empty,
        Data(usize),
    }
    let mut order: Vec<&Node> = vec![&root];
    let mut records: Vec<[Rec; 2]> = Vec::new();
    let mut i = 0;
    while i < order.len() {
        let Node::Inner(left, right) = order[i] else {
            unreachable!("only inner nodes are queued")
        };
        let rec = |child: &'_ Node| match child {
            Node::Empty => Rec::Empty,
            Node::Data(offset) => Rec::Data(*offset),
            Node::Inner(..) => Rec::Node(0),
        };
        let mut pair = [rec(left), rec(right)];
        for (slot, child) in pair.iter_mut().zip([&**left, &**right]) {
            if let Rec::Node(n) = slot {
                *n = order.len();
                order.push(child);
            }
        }
        records.push(pair);
        i += 1;
    }
    let node_count = records.len();

    // Record values: < node_count a node, == node_count no data, beyond
    // that node_count + 16 + the offset in the data section.
    let value = |rec: &Rec| match rec {
        Rec::Node(n) => *n,
        Rec::Empty => node_count,
        Rec::Data(offset) => node_count + DATA_SECTION_SEPARATOR.len() + offset,
    };
    let max = node_count + DATA_SECTION_SEPARATOR.len() + data.len();
    let record_size = record_size.unwrap_or(match max {
        m if m < 1 << 24 => 24,
        m if m < 1 << 28 => 28,
        _ => 32,
    });
    assert!(
        (max as u64) < 1 << record_size,
        "database too large for record size {record_size}"
    );

    let mut out = Vec::with_capacity(node_count * usize::from(record_size) / 4 + data.len() + 256);
    for [left, right] in &records {
        let (l, r) = (value(left) as u32, value(right) as u32);
        match record_size {
            24 => {
                out.extend_from_slice(&l.to_be_bytes()[1..]);
                out.extend_from_slice(&r.to_be_bytes()[1..]);
            }
            // The middle byte holds the top nibble of each record.
            28 => {
                out.extend_from_slice(&l.to_be_bytes()[1..]);
                out.push(((l >> 24) as u8) << 4 | (r >> 24) as u8);
                out.extend_from_slice(&r.to_be_bytes()[1..]);
            }
            32 => {
                out.extend_from_slice(&l.to_be_bytes());
                out.extend_from_slice(&r.to_be_bytes());
            }
            other => panic!("record size {other} is not 24, 28 or 32"),
        }
    }
    out.extend_from_slice(&DATA_SECTION_SEPARATOR);
    out.extend_from_slice(&data);
    out.extend_from_slice(METADATA_MARKER);

    let str = |s: &str| Value::Str(s.into());
    Value::Map(vec![
        ("binary_format_major_version".into(), Value::U16(2)),
        ("binary_format_minor_version".into(), Value::U16(0)),
        ("build_epoch".into(), Value::U64(BUILD_EPOCH)),
        ("database_type".into(), str("Vigil-Test")),
        (
            "description".into(),
            Value::Map(vec![("en".into(), str("Vigil test database"))]),
        ),
        ("ip_version".into(), Value::U16(u16::from(ip_version))),
        ("languages".into(), Value::Array(vec![str("en")])),
        (
            "node_count".into(),
            Value::U32(u32::try_from(node_count).expect("too many nodes")),
        ),
        ("record_size".into(), Value::U16(record_size)),
    ])
    .encode(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use maxminddb::{Reader, path};

    fn lookup(db: &Reader<Vec<u8>>, ip: &str) -> Option<(String, u32)> {
        let found = db.lookup(ip.parse().unwrap()).unwrap();
        let country: Option<String> = found.decode_path(&path!["country", "iso_code"]).unwrap();
        let asn: Option<u32> = found
            .decode_path(&path!["autonomous_system_number"])
            .unwrap();
        Some((country?, asn?))
    }

    const ENTRIES: &[Entry<'static>] = &[
        ("0.0.0.0/1", Some("AA"), Some(1), None),
        ("192.0.2.0/24", Some("NL"), Some(64500), Some("Example")),
        ("192.0.2.1", Some("BE"), Some(u32::MAX), Some("")),
    ];

    #[test]
    fn maxminddb_verifies_and_reads_every_record_size() {
        for ip_version in [4, 6] {
            for record_size in [24, 28, 32] {
                let entries: Vec<(&str, Value)> = ENTRIES
                    .iter()
                    .map(|&(cidr, c, asn, _)| {
                        let fields = vec![
                            (
                                "country".into(),
                                Value::Map(vec![(
                                    "iso_code".into(),
                                    Value::Str(c.unwrap().into()),
                                )]),
                            ),
                            ("autonomous_system_number".into(), Value::U32(asn.unwrap())),
                        ];
                        (cidr, Value::Map(fields))
                    })
                    .collect();
                let bytes = build_values(&entries, ip_version, Some(record_size));
                let db = Reader::from_source(bytes).unwrap();
                db.verify().unwrap();
                let m = db.metadata();
                assert_eq!(m.record_size, record_size);
                assert_eq!(m.ip_version, u16::from(ip_version));
                assert_eq!(m.binary_format_major_version, 2);
                assert_eq!(m.build_epoch, BUILD_EPOCH);
                assert_eq!(m.languages, ["en"]);
                assert_eq!(m.description["en"], "Vigil test database");

                let at = |ip| lookup(&db, ip);
                assert_eq!(at("1.2.3.4"), Some(("AA".into(), 1)));
                assert_eq!(at("127.255.255.255"), Some(("AA".into(), 1)));
                assert_eq!(at("128.0.0.0"), None);
                assert_eq!(at("192.0.2.0"), Some(("NL".into(), 64500)));
                assert_eq!(at("192.0.2.1"), Some(("BE".into(), u32::MAX)));
                assert_eq!(at("192.0.2.2"), Some(("NL".into(), 64500)));
                assert_eq!(at("192.0.3.0"), None);
            }
        }
    }

    #[test]
    fn large_databases_switch_to_wider_records() {
        // Records past 2^24 bytes into the data section need 28-bit
        // pointers; the long strings take the 2-byte size encoding.
        let org = "x".repeat(60_000);
        let nets: Vec<String> = (0..300)
            .map(|i| format!("10.{}.{}.0/24", i / 256, i % 256))
            .collect();
        let mut entries: Vec<Entry<'_>> = nets
            .iter()
            .map(|net| (net.as_str(), None, None, Some(org.as_str())))
            .collect();
        entries.push(("192.0.2.0/24", Some("NL"), Some(64500), None));
        let db = Reader::from_source(build(&entries, 6)).unwrap();
        db.verify().unwrap();
        assert_eq!(db.metadata().record_size, 28);
        assert_eq!(lookup(&db, "192.0.2.1"), Some(("NL".into(), 64500)));
        let found = db.lookup("10.1.43.9".parse().unwrap()).unwrap();
        let got: Option<&str> = found
            .decode_path(&path!["autonomous_system_organization"])
            .unwrap();
        assert_eq!(got, Some(org.as_str()));
    }

    #[test]
    fn an_empty_database_is_valid() {
        for ip_version in [4, 6] {
            let db = Reader::from_source(build(&[], ip_version)).unwrap();
            db.verify().unwrap();
            assert!(!db.lookup("192.0.2.1".parse().unwrap()).unwrap().has_data());
        }
    }

    #[test]
    fn same_entries_same_bytes() {
        assert_eq!(build(ENTRIES, 6), build(ENTRIES, 6));
    }
}
