//! `vigil-host [-f spin.toml] [--listen 127.0.0.1:3000] [--runtime-config-file FILE]`
//!
//! Prints exactly one line, `Serving http://ADDR`, to stdout once listening
//! (ADDR is the bound address, so `--listen 127.0.0.1:0` works), and stops
//! cleanly on SIGINT/SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use vigil_host::{Host, HostOptions};

const USAGE: &str =
    "usage: vigil-host [-f|--from spin.toml] [--listen ADDR] [--runtime-config-file FILE]";

struct Args {
    manifest: PathBuf,
    listen: String,
    runtime_config: Option<PathBuf>,
}

fn parse_args() -> Result<Args> {
    let mut args = Args {
        manifest: PathBuf::from("spin.toml"),
        listen: std::env::var("SPIN_HTTP_LISTEN_ADDR").unwrap_or_else(|_| "127.0.0.1:3000".into()),
        runtime_config: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| -> Result<String> {
            inline
                .clone()
                .or_else(|| it.next())
                .with_context(|| format!("{name} needs a value\n{USAGE}"))
        };
        match flag.as_str() {
            "-f" | "--from" | "--file" => {
                let v = PathBuf::from(value(&flag)?);
                // Like `spin up -f DIR`: a directory means DIR/spin.toml.
                args.manifest = if v.is_dir() { v.join("spin.toml") } else { v };
            }
            "--listen" => args.listen = value(&flag)?,
            "--runtime-config-file" => args.runtime_config = Some(PathBuf::from(value(&flag)?)),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    Ok(args)
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

async fn run() -> Result<()> {
    let args = parse_args()?;
    let opts = HostOptions {
        manifest: args.manifest,
        runtime_config: args.runtime_config,
    };
    // Compilation is CPU-bound and blocking; keep it off the async workers.
    let host = tokio::task::spawn_blocking(move || Host::load(opts)).await??;
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("Unable to listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    eprintln!("vigil-host: components ready in {} ms", host.compile_ms);
    println!("Serving http://{addr}");
    host.serve(listener, shutdown_signal()).await
}

fn main() -> ExitCode {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result = rt.block_on(run());
    // Connection tasks and blocking SQLite calls may still be parked (e.g. a
    // client holding a keep-alive connection): give them a moment, then go.
    rt.shutdown_timeout(std::time::Duration::from_secs(2));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
