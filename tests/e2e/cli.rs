//! The `vigil` command against a real database file: migrations apply once
//! and refuse a changed history; users are created from stdin, never with a
//! default password.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use vigil_e2e::sqld::Sqld;
use vigil_e2e::{block_on, workspace_root};

/// Cases that need a libSQL server (`sqld`).
pub const SQLD_CASES: &[(&str, fn())] = &[
    (
        "remote_migrate_applies_once_and_refuses_changes",
        remote_migrate_applies_once_and_refuses_changes,
    ),
    (
        "remote_wrong_token_is_a_clear_error_and_changes_nothing",
        remote_wrong_token_is_a_clear_error_and_changes_nothing,
    ),
];

pub const CASES: &[(&str, fn())] = &[
    (
        "audit_verify_detects_an_edited_entry",
        audit_verify_detects_an_edited_entry,
    ),
    (
        "migrate_applies_once_then_is_up_to_date",
        migrate_applies_once_then_is_up_to_date,
    ),
    (
        "migrate_refuses_a_changed_migration_and_changes_nothing",
        migrate_refuses_a_changed_migration_and_changes_nothing,
    ),
    (
        "create_user_reads_the_password_from_stdin",
        create_user_reads_the_password_from_stdin,
    ),
];

/// `vigil admin create-user` for an admin named `admin`, password on stdin.
const CREATE_ADMIN: &[&str] = &[
    "admin",
    "create-user",
    "--username",
    "admin",
    "--role",
    "admin",
    "--password-stdin",
];

fn vigil_bin() -> PathBuf {
    let dir = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    let bin = dir.join("vigil");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo xtask test` (it builds the binaries)",
        bin.display()
    );
    bin
}

fn vigil(db: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut db_args = vec!["--database".to_string(), db.display().to_string()];
    db_args.extend(args.iter().map(|a| a.to_string()));
    vigil_with(&db_args, stdin)
}

fn vigil_with(args: &[String], stdin: Option<&str>) -> Output {
    let mut child = Command::new(vigil_bin())
        .args(args)
        .current_dir(workspace_root())
        .env_remove("VIGIL_DATABASE_URL")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run vigil");
    let mut pipe = child.stdin.take().unwrap();
    if let Some(input) = stdin {
        pipe.write_all(input.as_bytes()).unwrap();
    }
    drop(pipe);
    child.wait_with_output().unwrap()
}

fn scalar(db: &Path, sql: &str) -> Option<i64> {
    let target = vigil_db::Target::Local(db.to_path_buf());
    block_on(async {
        vigil_db::target::query_i64(&target.connect().await.unwrap(), sql, ())
            .await
            .unwrap()
    })
}

fn migrate_applies_once_then_is_up_to_date() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("v.db");
    let first = vigil(&db, &["migrate"], None);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(String::from_utf8_lossy(&first.stdout).contains("applied [1"));
    let second = vigil(&db, &["migrate"], None);
    assert!(second.status.success());
    assert!(String::from_utf8_lossy(&second.stdout).contains("up to date"));
    assert_eq!(
        scalar(&db, "SELECT count(*) FROM schema_migrations"),
        Some(vigil_db::migrations::latest_version())
    );
}

fn migrate_refuses_a_changed_migration_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("v.db");
    assert!(vigil(&db, &["migrate"], None).status.success());
    // Simulate a migration file edited after it was applied.
    block_on(async {
        let conn = vigil_db::Target::Local(db.clone()).connect().await.unwrap();
        conn.execute(
            "UPDATE schema_migrations SET checksum = 'deadbeef' WHERE version = 1",
            (),
        )
        .await
        .unwrap();
    });
    let schema = "SELECT count(*) FROM sqlite_master";
    let before = scalar(&db, schema);
    let out = vigil(&db, &["migrate"], None);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("was changed after it was applied"),
        "{stderr}"
    );
    assert_eq!(
        scalar(
            &db,
            "SELECT count(*) FROM schema_migrations WHERE checksum = 'deadbeef'"
        ),
        Some(1)
    );
    assert_eq!(scalar(&db, schema), before);
}

fn create_user_reads_the_password_from_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("v.db");
    let unmigrated = vigil(&db, CREATE_ADMIN, Some("a long enough passphrase\n"));
    assert!(!unmigrated.status.success());
    assert!(vigil(&db, &["migrate"], None).status.success());
    let weak = vigil(&db, CREATE_ADMIN, Some("password1234\n"));
    assert!(!weak.status.success());
    assert!(
        String::from_utf8_lossy(&weak.stderr).contains("common"),
        "{}",
        String::from_utf8_lossy(&weak.stderr)
    );
    let no_password = vigil(&db, CREATE_ADMIN, Some(""));
    assert!(!no_password.status.success());
    assert_eq!(scalar(&db, "SELECT count(*) FROM users"), Some(0));

    let ok = vigil(&db, CREATE_ADMIN, Some("a long enough passphrase\n"));
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(
        !String::from_utf8_lossy(&ok.stdout).contains("passphrase"),
        "the password is never echoed"
    );
    assert_eq!(
        scalar(&db, "SELECT count(*) FROM users WHERE role = 'admin'"),
        Some(1)
    );
    assert_eq!(
        scalar(
            &db,
            "SELECT count(*) FROM audit_log WHERE action = 'user.created'"
        ),
        Some(1)
    );
}

fn remote(sqld: &Sqld, token: &str, args: &[&str], stdin: Option<&str>) -> Output {
    let mut all = vec![
        "--database-url".to_string(),
        sqld.url.clone(),
        "--auth-token".to_string(),
        token.to_string(),
    ];
    all.extend(args.iter().map(|a| a.to_string()));
    vigil_with(&all, stdin)
}

fn remote_scalar(sqld: &Sqld, sql: &str) -> Option<i64> {
    block_on(async {
        vigil_db::target::query_i64(&sqld.target().connect().await.unwrap(), sql, ())
            .await
            .unwrap()
    })
}

fn remote_migrate_applies_once_and_refuses_changes() {
    let dir = tempfile::tempdir().unwrap();
    let sqld = Sqld::start(dir.path()).unwrap();
    let first = remote(&sqld, &sqld.token, &["migrate"], None);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(String::from_utf8_lossy(&first.stdout).contains("applied [1"));
    assert!(
        !String::from_utf8_lossy(&first.stdout).contains(&sqld.token),
        "the token is never printed"
    );
    let second = remote(&sqld, &sqld.token, &["migrate"], None);
    assert!(String::from_utf8_lossy(&second.stdout).contains("up to date"));

    let created = remote(
        &sqld,
        &sqld.token,
        CREATE_ADMIN,
        Some("a long enough passphrase\n"),
    );
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    assert_eq!(
        remote_scalar(&sqld, "SELECT count(*) FROM users WHERE role = 'admin'"),
        Some(1)
    );
    assert_eq!(
        remote_scalar(&sqld, "SELECT count(*) FROM audit_log"),
        Some(1)
    );

    block_on(async {
        let conn = sqld.target().connect().await.unwrap();
        conn.execute(
            "UPDATE schema_migrations SET checksum = 'deadbeef' WHERE version = 1",
            (),
        )
        .await
        .unwrap();
    });
    let refused = remote(&sqld, &sqld.token, &["migrate"], None);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("was changed after it was applied"));
}

fn remote_wrong_token_is_a_clear_error_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let sqld = Sqld::start(dir.path()).unwrap();
    let foreign = sqld.foreign_token();
    let out = remote(&sqld, &foreign, &["migrate"], None);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&sqld.url), "names the database: {stderr}");
    assert!(
        stderr.contains("401")
            || stderr.to_lowercase().contains("unauthorized")
            || stderr.contains("JWT"),
        "{stderr}"
    );
    assert!(!stderr.contains(&foreign), "never prints the token");
    let tables = remote_scalar(
        &sqld,
        "SELECT count(*) FROM sqlite_master WHERE type = 'table'",
    );
    assert_eq!(tables, Some(0), "nothing was created");
}

fn audit_verify_detects_an_edited_entry() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("v.db");
    assert!(vigil(&db, &["migrate"], None).status.success());
    for name in ["first", "second", "third"] {
        let args = [
            "admin",
            "create-user",
            "--username",
            name,
            "--role",
            "viewer",
            "--password-stdin",
        ];
        assert!(
            vigil(&db, &args, Some("a long enough passphrase\n"))
                .status
                .success()
        );
    }
    let ok = vigil(&db, &["audit", "verify"], None);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("intact (3 entries)"));

    // The log refuses edits; someone with the file can still drop the guard.
    block_on(async {
        let conn = vigil_db::Target::Local(db.clone()).connect().await.unwrap();
        let refused = conn
            .execute("UPDATE audit_log SET actor = 'mallory' WHERE id = 2", ())
            .await;
        assert!(refused.is_err(), "the append-only trigger refuses edits");
        conn.execute_batch(
            "DROP TRIGGER audit_log_is_append_only_update;
             UPDATE audit_log SET actor = 'mallory' WHERE id = 2;",
        )
        .await
        .unwrap();
    });
    let broken = vigil(&db, &["audit", "verify"], None);
    assert!(!broken.status.success());
    let stderr = String::from_utf8_lossy(&broken.stderr);
    assert!(stderr.contains("broken at entry 2"), "{stderr}");
}
