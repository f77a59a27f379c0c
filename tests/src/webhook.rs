//! A webhook receiver for playbook tests: a plain HTTP/1.1 listener on
//! 127.0.0.1:0 that records each request and answers 200, or 500 for a path
//! that ends in `/fail`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

/// One request received: its path, its `x-vigil-signature` and its body.
#[derive(Clone, Debug)]
pub struct Delivery {
    pub path: String,
    pub signature: Option<String>,
    pub body: String,
}

pub struct WebhookSink {
    /// `http://127.0.0.1:<port>`: the app's `webhook_origin`.
    pub origin: String,
    received: Arc<Mutex<Vec<Delivery>>>,
}

impl WebhookSink {
    pub fn start() -> std::io::Result<WebhookSink> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let origin = format!("http://{}", listener.local_addr()?);
        let received = Arc::new(Mutex::new(Vec::new()));
        let log = received.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let log = log.clone();
                std::thread::spawn(move || {
                    let _ = serve(stream, &log);
                });
            }
        });
        Ok(WebhookSink { origin, received })
    }

    /// Everything received so far.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.received.lock().unwrap().clone()
    }
}

fn serve(stream: std::net::TcpStream, log: &Mutex<Vec<Delivery>>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
    let mut length = 0;
    let mut signature = None;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            } else if name.eq_ignore_ascii_case("x-vigil-signature") {
                signature = Some(value.trim().to_string());
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let status = if path.ends_with("/fail") {
        "500 Internal Server Error"
    } else {
        "200 OK"
    };
    log.lock().unwrap().push(Delivery {
        path,
        signature,
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    )?;
    stream.flush()
}
