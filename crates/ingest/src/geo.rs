//! Country and autonomous system of an address, from MaxMind-format
//! (`.mmdb`) databases such as GeoLite2-Country, -City and -ASN.
//!
//! The caller hands over the file's bytes (or a path, for native callers);
//! lookups never fail: a miss, an IPv6 address in an IPv4-only database or
//! a record that does not decode all give empty fields, because enrichment
//! must never stop an event from being ingested. `testdb` (feature `testdb`,
//! for tests only) writes small databases so tests need no downloaded
//! GeoLite files.

#[cfg(any(test, feature = "testdb"))]
pub mod testdb;

use std::net::IpAddr;
use std::path::Path;

use maxminddb::{PathElement, Reader};
use serde::{Deserialize, Serialize};

/// What the databases say about one address.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Geo {
    /// ISO 3166-1 alpha-2 country code, e.g. "NL".
    pub country: Option<String>,
    /// Autonomous system number, e.g. 1136.
    pub asn: Option<u32>,
    /// The organisation the autonomous system is registered to.
    pub as_org: Option<String>,
}

impl Geo {
    fn is_complete(&self) -> bool {
        self.country.is_some() && self.asn.is_some() && self.as_org.is_some()
    }
}

/// One MaxMind-format database, held in memory.
#[derive(Debug)]
pub struct GeoDb {
    reader: Reader<Vec<u8>>,
}

impl GeoDb {
    /// Parses a database from its bytes (checks the metadata and layout,
    /// not every record).
    pub fn from_bytes(bytes: Vec<u8>) -> Result<GeoDb, String> {
        Reader::from_source(bytes)
            .map(|reader| GeoDb { reader })
            .map_err(|e| format!("not a valid MaxMind DB (.mmdb) database: {e}"))
    }

    /// Reads and parses the database file at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<GeoDb, String> {
        let path = path.as_ref();
        let bytes = std::fs::read(path)
            .map_err(|e| format!("cannot read GeoIP database {}: {e}", path.display()))?;
        GeoDb::from_bytes(bytes).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// The database's `database_type` metadata, e.g. "GeoLite2-ASN".
    pub fn database_type(&self) -> &str {
        &self.reader.metadata().database_type
    }

    /// Country and AS of `ip`; fields the database lacks are `None`.
    pub fn lookup(&self, ip: IpAddr) -> Geo {
        // Dual-stack sockets report IPv4 peers as ::ffff:a.b.c.d; look those
        // up as IPv4 so they are found in IPv4-only and IPv6 databases alike.
        let ip = ip.to_canonical();
        let Ok(found) = self.reader.lookup(ip) else {
            return Geo::default();
        };
        if !found.has_data() {
            return Geo::default();
        }
        // Field by field, so a malformed field loses only itself.
        let string = |path: &[&str]| {
            let path: Vec<PathElement<'_>> = path.iter().map(|k| PathElement::Key(k)).collect();
            found
                .decode_path::<String>(&path)
                .ok()
                .flatten()
                .filter(|s| !s.is_empty())
        };
        Geo {
            // City/Country databases: where the address is, else where its
            // network is registered (e.g. anycast or satellite ranges).
            country: string(&["country", "iso_code"])
                .or_else(|| string(&["registered_country", "iso_code"])),
            asn: found
                .decode_path::<u32>(&[PathElement::Key("autonomous_system_number")])
                .ok()
                .flatten(),
            as_org: string(&["autonomous_system_organization"]),
        }
    }
}

/// The configured databases, opened on first use: only a batch with a
/// public source address pays for reading them. A file that cannot be read
/// is reported (with why) and left out: events are still stored, without
/// country and ASN, rather than refused.
pub struct GeoLookup {
    paths: Vec<String>,
    report: fn(&str),
    dbs: std::sync::OnceLock<Vec<GeoDb>>,
}

impl GeoLookup {
    pub fn new(paths: Vec<String>, report: fn(&str)) -> GeoLookup {
        GeoLookup {
            paths,
            report,
            dbs: std::sync::OnceLock::new(),
        }
    }

    pub fn lookup(&self, ip: IpAddr) -> Geo {
        let dbs = self.dbs.get_or_init(|| {
            self.paths
                .iter()
                .filter_map(|path| GeoDb::open(path).map_err(|why| (self.report)(&why)).ok())
                .collect()
        });
        lookup_all(dbs, ip)
    }
}

/// Looks `ip` up in each database in turn; for each field the first
/// database that has it wins (e.g. a Country and an ASN database side by
/// side).
pub fn lookup_all(dbs: &[GeoDb], ip: IpAddr) -> Geo {
    let mut geo = Geo::default();
    for db in dbs {
        if geo.is_complete() {
            break;
        }
        let next = db.lookup(ip);
        geo.country = geo.country.or(next.country);
        geo.asn = geo.asn.or(next.asn);
        geo.as_org = geo.as_org.or(next.as_org);
    }
    geo
}

#[cfg(test)]
mod tests {
    use super::testdb::{self, Value};
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn geo(country: Option<&str>, asn: Option<u32>, as_org: Option<&str>) -> Geo {
        Geo {
            country: country.map(str::to_owned),
            asn,
            as_org: as_org.map(str::to_owned),
        }
    }

    fn metadata_marker(db: &[u8]) -> usize {
        let marker = testdb::METADATA_MARKER;
        db.windows(marker.len()).rposition(|w| w == marker).unwrap()
    }

    const V4: &[testdb::Entry<'static>] = &[
        ("192.0.2.0/24", Some("NL"), Some(64500), Some("Example NL")),
        ("198.51.100.0/25", Some("DE"), None, None),
        ("203.0.113.7/32", None, Some(64502), Some("Single Host")),
        // A more specific network inside an earlier one overrides it there.
        ("192.0.2.128/26", Some("BE"), None, None),
    ];

    const V6: &[testdb::Entry<'static>] = &[
        ("2001:db8::/32", Some("JP"), Some(64501), Some("Example JP")),
        ("2001:db8:1::/48", Some("US"), None, None),
    ];

    fn check_v4(db: &GeoDb) {
        let nl = geo(Some("NL"), Some(64500), Some("Example NL"));
        assert_eq!(db.lookup(ip("192.0.2.0")), nl);
        assert_eq!(db.lookup(ip("192.0.2.127")), nl);
        assert_eq!(db.lookup(ip("192.0.2.150")), geo(Some("BE"), None, None));
        assert_eq!(db.lookup(ip("192.0.2.255")), nl);
        assert_eq!(db.lookup(ip("192.0.3.1")), Geo::default());
        assert_eq!(db.lookup(ip("192.0.1.255")), Geo::default());
        assert_eq!(db.lookup(ip("198.51.100.127")), geo(Some("DE"), None, None));
        assert_eq!(db.lookup(ip("198.51.100.128")), Geo::default());
        let single = geo(None, Some(64502), Some("Single Host"));
        assert_eq!(db.lookup(ip("203.0.113.7")), single);
        assert_eq!(db.lookup(ip("203.0.113.6")), Geo::default());
        assert_eq!(db.lookup(ip("203.0.113.8")), Geo::default());
        assert_eq!(db.lookup(ip("8.8.8.8")), Geo::default());
        // IPv4-mapped IPv6 is looked up as IPv4.
        assert_eq!(db.lookup(ip("::ffff:192.0.2.1")), nl);
    }

    #[test]
    fn ipv6_database_finds_v4_and_v6_networks() {
        let entries: Vec<_> = V4.iter().chain(V6).copied().collect();
        let db = GeoDb::from_bytes(testdb::build(&entries, 6)).unwrap();
        assert_eq!(db.database_type(), "Vigil-Test");
        check_v4(&db);
        let jp = geo(Some("JP"), Some(64501), Some("Example JP"));
        assert_eq!(db.lookup(ip("2001:db8::1")), jp);
        assert_eq!(db.lookup(ip("2001:db8:ffff::1")), jp);
        assert_eq!(db.lookup(ip("2001:db8:1::5")), geo(Some("US"), None, None));
        assert_eq!(db.lookup(ip("2001:db9::1")), Geo::default());
        assert_eq!(db.lookup(ip("::1")), Geo::default());
    }

    #[test]
    fn ipv4_database_finds_v4_networks_and_ignores_v6() {
        let db = GeoDb::from_bytes(testdb::build(V4, 4)).unwrap();
        check_v4(&db);
        assert_eq!(db.lookup(ip("2001:db8::1")), Geo::default());
    }

    #[test]
    fn registered_country_is_the_fallback() {
        let iso = |c: &str| Value::Map(vec![("iso_code".into(), Value::Str(c.into()))]);
        let both = Value::Map(vec![
            ("country".into(), iso("FR")),
            ("registered_country".into(), iso("GB")),
        ]);
        let registered_only = Value::Map(vec![("registered_country".into(), iso("GB"))]);
        let bytes = testdb::build_values(
            &[("192.0.2.0/24", both), ("198.51.100.0/24", registered_only)],
            6,
            None,
        );
        let db = GeoDb::from_bytes(bytes).unwrap();
        assert_eq!(db.lookup(ip("192.0.2.1")).country.as_deref(), Some("FR"));
        assert_eq!(db.lookup(ip("198.51.100.1")).country.as_deref(), Some("GB"));
    }

    #[test]
    fn fields_of_the_wrong_type_are_empty_not_errors() {
        let record = Value::Map(vec![
            ("country".into(), Value::Str("not a map".into())),
            ("autonomous_system_number".into(), Value::Str("AS1".into())),
            ("autonomous_system_organization".into(), Value::U32(7)),
        ]);
        let db =
            GeoDb::from_bytes(testdb::build_values(&[("192.0.2.0/24", record)], 4, None)).unwrap();
        assert_eq!(db.lookup(ip("192.0.2.1")), Geo::default());
    }

    #[test]
    fn lookup_all_takes_each_field_from_the_first_database_that_has_it() {
        let country = GeoDb::from_bytes(testdb::build(
            &[
                ("192.0.2.0/24", Some("NL"), None, None),
                ("2001:db8::/32", Some("JP"), None, None),
            ],
            6,
        ))
        .unwrap();
        let asn = GeoDb::from_bytes(testdb::build(
            &[
                ("192.0.2.0/24", Some("XX"), Some(64500), Some("Example NL")),
                (
                    "198.51.100.0/24",
                    Some("DE"),
                    Some(64501),
                    Some("Example DE"),
                ),
            ],
            4,
        ))
        .unwrap();
        let dbs = [country, asn];
        assert_eq!(
            lookup_all(&dbs, ip("192.0.2.1")),
            geo(Some("NL"), Some(64500), Some("Example NL"))
        );
        assert_eq!(
            lookup_all(&dbs, ip("198.51.100.1")),
            geo(Some("DE"), Some(64501), Some("Example DE"))
        );
        assert_eq!(
            lookup_all(&dbs, ip("2001:db8::1")),
            geo(Some("JP"), None, None)
        );
        assert_eq!(lookup_all(&dbs, ip("10.0.0.1")), Geo::default());
        assert_eq!(lookup_all(&[], ip("192.0.2.1")), Geo::default());

        // Reversed, the ASN database's country wins.
        let dbs = [dbs.into_iter().nth(1).unwrap()];
        assert_eq!(
            lookup_all(&dbs, ip("192.0.2.1")).country.as_deref(),
            Some("XX")
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bytes in [
            Vec::new(),
            b"not a database at all".to_vec(),
            vec![0xff; 4096],
        ] {
            let err = GeoDb::from_bytes(bytes).unwrap_err();
            assert!(err.contains("MaxMind DB"), "{err}");
        }
        // Metadata present but the search tree it describes is missing.
        let bytes = testdb::build(V4, 4);
        let marker = metadata_marker(&bytes);
        let err = GeoDb::from_bytes(bytes[marker..].to_vec()).unwrap_err();
        assert!(err.contains("MaxMind DB"), "{err}");
    }

    #[test]
    fn corrupt_tree_and_data_give_empty_fields() {
        let good = testdb::build(V4, 4);
        let marker = metadata_marker(&good);
        // Overwrite everything before the metadata: tree pointers then point
        // anywhere, data records are garbage.
        for fill in [0x00, 0x5a, 0xff] {
            let mut bytes = good.clone();
            bytes[..marker].fill(fill);
            let db = GeoDb::from_bytes(bytes).unwrap();
            for a in ["192.0.2.1", "198.51.100.1", "203.0.113.7", "0.0.0.0"] {
                let _ = db.lookup(ip(a));
            }
        }
    }

    #[test]
    fn open_reads_files_and_names_the_path_on_error() {
        let path = std::env::temp_dir().join(format!("vigil-geo-{}.mmdb", std::process::id()));
        std::fs::write(&path, testdb::build(V4, 4)).unwrap();
        let db = GeoDb::open(&path);
        std::fs::remove_file(&path).unwrap();
        check_v4(&db.unwrap());

        let missing = std::env::temp_dir().join("vigil-geo-does-not-exist.mmdb");
        let err = GeoDb::open(&missing).unwrap_err();
        assert!(err.contains("vigil-geo-does-not-exist.mmdb"), "{err}");

        let path = std::env::temp_dir().join(format!("vigil-geo-bad-{}.mmdb", std::process::id()));
        std::fs::write(&path, b"garbage").unwrap();
        let err = GeoDb::open(&path).unwrap_err();
        std::fs::remove_file(&path).unwrap();
        assert!(err.contains(&path.display().to_string()), "{err}");
    }

    #[test]
    fn geo_serializes_with_plain_field_names() {
        let g = geo(Some("NL"), Some(1136), Some("KPN B.V."));
        let json = serde_json::to_value(&g).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"country": "NL", "asn": 1136, "as_org": "KPN B.V."})
        );
        assert_eq!(serde_json::from_value::<Geo>(json).unwrap(), g);
    }
}
