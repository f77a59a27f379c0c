//! `cargo xtask bench reuse`: what Spin's instance reuse would buy Vigil's
//! request path, measured on `spin up` (SQLite file, then sqld).
//!
//! Spin 4 instantiates a WASIp2 component, Vigil's kind, for every request,
//! and reuses a WASIp3 instance for up to 128. The two components of
//! `xtask/reuse` serve the same two routes, one per kind: `/hello` (no
//! database) and `/query` (one indexed read on a database with Vigil's schema:
//! a fresh connection per request on p2, the instance's connection on p3).
//! The rows say what the runtime, the connection and its schema parse cost
//! per request under each model.

use std::time::Duration;

use anyhow::{Result, bail};
use vigil_db::Target;
use vigil_e2e::Leg;
use vigil_e2e::sqld::Sqld;
use vigil_host::launch::{LaunchOptions, Runtime, launch};

use super::{get_figures, load};
use crate::{cargo, root, run};

pub fn run_bench(args: &[String]) -> Result<()> {
    let seconds = match args {
        [] => 5,
        [flag, n] if flag == "--seconds" => n.parse()?,
        _ => bail!("usage: cargo xtask bench reuse [--seconds N]"),
    };
    let duration = Duration::from_secs(seconds);
    let workspace = root().join("xtask/reuse");
    let target_dir = root().join("target/reuse");
    run(cargo()
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--manifest-path",
        ])
        .arg(workspace.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir))?;
    let wasm = target_dir.join("wasm32-wasip2/release");

    let mut table = Vec::new();
    for leg in [Leg::Spin, Leg::SpinSqld] {
        if let Some(why) = leg.missing() {
            println!("SKIPPED: the {} rows: {why}", leg.name());
            continue;
        }
        let dir = tempfile::Builder::new()
            .prefix("vigil-bench-reuse-")
            .tempdir()?;
        // Kept alive (and so running) until the leg's rows are measured.
        let sqld = (leg == Leg::SpinSqld)
            .then(|| Sqld::start(dir.path()))
            .transpose()?;
        let target = match &sqld {
            None => Target::Local(dir.path().join("reuse.db")),
            Some(sqld) => sqld.target(),
        };
        let rt = tokio::runtime::Runtime::new()?;
        rt.block_on(vigil_db::migrations::migrate(
            &target,
            &vigil_db::migrations::embedded(),
        ))?;
        std::fs::write(
            dir.path().join("runtime-config.toml"),
            target.spin_runtime_config(),
        )?;
        std::fs::write(dir.path().join("spin.toml"), manifest(&wasm))?;
        let app = launch(LaunchOptions {
            runtime: Runtime::Spin,
            manifest: dir.path().join("spin.toml"),
            runtime_config: Some(dir.path().join("runtime-config.toml")),
            env: vec![],
            workdir: dir.path().join("app"),
        })?;
        for (what, path) in [
            ("p2: hello, fresh instance", "/p2/hello"),
            ("p3: hello, reused instance", "/p3/hello"),
            ("p2: one read, fresh connection", "/p2/query"),
            ("p3: one read, the instance's connection", "/p3/query"),
        ] {
            let url = format!("{}{path}", app.base_url);
            load(&url, &[], 4, Duration::from_millis(300), 200); // warm-up
            for connections in [1, 32] {
                let f = get_figures(&url, &[], connections, duration, 200);
                let line = super::load::row(leg, what, connections, &f);
                println!("{line}");
                table.push(line);
            }
        }
    }
    super::load::print_table(&table);
    Ok(())
}

/// Both components, each under its own path prefix, with the database.
fn manifest(wasm: &std::path::Path) -> String {
    let mut manifest = "spin_manifest_version = 2\n[application]\nname = \"reuse\"\n".to_string();
    for kind in ["p2", "p3"] {
        let source = wasm.join(format!("vigil_reuse_{kind}.wasm"));
        manifest.push_str(&format!(
            "[[trigger.http]]\nroute = \"/{kind}/...\"\ncomponent = \"{kind}\"\n\
             [component.{kind}]\nsource = {:?}\nsqlite_databases = [\"default\"]\n",
            source.display().to_string()
        ));
    }
    manifest
}
