//! Writing build outputs.

use std::fs;
use std::path::Path;

use anyhow::{Context, Result};

/// Keep the artifact's mtime when nothing changed, so runtimes' caches stay
/// warm. A change is written beside it and renamed over it, so a runtime
/// starting meanwhile never reads half a component (and a hard-linked copy
/// of the target dir elsewhere keeps its own).
pub fn write_if_changed(path: &Path, bytes: &[u8]) -> Result<()> {
    if fs::read(path).is_ok_and(|old| old == bytes) {
        return Ok(());
    }
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    fs::write(&partial, bytes).with_context(|| format!("writing {}", path.display()))?;
    fs::rename(&partial, path).with_context(|| format!("writing {}", path.display()))
}
