//! The p2 component's two routes on WASIp3. Spin 4 reuses a WASIp3 instance
//! for up to 128 requests (16 at a time), so the connection is opened once per
//! instance and kept; its statements use the synchronous functions of
//! `spin:sqlite@3.1.0`, as Vigil's database layer would. (Concurrent requests
//! in one instance would share the connection: fine for this read, not for
//! Vigil's transactions, which would need one connection per request in flight.)

use std::cell::OnceCell;

use spin_sdk::http::{IntoResponse, Request, StatusCode};
use spin_sdk::http_service;
use spin_sdk::sqlite::Value;
use spin_sdk::sqlite::wit::sqlite::Connection;

/// The read: a session looked up by id, as authentication does.
const QUERY: &str = "SELECT user_id FROM sessions WHERE id = ?";

thread_local! {
    /// This instance's connection, opened by its first `/query`.
    static CONNECTION: OnceCell<Connection> = const { OnceCell::new() };
}

#[http_service]
async fn handle(req: Request) -> impl IntoResponse {
    match req.uri().path() {
        "/p3/hello" => (StatusCode::OK, "Hello, world!".to_string()),
        "/p3/query" => {
            let rows = CONNECTION.with(|cell| {
                let conn = cell.get_or_init(|| {
                    Connection::open("default").expect("the default database opens")
                });
                conn.execute(QUERY, &[Value::Text("no-such-session".into())])
                    .expect("the read runs")
                    .rows
            });
            (StatusCode::OK, format!("{} rows", rows.len()))
        }
        _ => (StatusCode::NOT_FOUND, String::new()),
    }
}
