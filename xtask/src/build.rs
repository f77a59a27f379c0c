//! Building the Wasm components and composing them with `platform`.

use std::fs;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};
use wac_graph::types::Package;
use wac_graph::{CompositionGraph, EncodeOptions, PlugError};

use crate::files::write_if_changed;
use crate::{cargo, root, run};

/// The HTTP components `spin.toml` names, by directory under `components/`.
pub const COMPONENTS: [&str; 6] = [
    "auth",
    "decisions",
    "threats",
    "metrics",
    "export",
    "console",
];
pub const TARGET: &str = "wasm32-wasip2";

fn ensure_target() -> Result<()> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output();
    match installed {
        Ok(out)
            if String::from_utf8_lossy(&out.stdout)
                .lines()
                .any(|l| l.trim() == TARGET) =>
        {
            Ok(())
        }
        Ok(_) => run(Command::new("rustup").args(["target", "add", TARGET])),
        // No rustup: assume the toolchain was provisioned another way; cargo will say if not.
        Err(_) => Ok(()),
    }
}

pub fn build() -> Result<()> {
    ensure_target()?;
    // The console embeds the document, so it is written first.
    crate::openapi::write()?;
    let mut cmd = cargo();
    cmd.args([
        "build",
        "--release",
        "--target",
        TARGET,
        "--package",
        "vigil-platform",
    ]);
    for name in COMPONENTS {
        cmd.args(["--package", &format!("vigil-{name}")]);
    }
    // The differential conformance fixture and the benchmarks' floor build with the app.
    cmd.args([
        "--package",
        "vigil-host-fixture",
        "--package",
        "vigil-bench-floor",
    ]);
    run(&mut cmd)?;

    let release = root().join("target").join(TARGET).join("release");
    let out_dir = root().join("target/vigil");
    fs::create_dir_all(&out_dir)?;
    let platform = release.join("vigil_platform.wasm");
    for name in COMPONENTS {
        let socket = release.join(format!("vigil_{name}.wasm"));
        let out = out_dir.join(format!("{name}.wasm"));
        compose(&socket, &platform, &out)
            .with_context(|| format!("composing {name} with platform"))?;
    }
    Ok(())
}

/// The components, and the native binaries that run them (`vigil-host`, `vigil`).
pub fn build_all() -> Result<()> {
    build()?;
    run(cargo().args([
        "build",
        "--package",
        "vigil-host",
        "--package",
        "vigil-relay",
        "--bins",
    ]))
}

/// Plug `platform`'s exports into the component's imports. A component that
/// imports nothing from `platform` (the console) is copied as it is.
fn compose(socket: &Path, plug: &Path, out: &Path) -> Result<()> {
    let mut graph = CompositionGraph::new();
    let socket_pkg = Package::from_file("vigil:component", None, socket, graph.types_mut())
        .with_context(|| format!("reading {}", socket.display()))?;
    let plug_pkg = Package::from_file("vigil:platform-impl", None, plug, graph.types_mut())
        .with_context(|| format!("reading {}", plug.display()))?;
    let socket_id = graph.register_package(socket_pkg)?;
    let plug_id = graph.register_package(plug_pkg)?;
    match wac_graph::plug(&mut graph, vec![plug_id], socket_id) {
        Ok(()) => {
            let bytes = graph.encode(EncodeOptions::default())?;
            write_if_changed(out, &bytes)
        }
        Err(PlugError::NoPlugHappened) => write_if_changed(out, &fs::read(socket)?),
        Err(e) => Err(e.into()),
    }
}
