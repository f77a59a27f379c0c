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
//!
//! The files, one job each: [`allowed_hosts`] the entry grammar and the
//! matching of a URL; [`policy`] one component's entries, checked and
//! resolved at load, and the verdict on one request; [`send`] the
//! `WasiHttpHooks` that act on the verdict and send the bytes.

mod allowed_hosts;
mod policy;
mod send;

pub use allowed_hosts::{AllowedHost, AllowedHosts, OutboundUrl};
pub use policy::{Decision, OutboundPolicy};
pub use send::OutboundHttp;
