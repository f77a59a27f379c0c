//! What every Vigil API component shares, so that a component is only its
//! route table and its handlers (parse, authorize, call the domain, respond).
//!
//! - [`router`]: the route table type and the dispatcher: 404/405, the
//!   permission check, body limits, problem responses, the request log.
//! - [`request`]: the per-request context handlers receive (path params,
//!   principal, JSON body parsing with field-level errors).
//! - [`response`]: JSON and problem+json responses.
//! - [`authz`]: the `vigil:platform/authz` import (satisfied by composing the
//!   component with `platform`) and conversions to `vigil-core` types.
//! - [`api_keys`]: storing an API key (auth issues them; sensor registration
//!   mints one).
//! - [`audit`]: the hash-chained audit log and the `events` outbox; an
//!   audited change recorded in one call, and the "load before, write, load
//!   after, record both" shape of an edit ([`audit::update`]).
//! - [`decisions`]: decisions as stored, and opening one (shared by the
//!   decisions component and playbooks).
//! - [`db`]: the `default` database through Spin's SQLite interface.
//! - [`openapi`]: the OpenAPI 3.1 document, generated from the route tables.
//! - [`listing`]: filters, limits and cursors for paginated listings.
//! - [`log`]: structured log lines.
//! - [`settings`]: Spin variables as typed settings, a 503 naming a bad one;
//!   the settings every component shares (proxies, HTTPS, CORS).
//! - [`health`]: the `GET /api/<area>/health` handler every component mounts.

pub mod api_keys;
pub mod audit;
pub mod authz;
pub mod db;
pub mod decisions;
pub mod health;
pub mod listing;
pub mod log;
pub mod openapi;
pub mod request;
pub mod response;
pub mod router;
pub mod send;
pub mod settings;

pub use request::Ctx;
pub use router::{Access, Component, Route, serve};
pub use send::send;
pub use vigil_core::{ApiError, FieldError, Permission};
