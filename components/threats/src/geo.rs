//! Country and autonomous system of public source addresses, from the
//! MaxMind-format files named by `geoip_databases` (mounted under `/geoip`).
//! A fresh instance serves each request, so the files are read per request,
//! and only when the request has a public source address to look up.

use std::net::IpAddr;

use vigil_ingest::geo::{Geo, GeoDb, lookup_all};

use crate::settings;

/// The configured databases, opened on first use.
#[derive(Default)]
pub struct GeoLookup {
    dbs: Option<Vec<GeoDb>>,
}

impl GeoLookup {
    pub fn lookup(&mut self, ip: IpAddr) -> Geo {
        let dbs = self.dbs.get_or_insert_with(open_configured);
        if dbs.is_empty() {
            Geo::default()
        } else {
            lookup_all(dbs, ip)
        }
    }
}

/// A file that cannot be read is logged and left out: events are still
/// stored, without country and ASN, rather than refused.
fn open_configured() -> Vec<GeoDb> {
    settings::geoip_databases()
        .iter()
        .filter_map(|path| match GeoDb::open(path) {
            Ok(db) => Some(db),
            Err(why) => {
                vigil_api::log::line(serde_json::json!({"level": "error", "msg": "geoip_databases: a database cannot be used", "why": why}));
                None
            }
        })
        .collect()
}
