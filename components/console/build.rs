//! Embeds every file under `static/` with its content type and a strong
//! ETag (SHA-256 of the bytes), so the console needs no filesystem at run
//! time and a changed asset always gets a new ETag.

use std::{env, fs, path::Path};

use sha2::{Digest, Sha256};

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "txt" => "text/plain; charset=utf-8",
        "woff2" => "font/woff2",
        _ => "application/octet-stream",
    }
}

fn walk(dir: &Path, root: &Path, out: &mut Vec<(String, std::path::PathBuf)>) {
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut entries: Vec<_> = fs::read_dir(dir)
        .expect("static/ is readable")
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            walk(&path, root, out);
        } else {
            println!("cargo:rerun-if-changed={}", path.display());
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_str()
                .expect("utf-8 path")
                .replace('\\', "/");
            out.push((rel, path.canonicalize().unwrap()));
        }
    }
}

#[path = "../stack_size.rs"]
mod stack_size;

fn main() {
    stack_size::main();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../static");
    let mut files = Vec::new();
    walk(&root, &root, &mut files);
    // The OpenAPI document, written from the route tables by `cargo xtask build`.
    let openapi = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/vigil/openapi.json");
    println!("cargo:rerun-if-changed={}", openapi.display());
    let openapi = openapi.canonicalize().expect(
        "target/vigil/openapi.json is missing: build with `cargo xtask build` (or `spin build`)",
    );
    files.push(("api/openapi.json".to_string(), openapi));
    let mut code = String::from("pub static FILES: &[StaticFile] = &[\n");
    for (rel, abs) in files {
        let bytes = fs::read(&abs).unwrap();
        let etag = hex::encode(&Sha256::digest(&bytes)[..16]);
        code += &format!(
            "    StaticFile {{ path: {rel:?}, body: include_bytes!({:?}), content_type: {:?}, etag: \"\\\"{etag}\\\"\" }},\n",
            abs.display().to_string(),
            content_type(&abs),
        );
    }
    code += "];\n";
    fs::write(
        Path::new(&env::var("OUT_DIR").unwrap()).join("static_files.rs"),
        code,
    )
    .unwrap();
}
