//! Writing build outputs.

use std::fs;
use std::path::Path;

use anyhow::{Context, Result};

/// Keep the artifact's mtime when nothing changed, so runtimes' caches stay warm.
pub fn write_if_changed(path: &Path, bytes: &[u8]) -> Result<()> {
    if fs::read(path).is_ok_and(|old| old == bytes) {
        return Ok(());
    }
    fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}
