//! One JSON line per event on stderr, written in one `write` so lines from
//! concurrent tasks never interleave.

use std::io::Write;

use serde_json::Value;

/// Log `fields` (an object) with the time added.
pub fn line(mut fields: Value) {
    if let Some(map) = fields.as_object_mut() {
        map.insert(
            "ts".into(),
            vigil_core::time::rfc3339(vigil_core::time::now_millis()).into(),
        );
        map.entry("component").or_insert("relay".into());
    }
    let mut text = fields.to_string();
    text.push('\n');
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}
