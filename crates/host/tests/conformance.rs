//! Differential conformance: the fixture app (tests/fixture) under
//! `vigil-host` and under real `spin up`, the same requests to both, and the
//! responses compared field by field. Without `spin` the host half still runs
//! against the expectations written here.
//!
//! Needs the fixture component:
//!   cargo build --target wasm32-wasip2 --release -p vigil-host-fixture

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value as Json;
use vigil_host::launch::{LaunchOptions, Running, Runtime, launch};

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixture")
}

fn require_fixture() {
    // The fixture's spin.toml names the artifact by this relative path.
    let wasm =
        fixture_dir().join("../../../../target/wasm32-wasip2/release/vigil_host_fixture.wasm");
    assert!(
        wasm.is_file(),
        "fixture component missing at {}: run `cargo build --target wasm32-wasip2 --release -p vigil-host-fixture` first",
        wasm.display()
    );
}

fn spin_available() -> bool {
    if Runtime::spin_binary().is_some() {
        true
    } else {
        println!("SKIPPED: spin not found (set VIGIL_SPIN or put spin on PATH)");
        false
    }
}

/// A fresh directory per test and runtime, with a runtime config whose two
/// databases live inside it.
fn workdir(test: &str, rt: Runtime) -> (PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!(
        "vigil-host-conformance-{}-{test}-{}",
        std::process::id(),
        rt.name()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let rc = dir.join("runtime-config.toml");
    std::fs::write(
        &rc,
        format!(
            "[sqlite_database.default]\ntype = \"spin\"\npath = \"{}\"\n\n[sqlite_database.extra]\ntype = \"spin\"\npath = \"{}\"\n",
            dir.join("default.db").display(),
            dir.join("extra.db").display()
        ),
    )
    .unwrap();
    (dir, rc)
}

fn start(test: &str, rt: Runtime, env: &[(&str, &str)], with_rc: bool) -> anyhow::Result<Running> {
    let (dir, rc) = workdir(test, rt);
    launch(LaunchOptions {
        runtime: rt,
        manifest: fixture_dir().join("spin.toml"),
        runtime_config: with_rc.then_some(rc),
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        workdir: dir,
    })
}

/// Removes a passing test's work directories (a failing one keeps them for
/// inspection: logs and databases).
fn cleanup(test: &str) {
    for rt in [Runtime::Host, Runtime::Spin] {
        let dir = std::env::temp_dir().join(format!(
            "vigil-host-conformance-{}-{test}-{}",
            std::process::id(),
            rt.name()
        ));
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    fn json(&self) -> Json {
        serde_json::from_slice(&self.body).unwrap_or(Json::Null)
    }
}

fn decode_chunked(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = data.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size_str = String::from_utf8_lossy(&data[..eol]);
        let size =
            usize::from_str_radix(size_str.split(';').next().unwrap().trim(), 16).unwrap_or(0);
        data = &data[eol + 2..];
        if size == 0 || data.len() < size {
            return out;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[(size + 2).min(data.len())..];
    }
}

/// Sends one raw HTTP/1.1 request (the caller writes it, `{HOST}` is
/// replaced by the server address) and reads the response to EOF.
fn raw(addr: SocketAddr, request: &[u8]) -> Reply {
    let request = String::from_utf8_lossy(request).replace("{HOST}", &addr.to_string());
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head: {:?}", String::from_utf8_lossy(&buf)));
    let head = String::from_utf8_lossy(&buf[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = buf[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
    {
        body = decode_chunked(&body);
    }
    Reply {
        status,
        headers,
        body,
    }
}

fn get(addr: SocketAddr, path: &str) -> Reply {
    raw(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: {{HOST}}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
}

/// The fixture's JSON with this server's address made neutral, so two
/// servers on different ports compare equal.
fn normalized(reply: &Reply, addr: SocketAddr) -> Json {
    let text = String::from_utf8_lossy(&reply.body).replace(&addr.to_string(), "{HOST}");
    let mut json: Json = serde_json::from_str(&text).unwrap_or(Json::String(text));
    if let Some(h) = json.get_mut("headers").and_then(Json::as_object_mut)
        && let Some(client) = h.get_mut("spin-client-addr")
    {
        // The client port differs per connection; keep only its shape.
        let ok = client[0]
            .as_str()
            .is_some_and(|s| s.starts_with("127.0.0.1:"));
        *client = Json::String(if ok { "127.0.0.1:*" } else { "bad" }.into());
    }
    json
}

/// Compares a reply from the host with Spin's, collecting differences.
struct Diff<'a> {
    host: &'a Running,
    spin: Option<&'a Running>,
    failures: Vec<String>,
}

impl Diff<'_> {
    fn check(&mut self, label: &str, request: &[u8]) -> Reply {
        let h = raw(self.host.addr, request);
        if let Some(spin) = self.spin {
            let s = raw(spin.addr, request);
            if h.status != s.status {
                self.failures.push(format!(
                    "{label}: status host {} vs spin {}",
                    h.status, s.status
                ));
            }
            for name in ["content-type", "x-fixture"] {
                if h.header(name) != s.header(name) {
                    self.failures.push(format!(
                        "{label}: header {name}: host {:?} vs spin {:?}",
                        h.header(name),
                        s.header(name)
                    ));
                }
            }
            let (hj, sj) = (normalized(&h, self.host.addr), normalized(&s, spin.addr));
            if hj != sj {
                self.failures
                    .push(format!("{label}: body differs\n  host: {hj}\n  spin: {sj}"));
            }
        }
        h
    }

    fn get(&mut self, path: &str) -> Reply {
        let req = format!("GET {path} HTTP/1.1\r\nHost: {{HOST}}\r\nConnection: close\r\n\r\n");
        self.check(&format!("GET {path}"), req.as_bytes())
    }

    fn expect(&mut self, label: &str, ok: bool) {
        if !ok {
            self.failures.push(format!("{label}: expectation failed"));
        }
    }
}

fn matched(r: &Reply) -> (String, String) {
    let j = r.json();
    (
        j["component"].as_str().unwrap_or("").to_string(),
        j["headers"]["spin-matched-route"][0]
            .as_str()
            .unwrap_or("<none>")
            .to_string(),
    )
}

const ENV: &[(&str, &str)] = &[
    ("SPIN_VARIABLE_API_KEY", "k-123"),
    ("SPIN_VARIABLE_REGION", "override"),
];

#[test]
fn differential_against_spin() {
    require_fixture();
    let host = start("diff", Runtime::Host, ENV, true).expect("host starts");
    let spin = if spin_available() {
        Some(start("diff", Runtime::Spin, ENV, true).expect("spin starts"))
    } else {
        None
    };
    let mut d = Diff {
        host: &host,
        spin: spin.as_ref(),
        failures: Vec::new(),
    };

    // Routing: (path, status, component, spin-matched-route).
    let routes: &[(&str, u16, &str, &str)] = &[
        ("/", 200, "echo", ""),
        ("/?a=1&b=two%20x", 200, "echo", ""),
        ("/api", 200, "echo", "/api/..."),
        ("/api/", 200, "echo", "/api/..."),
        ("/api/x", 200, "echo", "/api/..."),
        ("/api/x/", 200, "echo", "/api/..."),
        ("/api/v1", 200, "limited", "/api/v1/..."),
        ("/api/v1/", 200, "limited", "/api/v1/..."),
        ("/api/v1/x/y", 200, "limited", "/api/v1/..."),
        ("/api/v1/exact", 200, "echo", "/api/v1/exact"),
        ("/api/v1/exact/", 200, "echo", "/api/v1/exact"),
        ("/api/v1/exactly", 200, "limited", "/api/v1/..."),
        ("/api/v1/exact/more", 200, "limited", "/api/v1/..."),
        ("/slash", 200, "echo", "/slash"),
        ("/slash/", 200, "echo", "/slash"),
        ("/slash/x", 404, "", "<none>"),
        ("/users/42/posts/", 200, "echo", "/users/:user_id/..."),
        ("/users/42", 200, "echo", "/users/:user_id/..."),
        ("/a%20b", 200, "echo", "/a%20b"),
        (
            "/api/%7Euser/caf%C3%A9?q=%20x&r=a%2Fb",
            200,
            "echo",
            "/api/...",
        ),
        ("/nope", 404, "", "<none>"),
        ("/apix", 404, "", "<none>"),
        ("/.well-known/spin/other", 404, "", "<none>"),
    ];
    for (path, status, component, route) in routes {
        let r = d.get(path);
        let label = format!("route {path}");
        d.expect(&label, r.status == *status);
        if r.status == 200 {
            d.expect(
                &label,
                matched(&r) == (component.to_string(), route.to_string()),
            );
        }
    }
    let r = d.get("/users/42/posts");
    d.expect(
        "named wildcard header",
        r.json()["headers"]["spin-path-match-user-id"][0] == "42",
    );
    let health = d.get("/.well-known/spin/health");
    d.expect("health", health.status == 200 && health.body == b"OK");

    // Every spin-* header, exactly (modulo ports).
    let r = d.get("/api/v1/x/y/?k=v");
    let h = &r.json()["headers"];
    let want = [
        ("spin-path-info", "/x/y/".to_string()),
        ("spin-matched-route", "/api/v1/...".into()),
        ("spin-raw-component-route", "/api/v1/...".into()),
        ("spin-component-route", "/api/v1".into()),
        ("spin-base-path", "/".into()),
        (
            "spin-full-url",
            format!("http://{}/api/v1/x/y/?k=v", host.addr),
        ),
    ];
    for (name, value) in want {
        d.expect(&format!("header {name}"), h[name][0] == value.as_str());
    }
    d.expect(
        "spin-client-addr",
        h["spin-client-addr"][0]
            .as_str()
            .is_some_and(|s| s.starts_with("127.0.0.1:")),
    );
    // A client-sent spin-* header is kept and Spin's value appended after it.
    d.check(
        "client spin header",
        b"GET /api/q HTTP/1.1\r\nHost: {HOST}\r\nspin-path-info: forged\r\nX-Custom: a\r\nX-Custom: b\r\nConnection: close\r\n\r\n",
    );

    // Variables: defaults, templates, env override, undeclared and invalid names.
    let r = d.get("/?var=message,key,literal,braces,nope,Bad,greeting");
    let v = &r.json()["variables"];
    d.expect(
        "template + override",
        v["message"]["ok"] == "hello, override!",
    );
    d.expect("required from env", v["key"]["ok"] == "k-123");
    d.expect("literal", v["literal"]["ok"] == "plain text");
    d.expect(
        "undeclared",
        v["nope"]["err"]
            .as_str()
            .is_some_and(|e| e.starts_with("Error::Undefined")),
    );
    d.expect(
        "app var not declared by component",
        v["greeting"]["err"]
            .as_str()
            .is_some_and(|e| e.starts_with("Error::Undefined")),
    );
    d.expect(
        "invalid name",
        v["Bad"]["err"]
            .as_str()
            .is_some_and(|e| e.starts_with("Error::InvalidName")),
    );
    d.get("/api/v1/x?var=only_here,message");

    // SQLite: grants, values, errors, a fresh connection per request.
    let r = d.get("/?open=default,extra,other");
    d.expect("grant", r.json()["open"]["default"] == "ok");
    d.expect(
        "deny",
        r.json()["open"]["other"]["error"] == "access-denied",
    );
    let r = d.get("/api/v1/x?open=default,extra");
    d.expect(
        "limited deny",
        r.json()["open"]["default"]["error"] == "access-denied",
    );
    for op in ["write", "write", "types", "error", "params"] {
        d.get(&format!("/?sql={op}"));
    }
    for _ in 0..3 {
        let r = d.get("/?sql=temp");
        d.expect(
            "fresh connection",
            r.json()["sql"][2]["rows"][0][0]["integer"] == 1,
        );
    }
    d.get("/api/v1/x?sql=temp&db=extra");
    d.get("/api/v1/x?sql=write&db=default");

    // Traps: 500, and the next request is served.
    let r = d.get("/trap");
    d.expect("trap is 500", r.status == 500 && r.body.is_empty());
    d.get("/api/trap");
    let r = d.get("/");
    d.expect("served after trap", r.status == 200);

    // Methods and bodies.
    let big = vec![b'x'; 3 << 20];
    let mut req = format!(
        "POST /api/upload HTTP/1.1\r\nHost: {{HOST}}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        big.len()
    )
    .into_bytes();
    req.extend_from_slice(&big);
    let r = d.check("large body", &req);
    d.expect("large body length", r.json()["body_len"] == big.len());
    let r = d.check(
        "chunked body",
        b"POST /api/chunked HTTP/1.1\r\nHost: {HOST}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
    );
    d.expect("chunked length", r.json()["body_len"] == 11);
    for method in ["PUT", "DELETE", "PATCH", "OPTIONS", "BREW"] {
        let req = format!(
            "{method} /api/m?x=1 HTTP/1.1\r\nHost: {{HOST}}\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi"
        );
        let r = d.check(method, req.as_bytes());
        d.expect(method, r.json()["method"] == method);
    }
    let r = d.check(
        "HEAD",
        b"HEAD /api/head HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n",
    );
    d.expect("HEAD", r.status == 200 && r.body.is_empty());
    d.check(
        "status passthrough",
        b"GET /?status=418 HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n",
    );
    // Keep-alive: two requests on one connection.
    let r = raw(
        host.addr,
        b"GET /api/a HTTP/1.1\r\nHost: {HOST}\r\n\r\nGET /api/b HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n",
    );
    d.expect("keep-alive", r.status == 200);

    let failures = std::mem::take(&mut d.failures);
    drop(d);
    assert!(
        failures.is_empty(),
        "{} difference(s):\n{}\n--- host stderr tail ---\n{}",
        failures.len(),
        failures.join("\n"),
        host.stderr()
            .lines()
            .rev()
            .take(30)
            .collect::<Vec<_>>()
            .join("\n")
    );
    drop((host, spin));
    cleanup("diff");
}

/// Many instances writing at once all succeed: each request's connection
/// waits in SQLite's busy handler (5 s, like Spin) instead of failing.
#[test]
fn concurrent_writers_succeed() {
    require_fixture();
    let mut runtimes = vec![Runtime::Host];
    if spin_available() {
        runtimes.push(Runtime::Spin);
    }
    for rt in runtimes {
        let app = start("writers", rt, ENV, true).expect("starts");
        let addr = app.addr;
        let threads: Vec<_> = (0..6)
            .map(|_| {
                std::thread::spawn(move || {
                    (0..8)
                        .map(|_| get(addr, "/?sql=count"))
                        .filter(|r| {
                            r.status != 200
                                || r.json()["sql"].as_array().is_none_or(|steps| {
                                    steps.iter().any(|s| s.get("error").is_some())
                                })
                        })
                        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let failed: Vec<String> = threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        assert!(
            failed.is_empty(),
            "{}: failed writes: {failed:?}",
            rt.name()
        );
        let r = get(addr, "/?sql=count");
        assert_eq!(
            r.json()["sql"][4]["rows"][0][0]["integer"],
            49,
            "{}: every write landed",
            rt.name()
        );
    }
    cleanup("writers");
}

/// A required variable without a value stops start-up, naming the variable.
#[test]
fn missing_required_variable_fails_startup() {
    require_fixture();
    let mut runtimes = vec![Runtime::Host];
    if spin_available() {
        runtimes.push(Runtime::Spin);
    }
    for rt in runtimes {
        let err = match start("novar", rt, &[], true) {
            Ok(_) => panic!("{} started without api_key", rt.name()),
            Err(e) => format!("{e:#}"),
        };
        assert!(
            err.contains("no provider resolved required variable(s)") && err.contains("api_key"),
            "{}: {err}",
            rt.name()
        );
    }
    cleanup("novar");
}

/// A component granted a database label nobody configured stops start-up.
#[test]
fn unconfigured_database_fails_startup() {
    require_fixture();
    let mut runtimes = vec![Runtime::Host];
    if spin_available() {
        runtimes.push(Runtime::Spin);
    }
    for rt in runtimes {
        let err = match start("nodb", rt, ENV, false) {
            Ok(_) => panic!("{} started without the 'extra' database", rt.name()),
            Err(e) => format!("{e:#}"),
        };
        assert!(
            err.contains("uses database 'extra'"),
            "{}: {err}",
            rt.name()
        );
    }
    cleanup("nodb");
}

/// A plain HTTP/1.1 upstream for outbound requests: answers every request
/// with JSON `{method, path, headers, body}`; `/slow` answers after 3 s.
fn upstream() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { return };
            std::thread::spawn(move || {
                let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let split = loop {
                    if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break p;
                    }
                    match s.read(&mut chunk) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                };
                let head = String::from_utf8_lossy(&buf[..split]).into_owned();
                let mut lines = head.split("\r\n");
                let mut first = lines.next().unwrap_or_default().split(' ');
                let (method, path) = (first.next().unwrap_or(""), first.next().unwrap_or(""));
                let headers: serde_json::Map<String, Json> = lines
                    .filter_map(|l| l.split_once(':'))
                    .map(|(k, v)| (k.trim().to_ascii_lowercase(), Json::from(v.trim())))
                    .collect();
                let mut body = buf[split + 4..].to_vec();
                let chunked = headers
                    .get("transfer-encoding")
                    .is_some_and(|v| v.as_str().unwrap_or("").contains("chunked"));
                let length: usize = headers
                    .get("content-length")
                    .and_then(|v| v.as_str()?.parse().ok())
                    .unwrap_or(0);
                loop {
                    let done = if chunked {
                        body.ends_with(b"0\r\n\r\n")
                    } else {
                        body.len() >= length
                    };
                    if done {
                        break;
                    }
                    match s.read(&mut chunk) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => body.extend_from_slice(&chunk[..n]),
                    }
                }
                if chunked {
                    body = decode_chunked(&body);
                }
                if path == "/slow" {
                    std::thread::sleep(Duration::from_secs(3));
                }
                let out = serde_json::to_vec(&serde_json::json!({
                    "method": method,
                    "path": path,
                    "headers": headers,
                    "body": String::from_utf8_lossy(&body),
                }))
                .unwrap();
                let _ = write!(
                    s,
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    out.len()
                );
                let _ = s.write_all(&out);
            });
        }
    });
    addr
}

const WEBHOOK_BODY: &str = r#"{"alert":7,"note":"webhook"}"#;

/// Outbound HTTP from `outbound` (allowed_outbound_hosts =
/// ["{{ upstream }}", "http://self"]): allowed requests reach the upstream
/// with the same method, path, headers and body under both runtimes; anything
/// else fails with the same error code; timeouts from request options.
#[test]
fn outbound_http_against_spin() {
    require_fixture();
    let up = upstream();
    let origin = format!("http://{up}");
    let mut env = ENV.to_vec();
    env.push(("SPIN_VARIABLE_UPSTREAM", &origin));
    let host = start("outbound", Runtime::Host, &env, true).expect("host starts");
    let spin = if spin_available() {
        Some(start("outbound", Runtime::Spin, &env, true).expect("spin starts"))
    } else {
        None
    };
    let mut d = Diff {
        host: &host,
        spin: spin.as_ref(),
        failures: Vec::new(),
    };

    for via in ["sdk", "raw"] {
        let r = d.get(&format!(
            "/outbound/a?fetch={origin}/hook?id=1&post=1&via={via}"
        ));
        let f = &r.json()["fetch"];
        d.expect(&format!("{via}: POST sent"), f["status"] == 200);
        d.expect(&format!("{via}: method"), f["body"]["method"] == "POST");
        d.expect(&format!("{via}: path"), f["body"]["path"] == "/hook?id=1");
        d.expect(&format!("{via}: body"), f["body"]["body"] == WEBHOOK_BODY);
        d.expect(
            &format!("{via}: host header"),
            f["body"]["headers"]["host"] == up.to_string(),
        );
        let r = d.get(&format!("/outbound/a?fetch={origin}/get&via={via}"));
        d.expect(
            &format!("{via}: GET"),
            r.json()["fetch"]["body"]["method"] == "GET",
        );

        // Not allowed: another port, another host, another component.
        let denied = |r: &Reply| {
            r.json()["fetch"]["error"]
                .as_str()
                .is_some_and(|e| e.contains("HttpRequestDenied"))
        };
        let other = format!("http://127.0.0.1:{}/hook", up.port() ^ 1);
        for (label, path) in [
            (
                "other port",
                format!("/outbound/a?fetch={other}&post=1&via={via}"),
            ),
            (
                "other host",
                format!("/outbound/a?fetch=https://example.com/&via={via}"),
            ),
            (
                "other component",
                format!("/?fetch={origin}/hook&post=1&via={via}"),
            ),
        ] {
            let r = d.get(&path);
            d.expect(&format!("{via}: {label} denied"), denied(&r));
        }
    }

    // A first-byte timeout from request options.
    let r = d.get(&format!(
        "/outbound/a?fetch={origin}/slow&first_byte_ms=300"
    ));
    d.expect(
        "first-byte timeout",
        r.json()["fetch"]["error"] == "ErrorCode::ConnectionReadTimeout",
    );

    // Self-requests reach the app itself (the client port differs, so only
    // chosen fields are compared).
    let mut runtimes = vec![&host];
    runtimes.extend(spin.as_ref());
    for app in runtimes {
        let r = get(app.addr, "/outbound/a?fetch=http://self.alt/api/self?x=1");
        let f = &r.json()["fetch"];
        let ok = f["status"] == 200
            && f["body"]["component"] == "echo"
            && f["body"]["path"] == "/api/self"
            && f["body"]["headers"]["spin-full-url"][0]
                == format!("http://{}/api/self?x=1", app.addr)
            && f["read_error"].is_null();
        if !ok {
            d.failures.push(format!("self-request: {f}"));
        }
        let r = get(app.addr, "/?fetch=http://self.alt/api/self");
        d.expect(
            "self-request not allowed for echo",
            r.json()["fetch"]["error"] == "ErrorCode::HttpRequestDenied",
        );
    }

    let failures = std::mem::take(&mut d.failures);
    drop(d);
    assert!(
        failures.is_empty(),
        "{} difference(s):\n{}\n--- host stderr tail ---\n{}",
        failures.len(),
        failures.join("\n"),
        host.stderr()
    );
    drop((host, spin));
    cleanup("outbound");
}

/// `allowed_outbound_hosts = ["{{ upstream }}"]`: an invalid DEFAULT stops
/// start-up; an invalid or empty value from the environment does not, and
/// then every outbound request of the component is denied.
#[test]
fn outbound_template_values() {
    require_fixture();
    let mut runtimes = vec![Runtime::Host];
    if spin_available() {
        runtimes.push(Runtime::Spin);
    }
    let wasm = std::path::absolute(
        fixture_dir().join("../../../../target/wasm32-wasip2/release/vigil_host_fixture.wasm"),
    )
    .unwrap();
    for rt in runtimes.iter().copied() {
        let (dir, _) = workdir("badorigin", rt);
        let manifest = dir.join("spin.toml");
        std::fs::write(
            &manifest,
            format!(
                "spin_manifest_version = 2\n[application]\nname = \"t\"\n[variables]\norigin = {{ default = \"\" }}\n[[trigger.http]]\nroute = \"/...\"\ncomponent = \"c\"\n[component.c]\nsource = {:?}\nallowed_outbound_hosts = [\"{{{{ origin }}}}\"]\n",
                wasm.display().to_string()
            ),
        )
        .unwrap();
        let err = match launch(LaunchOptions {
            runtime: rt,
            manifest,
            runtime_config: None,
            env: vec![],
            workdir: dir,
        }) {
            Ok(_) => panic!("{} started with an invalid default", rt.name()),
            Err(e) => format!("{e:#}"),
        };
        assert!(
            err.contains("`allowed_outbound_hosts` is malformed")
                && err.contains("results in invalid config \"\""),
            "{}: {err}",
            rt.name()
        );
    }
    cleanup("badorigin");

    for value in ["", "not a url"] {
        let mut env = ENV.to_vec();
        env.push(("SPIN_VARIABLE_UPSTREAM", value));
        for rt in runtimes.iter().copied() {
            let app = start("emptyorigin", rt, &env, true)
                .unwrap_or_else(|e| panic!("{} with upstream={value:?}: {e:#}", rt.name()));
            for fetch in [
                "http://upstream.invalid/",
                "http://127.0.0.1:9/",
                "http://self.alt/",
            ] {
                let r = get(app.addr, &format!("/outbound/a?fetch={fetch}"));
                assert_eq!(
                    r.json()["fetch"]["error"],
                    "ErrorCode::HttpRequestDenied",
                    "{} with upstream={value:?}, {fetch}: {}",
                    rt.name(),
                    String::from_utf8_lossy(&r.body)
                );
            }
        }
    }
    cleanup("emptyorigin");
}
