//! The STIX 2.1 validator the end-to-end suite checks exported bundles with:
//! the official `stix2-validator` from PyPI, pinned to 3.2.0 (3.3.1 ships
//! without its schemas), in a virtualenv under `target/` that this command
//! installs once, like the fuzz step's tools. `cargo xtask test` hands its
//! python to the suite as `VIGIL_STIX_PYTHON`.

use std::path::PathBuf;
use std::process::Command;

use anyhow::Result;

use crate::root;

const PACKAGE: &str = "stix2-validator==3.2.0";

/// The virtualenv's python, with the validator installed; `None` without python3.
pub fn ensure() -> Result<Option<PathBuf>> {
    let venv = root().join("target/stix-venv");
    let python = venv.join("bin/python");
    let marker = venv.join("vigil-packages.txt");
    if std::fs::read_to_string(&marker).is_ok_and(|m| m == PACKAGE) {
        return Ok(Some(python));
    }
    if Command::new("python3").arg("--version").output().is_err() {
        return Ok(None);
    }
    crate::run(Command::new("python3").arg("-m").arg("venv").arg(&venv))?;
    crate::run(
        Command::new(&python)
            .args(["-m", "pip", "install", "--quiet"])
            .arg(PACKAGE),
    )?;
    std::fs::write(marker, PACKAGE)?;
    Ok(Some(python))
}
