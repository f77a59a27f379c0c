//! A decision as stored and as served: the record and its writes are
//! `vigil-core`'s ([`vigil_core::decision::record`], shared with the relay);
//! here is what a component adds, reading on its connection and answering
//! with the ETag.

use spin_sdk::sqlite::Connection;
pub use vigil_core::decision::record::*;

use crate::ApiError;
use crate::db::{SpinSql, ready};

/// Decision `id` on the request's connection (404 when there is none).
pub fn load(conn: &Connection, id: &str, now: i64) -> Result<Decision, ApiError> {
    ready(vigil_core::decision::record::load(&SpinSql(conn), id, now))
}

/// A decision as an HTTP answer.
pub trait Served {
    fn etag(&self) -> String;
    /// The response for this decision, with its ETag.
    fn response(&self, status: u16) -> spin_sdk::http::Response;
}

impl Served for Decision {
    fn etag(&self) -> String {
        crate::response::etag(self.version)
    }

    fn response(&self, status: u16) -> spin_sdk::http::Response {
        let mut response = crate::response::json(status, self);
        response.set_header("etag", self.etag());
        response
    }
}
