//! `/hello` answers without the database; `/query` opens the `default`
//! database and runs one indexed read, as every Vigil request does first.
//! Spin 4 instantiates a WASIp2 component per request, so each request pays
//! for a fresh instance and a fresh connection (whose first statement parses
//! the whole schema).

use spin_sdk::http::{IncomingRequest, Response};
use spin_sdk::http_component;
use spin_sdk::sqlite::{Connection, Value};

/// The read: a session looked up by id, as authentication does.
const QUERY: &str = "SELECT user_id FROM sessions WHERE id = ?";

#[http_component]
fn handle(req: IncomingRequest) -> Response {
    let body = match req.path_with_query().unwrap_or_default().as_str() {
        "/p2/hello" => "Hello, world!".to_string(),
        "/p2/query" => {
            let conn = Connection::open_default().expect("the default database opens");
            let rows = conn
                .execute(QUERY, &[Value::Text("no-such-session".into())])
                .expect("the read runs")
                .rows;
            format!("{} rows", rows.len())
        }
        _ => return Response::builder().status(404).body("").build(),
    };
    Response::builder()
        .status(200)
        .header("content-type", "text/plain")
        .body(body)
        .build()
}
