//! The Turso path's failure modes, each with its own `sqld` and `spin up`:
//! a database that is down answers 503 (not a hang, not a stack trace) and
//! recovers when it returns; a wrong token is a 503 with a log line naming
//! the database, never the token.

use vigil_e2e::sqld::Sqld;
use vigil_e2e::{migrate, workspace_root};
use vigil_host::launch::{LaunchOptions, Running, Runtime, launch};

pub const CASES: &[(&str, fn())] = &[
    (
        "database_down_is_503_and_recovers",
        database_down_is_503_and_recovers,
    ),
    (
        "wrong_database_token_is_503_and_never_logged",
        wrong_database_token_is_503_and_never_logged,
    ),
];

fn spin_on(sqld: &Sqld, token: &str, dir: &std::path::Path) -> Running {
    let config = dir.join("runtime-config.toml");
    let target = vigil_db::Target::Remote {
        url: sqld.url.clone(),
        token: token.to_string(),
    };
    std::fs::write(&config, target.spin_runtime_config()).unwrap();
    let signer = vigil_core::token::TokenSigner::generate("t");
    launch(LaunchOptions {
        runtime: Runtime::Spin,
        manifest: workspace_root().join("spin.toml"),
        runtime_config: Some(config),
        env: vigil_e2e::app_variables(&signer),
        workdir: dir.to_path_buf(),
    })
    .expect("spin starts even when its database is unreachable")
}

fn health(app: &Running) -> vigil_e2e::Resp {
    vigil_e2e::client::request(
        "GET",
        &format!("{}/api/threats/health", app.base_url),
        &[],
        None,
    )
    .expect("an answer, not a hang")
}

fn database_down_is_503_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let mut sqld = Sqld::start(dir.path()).unwrap();
    migrate(&sqld.target()).unwrap();
    sqld.stop();
    let app = spin_on(&sqld, &sqld.token, dir.path());
    let doc = health(&app).assert_problem(503, "unavailable");
    assert!(!doc.to_string().contains("panicked"), "{doc}");
    sqld.resume().unwrap();
    let r = health(&app);
    assert_eq!(
        r.status,
        200,
        "recovers once the database is back: {}",
        r.text()
    );
}

fn wrong_database_token_is_503_and_never_logged() {
    let dir = tempfile::tempdir().unwrap();
    let sqld = Sqld::start(dir.path()).unwrap();
    migrate(&sqld.target()).unwrap();
    let foreign = sqld.foreign_token();
    let app = spin_on(&sqld, &foreign, dir.path());
    health(&app).assert_problem(503, "unavailable");
    let mut logs = app.stderr();
    for entry in std::fs::read_dir(dir.path().join("spin-logs"))
        .into_iter()
        .flatten()
        .flatten()
    {
        logs += &std::fs::read_to_string(entry.path()).unwrap_or_default();
    }
    assert!(
        logs.contains("\"database\":\"default\""),
        "a log line names the database: {logs}"
    );
    assert!(!logs.contains(&foreign), "the token never reaches a log");
}
