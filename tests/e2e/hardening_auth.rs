//! Issue 22, the authentication items, each case an attack it prevents:
//! a stranger locking the owner out, a distributed guess, a guess racing
//! the lock (item 2); unauthenticated work and audit growth at register and
//! login (6); a stolen access token used as a password oracle or to plant
//! an authenticator (9); stale one-time passwords and invitations, and a
//! new admin minted without 2FA (10); over-powered, immortal API keys (11);
//! guessable recovery codes and TOTP secrets readable from the database (8);
//! common passwords (14).
//!
//! Requests "from" another client use a connection bound to another
//! loopback address (127.0.0.0/8 is all local), which the runtime reports
//! as the client's address.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};

use serde_json::{Value, json};
use vigil_core::Role;
use vigil_core::login::{ACCOUNT_CEILING, MAX_FAILURES};
use vigil_core::totp::{STEP_SECS, base32_decode, code_at};
use vigil_e2e::{Resp, TestApp, count, execute};

use crate::Case;

pub const CASES: &[Case] = &[
    (
        "hardening_a_stranger_cannot_lock_the_owner_out",
        a_stranger_cannot_lock_the_owner_out,
    ),
    (
        "hardening_a_distributed_guess_slows_the_account_but_not_its_owner",
        a_distributed_guess_slows_the_account_but_not_its_owner,
    ),
    (
        "hardening_an_admin_unlock_lets_a_locked_out_address_back_in",
        an_admin_unlock_lets_a_locked_out_address_back_in,
    ),
    (
        "hardening_a_guess_that_raced_the_lock_is_refused",
        a_guess_that_raced_the_lock_is_refused,
    ),
    (
        "hardening_register_checks_the_invitation_before_anything_else",
        register_checks_the_invitation_before_anything_else,
    ),
    (
        "hardening_register_is_throttled_per_address",
        register_is_throttled_per_address,
    ),
    (
        "hardening_documented_limits_are_enforced",
        documented_limits_are_enforced,
    ),
    (
        "hardening_an_unknown_username_is_audited_only_as_a_hash",
        an_unknown_username_is_audited_only_as_a_hash,
    ),
    (
        "hardening_a_stolen_token_cannot_guess_the_password",
        a_stolen_token_cannot_guess_the_password,
    ),
    (
        "hardening_guessing_at_disable_2fa_locks_like_a_login",
        guessing_at_disable_2fa_locks_like_a_login,
    ),
    (
        "hardening_a_stolen_token_cannot_plant_an_authenticator",
        a_stolen_token_cannot_plant_an_authenticator,
    ),
    (
        "hardening_totp_secrets_are_encrypted_at_rest",
        totp_secrets_are_encrypted_at_rest,
    ),
    (
        "hardening_a_one_time_password_expires",
        a_one_time_password_expires,
    ),
    (
        "hardening_invitations_can_be_listed_and_revoked",
        invitations_can_be_listed_and_revoked,
    ),
    (
        "hardening_an_admin_without_2fa_cannot_invite_an_admin",
        an_admin_without_2fa_cannot_invite_an_admin,
    ),
    (
        "hardening_breached_passwords_are_refused",
        breached_passwords_are_refused,
    ),
    (
        "hardening_api_key_scopes_are_limited_by_kind",
        api_key_scopes_are_limited_by_kind,
    ),
    (
        "hardening_an_expired_api_key_stops_working",
        an_expired_api_key_stops_working,
    ),
    (
        "hardening_api_key_last_use_is_kept_once_a_minute",
        api_key_last_use_is_kept_once_a_minute,
    ),
];

const PASSWORD: &str = "a perfectly fine passphrase";
const WRONG: &str = "wrong wrong wrong wrong";

/// A JSON POST from the loopback address `source`, on a connection of its
/// own; `(status, body)`.
fn post_from(
    app: &TestApp,
    source: Ipv4Addr,
    path: &str,
    body: &Value,
    bearer: Option<&str>,
) -> (u16, Value) {
    let r = request_from(app, source, path, body, bearer);
    let json = if r.body.is_empty() {
        Value::Null
    } else {
        r.json()
    };
    (r.status, json)
}

/// [`post_from`], as the harness's [`Resp`].
fn request_from(
    app: &TestApp,
    source: Ipv4Addr,
    path: &str,
    body: &Value,
    bearer: Option<&str>,
) -> Resp {
    let to: SocketAddr = app
        .base_url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .expect("the suite's apps listen on an address");
    let mut stream = connect_from(source, to);
    let body = body.to_string();
    let auth = bearer.map_or(String::new(), |b| format!("authorization: Bearer {b}\r\n"));
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nhost: {to}\r\ncontent-type: application/json\r\n{auth}content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("request sent");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("response read");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status: {head}"));
    let headers: Vec<(String, String)> = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    Resp {
        status,
        headers,
        body: body.into_bytes(),
    }
}

/// `POST /api/auth/login` from `source`. Each case logs in from addresses
/// of its own, so the suite's shared address keeps its throttle budget.
fn login_at(app: &TestApp, source: Ipv4Addr, username: &str, password: &str) -> Resp {
    request_from(
        app,
        source,
        "/api/auth/login",
        &json!({"username": username, "password": password}),
        None,
    )
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&tail[..n]);
        rest = tail[n..].trim_start_matches("\r\n");
    }
    out
}

/// A TCP connection to `to` whose local address is `source`.
fn connect_from(source: Ipv4Addr, to: SocketAddr) -> TcpStream {
    use std::os::fd::FromRawFd;
    let SocketAddr::V4(to) = to else {
        panic!("the suite's apps listen on IPv4")
    };
    let sockaddr = |ip: Ipv4Addr, port: u16| libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(ip).to_be(),
        },
        sin_zero: [0; 8],
    };
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: a fresh socket, bound and connected with well-formed
    // addresses; ownership passes to the TcpStream (which closes it).
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0, "socket");
        let local = sockaddr(source, 0);
        let remote = sockaddr(*to.ip(), to.port());
        assert_eq!(
            libc::bind(fd, (&raw const local).cast(), len),
            0,
            "bind {source}"
        );
        assert_eq!(
            libc::connect(fd, (&raw const remote).cast(), len),
            0,
            "connect from {source}"
        );
        TcpStream::from_raw_fd(fd)
    }
}

fn login_from(app: &TestApp, source: Ipv4Addr, username: &str, password: &str) -> (u16, Value) {
    post_from(
        app,
        source,
        "/api/auth/login",
        &json!({"username": username, "password": password}),
        None,
    )
}

/// A loopback address of this case's own (each case takes another `case`).
fn addr(case: u8, n: u16) -> Ipv4Addr {
    Ipv4Addr::new(127, 100 + case, (n >> 8) as u8, n as u8)
}

fn access_token(r: &Resp) -> String {
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["access_token"]
        .as_str()
        .expect("tokens")
        .to_string()
}

fn code(secret: &str, step: i64) -> String {
    format!("{:06}", code_at(&base32_decode(secret).unwrap(), step))
}

fn now_step() -> i64 {
    vigil_core::time::now_millis() / 1000 / STEP_SECS
}

fn audit_count(app: &TestApp, action: &str, subject: &str) -> Option<i64> {
    count(
        app,
        &format!(
            "SELECT count(*) FROM audit_log WHERE action = '{action}' AND subject_id = '{subject}'"
        ),
    )
}

/// Item 2. Before: five wrong passwords from anywhere locked the account
/// for everyone, doubling up to a day, so a stranger could keep an admin
/// out for good. Now the stranger locks out only their own address.
fn a_stranger_cannot_lock_the_owner_out(app: &TestApp) {
    let owner = app.create_user(Role::Admin, PASSWORD);
    let stranger = addr(1, 1);
    for _ in 0..MAX_FAILURES + 3 {
        let (status, doc) = login_from(app, stranger, &owner.username, WRONG);
        assert_eq!(status, 401, "{doc}");
    }
    // The stranger's address is locked, even with the right password…
    let (status, doc) = login_from(app, stranger, &owner.username, PASSWORD);
    assert_eq!(status, 401, "{doc}");
    assert_eq!(doc["type"], "urn:vigil:problem:invalid-credentials");
    // …the owner, from their own address, is not.
    access_token(&login_at(app, addr(1, 3), &owner.username, PASSWORD));
    let (status, _) = login_from(app, addr(1, 2), &owner.username, PASSWORD);
    assert_eq!(status, 200, "another address with no failures logs in");
    if app.db.is_some() {
        assert_eq!(audit_count(app, "auth.lockout", &owner.id), Some(1));
        let q = format!(
            "SELECT count(*) FROM audit_log WHERE action = 'auth.lockout' AND subject_id = '{}' AND json_extract(after, '$.client_addr') = '{stranger}'",
            owner.id
        );
        assert_eq!(count(app, &q), Some(1), "the lock names the address");
    }
}

/// Item 2. Many addresses, one wrong guess each: past the ceiling the
/// account is slowed: a new address is locked at its first failure, while
/// the owner's known address keeps its five tries and logs in.
fn a_distributed_guess_slows_the_account_but_not_its_owner(app: &TestApp) {
    let owner = app.create_user(Role::Analyst, PASSWORD);
    let home = addr(2, 1);
    let (status, _) = login_from(app, home, &owner.username, PASSWORD);
    assert_eq!(status, 200, "the owner logs in from home once");
    for n in 0..ACCOUNT_CEILING as u16 {
        let (status, _) = login_from(app, addr(2, 100 + n), &owner.username, WRONG);
        assert_eq!(status, 401);
    }
    // A fresh address gets one guess, then is locked: even the right
    // password fails from there now.
    let fresh = addr(2, 500);
    assert_eq!(login_from(app, fresh, &owner.username, WRONG).0, 401);
    assert_eq!(login_from(app, fresh, &owner.username, PASSWORD).0, 401);
    // The owner at home may mistype and still get in.
    assert_eq!(login_from(app, home, &owner.username, WRONG).0, 401);
    let (status, doc) = login_from(app, home, &owner.username, PASSWORD);
    assert_eq!(status, 200, "{doc}");
    if app.db.is_some() {
        assert_eq!(audit_count(app, "auth.account_slowed", &owner.id), Some(1));
        let q = format!(
            "SELECT count(*) FROM login_failures WHERE user_id = '{}' AND client_addr = '{fresh}' AND locked_until > 0",
            owner.id
        );
        assert_eq!(count(app, &q), Some(1));
    }
}

/// Item 2. An admin's unlock (and only an admin's) clears every lock of a
/// user at once.
fn an_admin_unlock_lets_a_locked_out_address_back_in(app: &TestApp) {
    let user = app.create_user(Role::Viewer, PASSWORD);
    let shared_office = addr(3, 1);
    for _ in 0..MAX_FAILURES {
        login_from(app, shared_office, &user.username, WRONG);
    }
    assert_eq!(
        login_from(app, shared_office, &user.username, PASSWORD).0,
        401
    );
    let path = format!("/api/auth/users/{}/unlock", user.id);
    for role in [Role::Viewer, Role::Analyst, Role::Supervisor] {
        app.post_json_as(role, &path, &json!({}))
            .assert_problem(403, "forbidden");
    }
    app.post_json(&path, &json!({}), None)
        .assert_problem(401, "unauthenticated");
    app.post_json_as(
        Role::Admin,
        "/api/auth/users/no-such-user/unlock",
        &json!({}),
    )
    .assert_problem(404, "not-found");
    let r = app.post_json_as(Role::Admin, &path, &json!({}));
    assert_eq!(r.status, 204, "{}", r.text());
    let (status, doc) = login_from(app, shared_office, &user.username, PASSWORD);
    assert_eq!(status, 200, "{doc}");
    if app.db.is_some() {
        let q = format!(
            "SELECT count(*) FROM audit_log WHERE action = 'user.unlocked' AND subject_id = '{}' AND json_extract(after, '$.addresses_unlocked') = 1",
            user.id
        );
        assert_eq!(count(app, &q), Some(1));
    }
}

/// Item 2. Before: the lock was judged before the password check (argon2)
/// and never again, so guesses in flight when the lock fell were still
/// answered, and a right one got tokens after the lock. Now the state is
/// read again inside the write transaction. The race is made certain: the
/// test takes the write lock as soon as the guess has passed the throttle
/// (while its argon2 runs), locks the address, and lets it through only
/// then.
fn a_guess_that_raced_the_lock_is_refused(app: &TestApp) {
    let Some(db) = &app.db else { return };
    let user = app.create_user(Role::Viewer, PASSWORD);
    for attempt in 1..=5u16 {
        let source = addr(7, attempt);
        let (late, (status, doc)) = std::thread::scope(|scope| {
            let guess = scope.spawn(|| login_from(app, source, &user.username, PASSWORD));
            let late = vigil_e2e::block_on(lock_while_in_flight(db, &user.id, source));
            (late, guess.join().expect("the guess"))
        });
        if late {
            // The guess committed before the test held the lock: try again.
            assert_eq!(status, 200, "{doc}");
            continue;
        }
        assert_eq!(status, 401, "a right password after the lock: {doc}");
        let q = format!(
            "SELECT count(*) FROM audit_log WHERE action = 'auth.login.failed' AND subject_id = '{}' AND client_addr = '{source}' AND json_extract(after, '$.reason') = 'locked'",
            user.id
        );
        assert_eq!(count(app, &q), Some(1));
        return;
    }
    panic!("the test never caught a guess in flight");
}

/// Wait until a login from `source` has passed the throttle, then, in one
/// write transaction, lock `source` out of `user_id` and hold the write lock
/// for a while (the login's own transaction waits behind it). Whether the
/// login had already committed (the test was late).
async fn lock_while_in_flight(db: &vigil_db::Target, user_id: &str, source: Ipv4Addr) -> bool {
    let conn = db.connect().await.expect("database");
    let query = |sql: String| {
        let conn = &conn;
        async move {
            vigil_db::target::query_i64(conn, &sql, ())
                .await
                .expect("query")
                .unwrap_or(0)
        }
    };
    let passed = format!(
        "SELECT coalesce(sum(count), 0) FROM rate_limits WHERE bucket = 'login:addr' AND key = '{source}'"
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while query(passed.clone()).await == 0 {
        assert!(std::time::Instant::now() < deadline, "the login never came");
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    conn.execute("BEGIN IMMEDIATE", ())
        .await
        .expect("write lock");
    let judged = query(format!(
        "SELECT count(*) FROM audit_log WHERE subject_id = '{user_id}' AND client_addr = '{source}'"
    ))
    .await;
    if judged > 0 {
        conn.execute("ROLLBACK", ()).await.expect("rollback");
        return true;
    }
    let until = vigil_core::time::now_millis() + 15 * 60 * 1000;
    conn.execute(
        &format!(
            "INSERT INTO login_failures (user_id, client_addr, failures, locked_until, lockouts)
             VALUES ('{user_id}', '{source}', 0, {until}, 1)
             ON CONFLICT (user_id, client_addr) DO UPDATE SET locked_until = {until}"
        ),
        (),
    )
    .await
    .expect("lock the address");
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    conn.execute("COMMIT", ()).await.expect("commit");
    false
}

/// Item 6. Before: registering hashed the password (argon2, 19 MiB) before
/// looking at the invitation, so anyone could make the app hash for free.
/// Now a bad invitation is refused before the password is looked at: even
/// a common password (which the policy refuses, before hashing) gets the
/// 401, so neither the policy nor argon2 ran.
fn register_checks_the_invitation_before_anything_else(app: &TestApp) {
    let r = app.post_json(
        "/api/auth/register",
        &json!({"invite_token": "forged", "username": "mallory", "password": "password1234"}),
        None,
    );
    r.assert_problem(401, "invalid-invitation");
}

/// Item 6. Register is throttled per address like login.
fn register_is_throttled_per_address(app: &TestApp) {
    let source = addr(4, 1);
    let limit = vigil_core::login::REGISTER_ATTEMPTS_PER_ADDRESS_PER_MINUTE;
    let body = json!({"invite_token": "forged", "username": "mallory", "password": PASSWORD});
    // Two windows' worth at most: a minute boundary may fall inside the loop.
    let statuses: Vec<u16> = (0..2 * limit + 2)
        .map(|_| post_from(app, source, "/api/auth/register", &body, None).0)
        .collect();
    assert!(statuses.contains(&429), "{statuses:?}");
    assert!(
        statuses.iter().all(|s| *s == 401 || *s == 429),
        "{statuses:?}"
    );
    // Another address is not affected.
    assert_eq!(
        post_from(app, addr(4, 2), "/api/auth/register", &body, None).0,
        401
    );
}

/// Item 6. A length or range in a request's schema is a rule: a 1 MiB
/// username no longer reaches the database (or the audit log).
fn documented_limits_are_enforced(app: &TestApp) {
    let huge = "x".repeat(512 * 1024);
    let doc = app.login(&huge, PASSWORD).assert_problem(422, "validation");
    assert_eq!(doc["errors"][0]["field"], "username", "{doc}");
    assert_eq!(
        count(
            app,
            "SELECT count(*) FROM audit_log WHERE length(after) > 100000"
        ),
        app.db.as_ref().map(|_| 0),
        "nothing that size reached the audit log"
    );
    let long_password = "p".repeat(4097);
    let doc = app
        .login("someone", &long_password)
        .assert_problem(422, "validation");
    assert_eq!(doc["errors"][0]["field"], "password");
    let doc = app
        .post_json(
            "/api/auth/register",
            &json!({"invite_token": "t".repeat(129), "username": "abc", "password": PASSWORD}),
            None,
        )
        .assert_problem(422, "validation");
    assert_eq!(doc["errors"][0]["field"], "invite_token");
    let doc = app
        .post_json(
            "/api/auth/refresh",
            &json!({"refresh_token": "r".repeat(129)}),
            None,
        )
        .assert_problem(422, "validation");
    assert_eq!(doc["errors"][0]["field"], "refresh_token");
    let doc = app
        .post_json_as(
            Role::Admin,
            "/api/auth/api-keys",
            &json!({"name": "k", "kind": "service", "scopes": ["threats:read"], "expires_in_days": 0}),
        )
        .assert_problem(422, "validation");
    assert_eq!(doc["errors"][0]["field"], "expires_in_days");
    let doc = app
        .post_json_as(
            Role::Admin,
            "/api/auth/invitations",
            &json!({"role": "viewer", "expires_in_hours": 721}),
        )
        .assert_problem(422, "validation");
    assert_eq!(doc["errors"][0]["field"], "expires_in_hours");
}

/// Item 6. People type passwords into the username field: an unknown name
/// is kept only as a hash, never verbatim in the append-only audit log.
fn an_unknown_username_is_audited_only_as_a_hash(app: &TestApp) {
    let typed = format!("my secret passphrase {}", &vigil_core::id::new_id()[..8]);
    login_at(app, addr(9, 1), &typed, PASSWORD).assert_problem(401, "invalid-credentials");
    app.needs_own_app();
    let q = format!("SELECT count(*) FROM audit_log WHERE after LIKE '%{typed}%'");
    assert_eq!(count(app, &q), Some(0), "never verbatim");
    let hash = vigil_core::login::secret_hash(&typed.to_lowercase());
    let q = format!(
        "SELECT count(*) FROM audit_log WHERE action = 'auth.login.failed' AND json_extract(after, '$.username_sha256') = '{hash}'"
    );
    assert_eq!(count(app, &q), Some(1), "its hash is there");
}

/// Item 9. Before: `POST /api/auth/password` verified the current password
/// any number of times: a stolen access token was an unlimited password
/// oracle. Now failures count towards the lockout of the address.
fn a_stolen_token_cannot_guess_the_password(app: &TestApp) {
    let user = app.create_user(Role::Analyst, PASSWORD);
    let thief = addr(5, 1);
    let (status, tokens) = login_from(app, thief, &user.username, PASSWORD);
    assert_eq!(status, 200);
    let stolen = tokens["access_token"].as_str().unwrap().to_string();
    let change = |current: &str| {
        post_from(
            app,
            thief,
            "/api/auth/password",
            &json!({"current_password": current, "new_password": "the thief's passphrase"}),
            Some(&stolen),
        )
    };
    for _ in 0..MAX_FAILURES {
        let (status, doc) = change(WRONG);
        assert_eq!(status, 422, "{doc}");
        assert_eq!(doc["errors"][0]["field"], "current_password");
    }
    // Locked: even the right guess is refused now, and logins from there too.
    let (status, doc) = change(PASSWORD);
    assert_eq!(status, 429, "{doc}");
    assert_eq!(login_from(app, thief, &user.username, PASSWORD).0, 401);
    // The owner elsewhere is unaffected.
    access_token(&login_at(app, addr(5, 2), &user.username, PASSWORD));
}

/// Enrol and confirm 2FA for `token`; the secret and the step used.
fn enrol(app: &TestApp, token: &str) -> (String, i64) {
    let r = app.post_json(
        "/api/auth/mfa/enroll",
        &json!({"password": PASSWORD}),
        Some(token),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let secret = r.json()["secret"].as_str().unwrap().to_string();
    let step = now_step();
    let r = app.post_json(
        "/api/auth/mfa/confirm",
        &json!({"code": code(&secret, step)}),
        Some(token),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    (secret, step)
}

/// Item 9. Guessing the password at the 2FA switch counts like a login.
fn guessing_at_disable_2fa_locks_like_a_login(app: &TestApp) {
    let user = app.create_user(Role::Viewer, PASSWORD);
    let token = access_token(&login_at(app, addr(6, 2), &user.username, PASSWORD));
    let (secret, step) = enrol(app, &token);
    let thief = addr(6, 1);
    for _ in 0..MAX_FAILURES {
        let (status, doc) = post_from(
            app,
            thief,
            "/api/auth/mfa/disable",
            &json!({"password": WRONG, "code": code(&secret, step + 1)}),
            Some(&token),
        );
        assert_eq!(status, 422, "{doc}");
    }
    let (status, doc) = post_from(
        app,
        thief,
        "/api/auth/mfa/disable",
        &json!({"password": PASSWORD, "code": code(&secret, step + 1)}),
        Some(&token),
    );
    assert_eq!(status, 429, "{doc}");
    if app.db.is_some() {
        assert_eq!(audit_count(app, "auth.lockout", &user.id), Some(1));
        let q = format!(
            "SELECT count(*) FROM credentials WHERE user_id = '{}' AND totp_confirmed_at IS NOT NULL",
            user.id
        );
        assert_eq!(count(app, &q), Some(1), "2FA is still on");
    }
}

/// Item 9. Before: any access token could enrol (or re-enrol) an
/// authenticator, so a thief could plant their own second factor. Now it
/// takes the password, and replacing one takes a current code too.
fn a_stolen_token_cannot_plant_an_authenticator(app: &TestApp) {
    let user = app.create_user(Role::Analyst, PASSWORD);
    let token = access_token(&login_at(app, addr(10, 1), &user.username, PASSWORD));
    app.post_json("/api/auth/mfa/enroll", &json!({}), Some(&token))
        .assert_problem(422, "validation");
    let doc = app
        .post_json(
            "/api/auth/mfa/enroll",
            &json!({"password": WRONG}),
            Some(&token),
        )
        .assert_problem(422, "validation");
    assert_eq!(doc["errors"][0]["field"], "password");
    let (old_secret, step) = enrol(app, &token);
    let doc = app
        .post_json(
            "/api/auth/mfa/enroll",
            &json!({"password": PASSWORD}),
            Some(&token),
        )
        .assert_problem(422, "validation");
    assert_eq!(doc["errors"][0]["field"], "code");
    // The owner replaces it: password and a current code of the old one.
    let r = app.post_json(
        "/api/auth/mfa/enroll",
        &json!({"password": PASSWORD, "code": code(&old_secret, step + 1)}),
        Some(&token),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let new_secret = r.json()["secret"].as_str().unwrap().to_string();
    let r = app.post_json(
        "/api/auth/mfa/confirm",
        &json!({"code": code(&new_secret, now_step())}),
        Some(&token),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    // Recovery codes: at least 112 bits each.
    for c in r.json()["recovery_codes"].as_array().unwrap() {
        let raw = base32_decode(&c.as_str().unwrap().replace('-', "")).unwrap();
        assert!(raw.len() * 8 >= 112, "{c}");
    }
    // Only the new authenticator logs in now.
    let challenge = |app: &TestApp| {
        let r = login_at(app, addr(10, 1), &user.username, PASSWORD);
        r.json()["mfa_token"].as_str().unwrap().to_string()
    };
    let old = app.post_json(
        "/api/auth/login/mfa",
        &json!({"mfa_token": challenge(app), "code": code(&old_secret, now_step() + 1)}),
        None,
    );
    old.assert_problem(401, "invalid-credentials");
    let new = app.post_json(
        "/api/auth/login/mfa",
        &json!({"mfa_token": challenge(app), "code": code(&new_secret, now_step() + 1)}),
        None,
    );
    access_token(&new);
    if app.db.is_some() {
        // Item 8: the secret is encrypted at rest, never stored as issued.
        let q = format!(
            "SELECT count(*) FROM credentials WHERE user_id = '{}' AND totp_secret LIKE 'v1.%' AND instr(totp_secret, '{new_secret}') = 0",
            user.id
        );
        assert_eq!(count(app, &q), Some(1));
        assert_eq!(audit_count(app, "auth.mfa.replaced", &user.id), Some(1));
    }
}

/// Item 8. Before: TOTP secrets were stored as issued, so a copy of the
/// database (a backup, a replica) gave every second factor away. Now they
/// are sealed under a key only `auth` holds; a secret stored before that
/// still works and is sealed the first time it accepts a code.
fn totp_secrets_are_encrypted_at_rest(app: &TestApp) {
    let user = app.create_user(Role::Viewer, PASSWORD);
    let token = access_token(&login_at(app, addr(11, 1), &user.username, PASSWORD));
    let (secret, step) = enrol(app, &token);
    app.needs_own_app();
    let sealed = format!(
        "SELECT count(*) FROM credentials WHERE user_id = '{}' AND totp_secret LIKE 'v1.%' AND instr(totp_secret, '{secret}') = 0",
        user.id
    );
    assert_eq!(count(app, &sealed), Some(1), "sealed, not as issued");
    // A row from before the encryption: the secret in plaintext.
    execute(
        app,
        &format!(
            "UPDATE credentials SET totp_secret = '{secret}' WHERE user_id = '{}'",
            user.id
        ),
    );
    let challenge = login_at(app, addr(11, 1), &user.username, PASSWORD).json()["mfa_token"]
        .as_str()
        .unwrap()
        .to_string();
    access_token(&app.post_json(
        "/api/auth/login/mfa",
        &json!({"mfa_token": challenge, "code": code(&secret, step + 1)}),
        None,
    ));
    assert_eq!(count(app, &sealed), Some(1), "sealed at its first use");
    // A sealed secret moved onto another user's row opens for nobody.
    let other = app.create_user(Role::Viewer, PASSWORD);
    execute(
        app,
        &format!(
            "UPDATE credentials SET totp_secret = (SELECT totp_secret FROM credentials WHERE user_id = '{}'),
                    totp_confirmed_at = 1 WHERE user_id = '{}'",
            user.id, other.id
        ),
    );
    let challenge = login_at(app, addr(11, 1), &other.username, PASSWORD).json()["mfa_token"]
        .as_str()
        .unwrap()
        .to_string();
    app.post_json(
        "/api/auth/login/mfa",
        &json!({"mfa_token": challenge, "code": code(&secret, now_step() + 1)}),
        None,
    )
    .assert_problem(401, "invalid-credentials");
}

/// Item 10. Before: a one-time password from an admin reset worked forever.
/// Now it expires (`password_reset_ttl_hours`, 24 by default); the reset
/// also lifts the user's lockouts.
fn a_one_time_password_expires(app: &TestApp) {
    let user = app.create_user(Role::Analyst, PASSWORD);
    for _ in 0..MAX_FAILURES {
        login_at(app, addr(12, 1), &user.username, WRONG);
    }
    let day = 24 * 3600 * 1000;
    let before = vigil_core::time::rfc3339(vigil_core::time::now_millis() + day);
    let r = app.post_json_as(
        Role::Admin,
        &format!("/api/auth/users/{}/reset-password", user.id),
        &json!({}),
    );
    let after = vigil_core::time::rfc3339(vigil_core::time::now_millis() + day);
    assert_eq!(r.status, 200, "{}", r.text());
    let one_time = r.json()["one_time_password"].as_str().unwrap().to_string();
    let expires = r.json()["expires_at"].as_str().unwrap().to_string();
    assert!(
        before <= expires && expires <= after,
        "{before} <= {expires} <= {after}"
    );
    app.needs_own_app();
    // A day later (moved back in the database rather than waited for):
    execute(
        app,
        &format!(
            "UPDATE credentials SET password_expires_at = password_expires_at - 24 * 3600 * 1000 WHERE user_id = '{}'",
            user.id
        ),
    );
    login_at(app, addr(12, 1), &user.username, &one_time)
        .assert_problem(401, "invalid-credentials");
    let q = format!(
        "SELECT count(*) FROM audit_log WHERE action = 'auth.login.failed' AND subject_id = '{}' AND json_extract(after, '$.reason') = 'one_time_password_expired'",
        user.id
    );
    assert_eq!(count(app, &q), Some(1));
    // A fresh reset works, although this address had locked itself out.
    let r = app.post_json_as(
        Role::Admin,
        &format!("/api/auth/users/{}/reset-password", user.id),
        &json!({}),
    );
    let one_time = r.json()["one_time_password"].as_str().unwrap().to_string();
    let restricted = access_token(&login_at(app, addr(12, 1), &user.username, &one_time));
    let r = app.post_json(
        "/api/auth/password",
        &json!({"current_password": one_time, "new_password": "my own new passphrase"}),
        Some(&restricted),
    );
    assert_eq!(r.status, 204, "{}", r.text());
    let q = format!(
        "SELECT count(*) FROM credentials WHERE user_id = '{}' AND password_expires_at IS NULL",
        user.id
    );
    assert_eq!(count(app, &q), Some(1), "a chosen password does not expire");
}

/// Item 10. A leaked invitation can be revoked before anyone uses it.
fn invitations_can_be_listed_and_revoked(app: &TestApp) {
    let r = app.post_json_as(
        Role::Admin,
        "/api/auth/invitations",
        &json!({"role": "viewer"}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_string();
    let token = r.json()["invite_token"].as_str().unwrap().to_string();
    let listed = app.get_as(Role::Admin, "/api/auth/invitations");
    assert_eq!(listed.status, 200, "{}", listed.text());
    assert!(!listed.text().contains(&token), "never the token");
    let state = |app: &TestApp| {
        app.get_as(Role::Admin, "/api/auth/invitations").json()["invitations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["id"] == id.as_str())
            .map(|i| i["state"].clone())
    };
    assert_eq!(state(app), Some(json!("unused")));
    for role in [Role::Viewer, Role::Analyst, Role::Supervisor] {
        app.get_as(role, "/api/auth/invitations")
            .assert_problem(403, "forbidden");
        app.send_as(
            role,
            "DELETE",
            &format!("/api/auth/invitations/{id}"),
            &[],
            None,
        )
        .assert_problem(403, "forbidden");
    }
    let r = app.send_as(
        Role::Admin,
        "DELETE",
        &format!("/api/auth/invitations/{id}"),
        &[],
        None,
    );
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(state(app), Some(json!("revoked")));
    app.post_json(
        "/api/auth/register",
        &json!({"invite_token": token, "username": vigil_e2e::unique("revoked"), "password": PASSWORD}),
        None,
    )
    .assert_problem(401, "invalid-invitation");
    app.send_as(
        Role::Admin,
        "DELETE",
        "/api/auth/invitations/no-such-id",
        &[],
        None,
    )
    .assert_problem(404, "not-found");
    // A used one cannot be revoked: the account exists.
    let r = app.post_json_as(
        Role::Admin,
        "/api/auth/invitations",
        &json!({"role": "viewer"}),
    );
    let used_id = r.json()["id"].as_str().unwrap().to_string();
    let token = r.json()["invite_token"].as_str().unwrap().to_string();
    let name = format!("inv-{}", &vigil_core::id::new_id()[..8]);
    let r = app.post_json(
        "/api/auth/register",
        &json!({"invite_token": token, "username": name, "password": PASSWORD}),
        None,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    app.send_as(
        Role::Admin,
        "DELETE",
        &format!("/api/auth/invitations/{used_id}"),
        &[],
        None,
    )
    .assert_problem(409, "conflict");
}

/// Item 10. With a 2FA policy in force (the suite requires it of
/// supervisors), a new admin may only be invited by an admin who has 2FA:
/// a stolen password of an admin without it cannot mint admins.
fn an_admin_without_2fa_cannot_invite_an_admin(app: &TestApp) {
    app.post_json_as(
        Role::Admin,
        "/api/auth/invitations",
        &json!({"role": "admin"}),
    )
    .assert_problem(403, "mfa-required");
    let r = app.post_json_as(
        Role::Admin,
        "/api/auth/invitations",
        &json!({"role": "analyst"}),
    );
    assert_eq!(r.status, 201, "other roles are fine: {}", r.text());
    // An admin with 2FA may.
    let admin = app.create_user(Role::Admin, PASSWORD);
    let token = access_token(&login_at(app, addr(13, 1), &admin.username, PASSWORD));
    let (secret, step) = enrol(app, &token);
    let challenge = login_at(app, addr(13, 1), &admin.username, PASSWORD).json()["mfa_token"]
        .as_str()
        .unwrap()
        .to_string();
    let strong = access_token(&app.post_json(
        "/api/auth/login/mfa",
        &json!({"mfa_token": challenge, "code": code(&secret, step + 1)}),
        None,
    ));
    let r = app.post_json(
        "/api/auth/invitations",
        &json!({"role": "admin"}),
        Some(&strong),
    );
    assert_eq!(r.status, 201, "{}", r.text());
}

/// Item 14. Before: the "common passwords" were 373 generated strings, so
/// real breached passwords that meet the length rule passed. Now the
/// 30,000 of a real breach corpus are refused, at every place a password
/// is chosen.
fn breached_passwords_are_refused(app: &TestApp) {
    for breached in [
        "1q2w3e4r5t6y",
        "qazwsxedcrfv",
        "LeaveMeAlone",
        "123456qwerty",
    ] {
        let r = app.post_json_as(
            Role::Admin,
            "/api/auth/users",
            &json!({"username": vigil_e2e::unique("breach"), "role": "viewer", "password": breached}),
        );
        let doc = r.assert_problem(422, "validation");
        assert_eq!(doc["errors"][0]["field"], "password", "{breached}: {doc}");
    }
    let user = app.create_user(Role::Viewer, PASSWORD);
    let token = access_token(&login_at(app, addr(14, 1), &user.username, PASSWORD));
    let (status, doc) = post_from(
        app,
        addr(14, 1),
        "/api/auth/password",
        &json!({"current_password": PASSWORD, "new_password": "zxcasdqwe123"}),
        Some(&token),
    );
    assert_eq!(status, 422, "{doc}");
    assert_eq!(doc["errors"][0]["field"], "new_password");
}

fn create_key(app: &TestApp, body: Value) -> Resp {
    app.post_json_as(Role::Admin, "/api/auth/api-keys", &body)
}

/// Item 11. Before: a sensor key could be given any scope, so a key left on
/// a honeypot in the field could read every threat or manage users. Now a
/// sensor key only ingests (events and heartbeats), and no key manages
/// identities.
fn api_key_scopes_are_limited_by_kind(app: &TestApp) {
    let doc = create_key(
        app,
        json!({"name": "hp", "kind": "sensor", "sensor_id": "hp-9", "scopes": ["sensors:ingest", "threats:read"]}),
    )
    .assert_problem(422, "validation");
    assert_eq!(doc["errors"][0]["field"], "scopes[1]", "{doc}");
    for scope in ["users:manage", "api_keys:manage"] {
        let doc = create_key(
            app,
            json!({"name": "svc", "kind": "service", "scopes": [scope]}),
        )
        .assert_problem(422, "validation");
        assert_eq!(doc["errors"][0]["field"], "scopes[0]", "{doc}");
    }
    let r = create_key(
        app,
        json!({"name": "hp", "kind": "sensor", "sensor_id": "hp-9", "scopes": ["sensors:ingest"]}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    app.needs_own_app();
    // A sensor key stored before the rule, with a read scope: it keeps only
    // what a sensor key may hold.
    let (presented, prefix, hash) = vigil_core::api_key::generate();
    let id = vigil_core::id::new_id();
    execute(
        app,
        &format!(
            "INSERT INTO api_keys (id, name, kind, sensor_id, prefix, secret_hash, scopes, created_at)
             VALUES ('{id}', 'old-hp', 'sensor', 'hp-old', '{prefix}', '{hash}', '[\"sensors:ingest\",\"threats:read\"]', 0)"
        ),
    );
    app.with_bearer("GET", "/api/threats?limit=1", &presented)
        .assert_problem(403, "forbidden");
    let me = app.with_bearer("GET", "/api/auth/me", &presented);
    assert_eq!(
        me.json()["permissions"],
        json!(["sensors:ingest"]),
        "{}",
        me.text()
    );
}

/// Item 11. A key can be made to expire, and stops working then.
fn an_expired_api_key_stops_working(app: &TestApp) {
    let r = create_key(
        app,
        json!({"name": "contractor", "kind": "service", "scopes": ["threats:read"], "expires_in_days": 1}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let key = r.json()["secret"].as_str().unwrap().to_string();
    let id = r.json()["id"].as_str().unwrap().to_string();
    assert!(r.json()["expires_at"].is_string(), "{}", r.text());
    assert_eq!(
        app.with_bearer("GET", "/api/threats?limit=1", &key).status,
        200
    );
    app.needs_own_app();
    execute(
        app,
        &format!("UPDATE api_keys SET expires_at = expires_at - 2 * 86400000 WHERE id = '{id}'"),
    );
    app.with_bearer("GET", "/api/threats?limit=1", &key)
        .assert_problem(401, "unauthenticated");
}

/// Item 11. When a key was last used is kept (an unused key is a key to
/// revoke), but written at most once a minute so it costs the hot path
/// almost nothing.
fn api_key_last_use_is_kept_once_a_minute(app: &TestApp) {
    let r = create_key(
        app,
        json!({"name": "scraper", "kind": "service", "scopes": ["threats:read"]}),
    );
    let key = r.json()["secret"].as_str().unwrap().to_string();
    let id = r.json()["id"].as_str().unwrap().to_string();
    let last_used = |app: &TestApp| {
        app.get_as(Role::Admin, "/api/auth/api-keys").json()["api_keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["id"] == id.as_str())
            .map(|k| k["last_used_at"].clone())
            .unwrap()
    };
    assert_eq!(last_used(app), Value::Null);
    assert_eq!(
        app.with_bearer("GET", "/api/threats?limit=1", &key).status,
        200
    );
    let first = last_used(app);
    assert!(first.is_string(), "{first}");
    assert_eq!(
        app.with_bearer("GET", "/api/threats?limit=1", &key).status,
        200
    );
    assert_eq!(last_used(app), first, "not again within the minute");
    app.needs_own_app();
    execute(
        app,
        &format!("UPDATE api_keys SET last_used_at = last_used_at - 120000 WHERE id = '{id}'"),
    );
    let moved = last_used(app);
    assert_eq!(
        app.with_bearer("GET", "/api/threats?limit=1", &key).status,
        200
    );
    assert!(
        last_used(app).as_str() > moved.as_str(),
        "written again after a minute"
    );
}
