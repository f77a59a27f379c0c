//! `cargo xtask up`: the whole system on this machine: the app (under
//! `spin up`, or the built-in host) and the relay (`vigil relay`) next to
//! it on the same database and key, stopped together.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use vigil_core::token::jwks_json;
use vigil_db::Target;

use crate::{build, devkey, root};

struct UpArgs {
    listen: String,
    relay_listen: String,
    database_url: Option<String>,
    database_token: Option<String>,
}

fn parse(args: &[String]) -> Result<UpArgs> {
    let mut up = UpArgs {
        listen: std::env::var("VIGIL_LISTEN").unwrap_or_else(|_| "127.0.0.1:3000".into()),
        relay_listen: std::env::var("VIGIL_RELAY_LISTEN")
            .unwrap_or_else(|_| "127.0.0.1:3001".into()),
        database_url: std::env::var("VIGIL_DATABASE_URL").ok(),
        database_token: std::env::var("VIGIL_DATABASE_TOKEN").ok(),
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it
            .next()
            .with_context(|| format!("{flag} needs a value"))?
            .clone();
        match flag.as_str() {
            "--listen" => up.listen = value,
            "--relay-listen" => up.relay_listen = value,
            "--database-url" => up.database_url = Some(value),
            "--database-token" => up.database_token = Some(value),
            _ => bail!(
                "unknown flag {flag} (expected --listen, --relay-listen, --database-url, --database-token)"
            ),
        }
    }
    Ok(up)
}

/// The runtime config both runtimes read: where the `default` database is.
fn write_runtime_config(dir: &Path, target: &Target) -> Result<PathBuf> {
    let body = target.spin_runtime_config();
    let path = dir.join("runtime-config.toml");
    // It may hold a database token: owner-only from its creation (and
    // made so if an older file was not).
    let _ = fs::remove_file(&path);
    devkey::write_private(&path, &body)?;
    Ok(path)
}

pub fn up(args: &[String]) -> Result<()> {
    let args = parse(args)?;
    let spin = vigil_host::launch::Runtime::spin_binary();
    let target = match &args.database_url {
        Some(url) => {
            if spin.is_none() {
                bail!(
                    "--database-url needs Spin: the built-in host serves local SQLite files only. \
                     Install Spin (see README.md) or drop --database-url"
                );
            }
            Target::Remote {
                url: url.clone(),
                token: args.database_token.clone().unwrap_or_default(),
            }
        }
        None => Target::Local(root().join(".vigil/vigil.db")),
    };

    build::build_all()?;

    let state = root().join(".vigil");
    fs::create_dir_all(&state)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let report = rt.block_on(vigil_db::migrations::migrate(
        &target,
        &vigil_db::migrations::embedded(),
    ))?;
    println!(
        "database {target:?}: {} migration(s) applied, {} already there",
        report.applied.len(),
        report.already
    );
    let runtime_config = write_runtime_config(&state, &target)?;

    let mut cmd = match &spin {
        Some(spin) => {
            let mut cmd = tokio::process::Command::new(spin);
            cmd.args(["up", "--listen", &args.listen])
                .arg("--log-dir")
                .arg(state.join("logs"));
            cmd
        }
        None => {
            println!("spin is not on PATH: running the built-in wasmtime host instead");
            let mut cmd = tokio::process::Command::new(root().join("target/debug/vigil-host"));
            cmd.args(["--listen", &args.listen]);
            cmd
        }
    };
    cmd.arg("-f")
        .arg(root().join("spin.toml"))
        .arg("--runtime-config-file")
        .arg(&runtime_config)
        .envs(devkey::variables()?)
        .current_dir(root())
        .stdin(Stdio::null());
    // Onboarding tokens name where sensors register: here, unless set.
    if std::env::var_os("SPIN_VARIABLE_PUBLIC_BASE_URL").is_none() {
        cmd.env(
            "SPIN_VARIABLE_PUBLIC_BASE_URL",
            format!("http://{}", args.listen),
        );
    }
    // The console connects to the relay started below.
    if std::env::var_os("SPIN_VARIABLE_RELAY_URL").is_none() {
        cmd.env(
            "SPIN_VARIABLE_RELAY_URL",
            format!("ws://{}/ws", args.relay_listen),
        );
    }

    // The relay: same database, the development key's public half, and the
    // console's origin allowed (unless the environment says otherwise).
    let mut relay = tokio::process::Command::new(root().join("target/debug/vigil"));
    match &target {
        Target::Local(path) => {
            relay.arg("--database").arg(path);
        }
        Target::Remote { url, token } => {
            relay
                .env("VIGIL_DATABASE_URL", url)
                .env("VIGIL_DATABASE_TOKEN", token);
        }
    }
    relay
        .arg("relay")
        .env("VIGIL_RELAY_LISTEN", &args.relay_listen)
        .env(
            "VIGIL_JWT_PUBLIC_KEYS",
            jwks_json(&[devkey::signer()?.public_jwk()]),
        )
        .current_dir(root())
        .stdin(Stdio::null());
    // The app's settings the relay must share (playbooks, sensor status),
    // when given to the app as SPIN_VARIABLE_* and not to the relay.
    for name in [
        "WEBHOOK_ORIGIN",
        "WEBHOOK_SECRET",
        "DECISION_CONFIDENCE_FLOOR",
        "DECISION_PROTECTED_TARGETS",
        "DECISION_IDENTITY_PATTERNS",
        "DECISION_SLA_MINUTES",
        "SENSOR_ONLINE_SECONDS",
        "SENSOR_OFFLINE_SECONDS",
        "EVENT_RETENTION_DAYS",
    ] {
        if let Some(value) = std::env::var_os(format!("SPIN_VARIABLE_{name}"))
            && std::env::var_os(format!("VIGIL_{name}")).is_none()
        {
            relay.env(format!("VIGIL_{name}"), value);
        }
    }
    if std::env::var_os("VIGIL_RELAY_ALLOWED_ORIGINS").is_none() {
        relay.env(
            "VIGIL_RELAY_ALLOWED_ORIGINS",
            format!("http://{}", args.listen),
        );
    }

    let db_flags = match &target {
        Target::Local(_) => String::new(),
        Target::Remote { url, .. } => format!(" --database-url {url} --auth-token <token>"),
    };
    println!(
        "\nVigil: http://{listen}\n\
         Relay: ws://{relay_listen}/ws (health: http://{relay_listen}/healthz, metrics: /metrics)\n\
         Create the first admin (once):\n  cargo run --quiet --package vigil-relay --{db_flags} admin create-user --username admin --role admin\n\
         Then log in:\n  curl -s -H 'content-type: application/json' -d '{{\"username\":\"admin\",\"password\":\"…\"}}' http://{listen}/api/auth/login\n\
         Ctrl-C stops it.\n",
        listen = args.listen,
        relay_listen = args.relay_listen
    );

    rt.block_on(async move {
        let mut child = cmd.spawn().context("starting the runtime")?;
        let mut relay = match relay.spawn() {
            Ok(relay) => relay,
            Err(e) => {
                child.kill().await?;
                return Err(e).context("starting the relay (target/debug/vigil relay)");
            }
        };
        let outcome = tokio::select! {
            status = child.wait() => {
                let status = status?;
                (!status.success()).then(|| format!("the runtime exited with {status}"))
            }
            status = relay.wait() => Some(format!("the relay exited with {}", status?)),
            _ = tokio::signal::ctrl_c() => None,
        };
        // Both children are in our process group and got the same Ctrl-C;
        // otherwise (one of them stopped) the other is stopped here.
        for proc in [&mut child, &mut relay] {
            if outcome.is_some() {
                let _ = proc.start_kill();
            }
            if tokio::time::timeout(Duration::from_secs(15), proc.wait())
                .await
                .is_err()
            {
                proc.kill().await?;
            }
        }
        match outcome {
            Some(why) => bail!(why),
            None => {
                println!("stopped");
                Ok(())
            }
        }
    })
}
