//! The floor of `cargo xtask bench load`: the hello-world component of Spin's
//! `http-rust` template, so the benchmark can print what the runtime itself
//! costs per request next to what Vigil's routes cost.

use spin_sdk::http::{IncomingRequest, Response};
use spin_sdk::http_component;

#[http_component]
fn hello(_req: IncomingRequest) -> Response {
    Response::builder()
        .status(200)
        .header("content-type", "text/plain")
        .body("Hello, world!")
        .build()
}
