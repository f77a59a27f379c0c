//! Creating users from the command line: how the first admin comes to exist
//! (there are no default accounts or passwords anywhere in Vigil).

use anyhow::{Result, bail};
use vigil_core::audit::AuditEntry;
use vigil_core::{Role, password, time::now_millis};

use crate::target::{Target, query_i64};

#[derive(Debug, Clone)]
pub struct NewUser {
    pub username: String,
    pub display_name: String,
    pub role: Role,
}

fn check_username(username: &str) -> Result<()> {
    vigil_core::user::check_username(username).map_err(|why| anyhow::anyhow!("username {why}"))
}

/// Create a user with a password, audited as done by `system` (the operator at
/// the console of the machine). Returns the new user's id.
pub async fn create_user(target: &Target, user: &NewUser, plain_password: &str) -> Result<String> {
    check_username(&user.username)?;
    if let Err(why) = password::check_policy(plain_password) {
        bail!("password {why}");
    }
    let hash = password::hash(plain_password);
    let conn = target.connect().await?;
    if crate::migrations::current_version(&conn).await? == 0 {
        bail!("the database is not migrated; run `vigil migrate` first");
    }
    let id = vigil_core::id::new_id();
    let now = now_millis();
    let tx = conn
        .transaction_with_behavior(libsql::TransactionBehavior::Immediate)
        .await?;
    let taken = query_i64(
        &tx,
        "SELECT count(*) FROM users WHERE username = ?1",
        [user.username.as_str()],
    )
    .await?;
    if taken != Some(0) {
        bail!("a user named {:?} already exists", user.username);
    }
    tx.execute(
        "INSERT INTO users (id, username, display_name, role, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
        libsql::params![
            id.as_str(),
            user.username.as_str(),
            user.display_name.as_str(),
            user.role.as_str(),
            now
        ],
    )
    .await?;
    tx.execute(
        "INSERT INTO credentials (user_id, password_hash, password_changed_at) VALUES (?1, ?2, ?3)",
        libsql::params![id.as_str(), hash, now],
    )
    .await?;
    let after = serde_json::json!({
        "id": id, "username": user.username, "display_name": user.display_name, "role": user.role.as_str(),
    });
    crate::audit::append(
        &tx,
        &AuditEntry {
            at: now,
            actor: "system".into(),
            action: "user.created".into(),
            subject_kind: Some("user".into()),
            subject_id: Some(id.clone()),
            request_id: None,
            client_addr: None,
            before: None,
            after: Some(after.to_string()),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn creates_an_audited_user_once() {
        let dir = tempfile::tempdir().unwrap();
        let target = Target::Local(dir.path().join("v.db"));
        let admin = NewUser {
            username: "admin".into(),
            display_name: "First Admin".into(),
            role: Role::Admin,
        };
        assert!(
            create_user(&target, &admin, "a long enough passphrase")
                .await
                .unwrap_err()
                .to_string()
                .contains("migrate")
        );
        crate::migrations::migrate(&target, &crate::migrations::embedded())
            .await
            .unwrap();
        assert!(create_user(&target, &admin, "short").await.is_err());
        create_user(&target, &admin, "a long enough passphrase")
            .await
            .unwrap();
        let again = create_user(&target, &admin, "a long enough passphrase")
            .await
            .unwrap_err();
        assert!(again.to_string().contains("already exists"));
        let conn = target.connect().await.unwrap();
        assert_eq!(
            query_i64(&conn, "SELECT count(*) FROM users", ())
                .await
                .unwrap(),
            Some(1)
        );
        assert_eq!(
            query_i64(
                &conn,
                "SELECT count(*) FROM audit_log WHERE action = 'user.created'",
                ()
            )
            .await
            .unwrap(),
            Some(1)
        );
        let mut rows = conn
            .query("SELECT password_hash FROM credentials", ())
            .await
            .unwrap();
        let phc: String = rows.next().await.unwrap().unwrap().get(0).unwrap();
        assert!(password::verify("a long enough passphrase", &phc));
    }
}
