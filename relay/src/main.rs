//! `vigil`: the native command of Vigil.
//!
//! - `vigil migrate` applies the numbered migrations to a local file or a
//!   libSQL server (Turso, `sqld`).
//! - `vigil admin create-user` creates a user (the first admin); the password
//!   is read from the terminal without echo, or from stdin with `--password-stdin`.
//! - `vigil audit verify` recomputes the audit log's hash chain and, with
//!   `--anchor`, checks a saved head is still in it; `vigil verify` checks an
//!   evidence pack offline (see [`verify`]).
//! - `vigil metrics rebuild` recomputes the metrics rollups (see [`metrics_rebuild`]).
//! - `vigil relay` pushes the outbox to WebSocket clients (see [`relay`];
//!   configured by `VIGIL_RELAY_*` and `VIGIL_JWT_*` variables).
//! - `vigil simulate` sends realistic sensor traffic (see [`simulate`]).

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::{Args, Parser, Subcommand};
use vigil_core::Role;
use vigil_db::Target;
use vigil_db::migrations;
use vigil_db::users::{NewUser, create_user};

mod metrics_rebuild;
mod relay;
mod simulate;
mod verify;

#[derive(Parser)]
#[command(
    name = "vigil",
    version,
    about = "Vigil: migrations, administration and the relay"
)]
struct Cli {
    #[command(flatten)]
    db: DatabaseArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args)]
struct DatabaseArgs {
    /// Local SQLite file.
    #[arg(
        long,
        global = true,
        env = "VIGIL_DATABASE",
        default_value = ".vigil/vigil.db"
    )]
    database: PathBuf,
    /// libSQL server URL (e.g. https://<db>.turso.io or http://127.0.0.1:8080); overrides --database.
    #[arg(long, global = true, env = "VIGIL_DATABASE_URL")]
    database_url: Option<String>,
    /// Auth token for --database-url.
    #[arg(
        long,
        global = true,
        env = "VIGIL_DATABASE_TOKEN",
        hide_env_values = true
    )]
    auth_token: Option<String>,
}

impl DatabaseArgs {
    fn target(&self) -> Target {
        match &self.database_url {
            Some(url) => Target::Remote {
                url: url.clone(),
                token: self.auth_token.clone().unwrap_or_default(),
            },
            None => Target::Local(self.database.clone()),
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Apply pending migrations (each once, refusing edited ones).
    Migrate,
    /// Administration.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// The audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// The metrics rollups.
    Metrics {
        #[command(subcommand)]
        command: MetricsCommand,
    },
    /// Push outbox events to WebSocket clients until SIGTERM or Ctrl-C
    /// (settings: VIGIL_RELAY_*, VIGIL_JWT_* environment variables).
    Relay,
    /// Realistic sensor traffic over MQTT (sensors registered with keys of
    /// their own) or HTTP, with a progress line; for demos and benchmarks.
    Simulate(simulate::SimulateArgs),
    /// Check an evidence pack offline: its signature and every file's hash;
    /// exit non-zero on any modified, missing or extra file or a bad signature.
    Verify {
        /// The pack (`GET /api/export/packs/{id}`).
        pack: PathBuf,
        #[command(flatten)]
        keys: verify::KeyArgs,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Recompute the hash chain; exit non-zero at the first entry that breaks it.
    Verify {
        /// A head saved from `GET /api/export/audit/head`: it must still be in
        /// the chain, so a truncated or rewritten log fails.
        #[arg(long, value_name = "FILE")]
        anchor: Option<PathBuf>,
        /// The export public keys that check the anchor's signature.
        #[command(flatten)]
        keys: verify::KeyArgs,
    },
}

#[derive(Subcommand)]
enum MetricsCommand {
    /// Recompute the hourly rollups of [--from, --to) (default: all) from
    /// the raw rows, in one transaction.
    Rebuild {
        /// RFC 3339 time or YYYY-MM-DD (UTC); its whole hour is included.
        #[arg(long)]
        from: Option<String>,
        /// RFC 3339 time or YYYY-MM-DD (UTC), exclusive (rounded up to the hour).
        #[arg(long)]
        to: Option<String>,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create a user with a password (for the first admin: `--role admin`).
    CreateUser {
        #[arg(long)]
        username: String,
        /// viewer, analyst, supervisor or admin.
        #[arg(long, value_parser = parse_role)]
        role: Role,
        #[arg(long, default_value = "")]
        display_name: String,
        /// Read the password from the first line of stdin instead of prompting.
        #[arg(long)]
        password_stdin: bool,
    },
}

fn parse_role(s: &str) -> Result<Role, String> {
    Role::parse(s).ok_or_else(|| "expected viewer, analyst, supervisor or admin".to_string())
}

fn read_password(from_stdin: bool) -> Result<String> {
    if from_stdin || !std::io::stdin().is_terminal() {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        let password = line.trim_end_matches(['\r', '\n']).to_string();
        if password.is_empty() {
            bail!("no password on stdin");
        }
        return Ok(password);
    }
    let first = rpassword::prompt_password("Password: ")?;
    let second = rpassword::prompt_password("Repeat password: ")?;
    if first != second {
        bail!("the passwords differ");
    }
    Ok(first)
}

async fn run(cli: Cli) -> Result<()> {
    let target = cli.db.target();
    match cli.command {
        Command::Migrate => {
            let report = migrations::migrate(&target, &migrations::embedded()).await?;
            let latest = migrations::latest_version();
            if report.applied.is_empty() {
                println!("{target:?}: up to date at schema version {latest}");
            } else {
                println!(
                    "{target:?}: applied {:?}; now at schema version {latest}",
                    report.applied
                );
            }
        }
        Command::Relay => relay::main(target).await?,
        Command::Simulate(args) => simulate::run(args, target).await?,
        Command::Audit {
            command: AuditCommand::Verify { anchor, keys },
        } => verify::audit(&target, anchor.as_deref(), &keys).await?,
        Command::Verify { pack, keys } => verify::pack(&pack, &keys)?,
        Command::Metrics {
            command: MetricsCommand::Rebuild { from, to },
        } => metrics_rebuild::rebuild(&target, from.as_deref(), to.as_deref()).await?,
        Command::Admin {
            command:
                AdminCommand::CreateUser {
                    username,
                    role,
                    display_name,
                    password_stdin,
                },
        } => {
            let password = read_password(password_stdin)?;
            let user = NewUser {
                username: username.clone(),
                display_name,
                role,
            };
            let id = create_user(&target, &user, &password).await?;
            println!("created {} {username:?} (id {id})", role.as_str());
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vigil: {e:#}");
            ExitCode::FAILURE
        }
    }
}
