//! Prints what a fresh instance per request costs: `Host::load` (compile or
//! cache hit) and N instantiations of the fixture component. Reports figures
//! only; it asserts nothing about time.
//!
//! Needs: cargo build --target wasm32-wasip2 --release -p vigil-host-fixture

use std::path::Path;
use std::time::Instant;

use vigil_host::{Host, HostOptions};

#[test]
fn instantiation_cost() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixture");
    let wasm = fixture.join("../../../../target/wasm32-wasip2/release/vigil_host_fixture.wasm");
    assert!(
        wasm.is_file(),
        "run `cargo build --target wasm32-wasip2 --release -p vigil-host-fixture` first"
    );
    // A copy of the fixture manifest that needs no environment: the
    // required variable gets a default and databases are in-memory.
    let dir = std::env::temp_dir().join(format!("vigil-host-inst-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let manifest = std::fs::read_to_string(fixture.join("spin.toml"))
        .unwrap()
        .replace(
            "api_key = { required = true, secret = true }",
            "api_key = { default = \"x\" }",
        )
        .replace(
            "../../../../target/wasm32-wasip2/release/vigil_host_fixture.wasm",
            &std::path::absolute(&wasm).unwrap().display().to_string(),
        );
    std::fs::write(dir.join("spin.toml"), manifest).unwrap();
    std::fs::write(
        dir.join("rc.toml"),
        "[sqlite_database.extra]\ntype = \"spin\"\n",
    )
    .unwrap();

    let start = Instant::now();
    let host = Host::load(HostOptions {
        manifest: dir.join("spin.toml"),
        runtime_config: Some(dir.join("rc.toml")),
    })
    .expect("fixture loads");
    let load = start.elapsed();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let runtime = host.runtime();
    let component = runtime.components["echo"].clone();
    const N: u32 = 200;
    let per = rt.block_on(async {
        let start = Instant::now();
        for _ in 0..N {
            let mut store = runtime.new_store(&component).unwrap();
            component.pre.instantiate_async(&mut store).await.unwrap();
        }
        start.elapsed() / N
    });
    println!(
        "vigil-host: load {load:?} (compile_ms {}), fresh store + instantiate {per:?} per request (N={N})",
        host.compile_ms
    );
    let _ = std::fs::remove_dir_all(&dir);
}
