//! Structured logs: one JSON object per line on stderr.
//!
//! The line is written with one `write`: the runtime forwards every write of
//! a component's stderr to its log file (and terminal), and printing a JSON
//! value with `eprintln!` writes it token by token (measured: 135 `write`
//! system calls per request under `spin up`).

use std::io::Write;

/// Log `entry` (a JSON object) as one line.
pub fn line(entry: serde_json::Value) {
    let mut text = entry.to_string();
    text.push('\n');
    // Nowhere to report a failure to log.
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}
