-- Vigil foundation schema: identities, sessions, API keys, the audit chain,
-- the events outbox, rate limits and idempotency keys.
-- Times are integer milliseconds since the Unix epoch, UTC.

CREATE TABLE users (
    id                   TEXT PRIMARY KEY,
    username             TEXT NOT NULL UNIQUE COLLATE NOCASE,
    display_name         TEXT NOT NULL DEFAULT '',
    role                 TEXT NOT NULL CHECK (role IN ('viewer', 'analyst', 'supervisor', 'admin')),
    disabled             INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    must_change_password INTEGER NOT NULL DEFAULT 0 CHECK (must_change_password IN (0, 1)),
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL
);

-- Secrets live apart from the user record so that listing users never reads them.
CREATE TABLE credentials (
    user_id             TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    password_hash       TEXT NOT NULL,            -- argon2id PHC string
    password_changed_at INTEGER NOT NULL,
    totp_secret         TEXT,                     -- set at enrolment
    totp_confirmed_at   INTEGER,                  -- 2FA is on once confirmed
    totp_last_step      INTEGER,                  -- a code is accepted once
    failed_logins       INTEGER NOT NULL DEFAULT 0,
    first_failure_at    INTEGER,
    locked_until        INTEGER,
    lockouts            INTEGER NOT NULL DEFAULT 0 -- lock duration doubles per repeat
);

CREATE TABLE recovery_codes (
    user_id   TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash TEXT NOT NULL,
    used_at   INTEGER,
    PRIMARY KEY (user_id, code_hash)
) WITHOUT ROWID;

-- Opaque refresh tokens, stored as SHA-256; rotation links a family.
CREATE TABLE refresh_tokens (
    id             TEXT PRIMARY KEY,
    family_id      TEXT NOT NULL,
    user_id        TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash     TEXT NOT NULL UNIQUE,
    created_at     INTEGER NOT NULL,
    last_used_at   INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,             -- absolute lifetime of the family
    replaced_by    TEXT,
    revoked_at     INTEGER,
    revoked_reason TEXT,
    client_addr    TEXT,
    user_agent     TEXT
);
CREATE INDEX refresh_tokens_by_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_by_user ON refresh_tokens (user_id, revoked_at);

-- API keys for sensors and services: `<prefix>.<secret>`, the secret stored as SHA-256.
CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('sensor', 'service')),
    sensor_id    TEXT,
    prefix       TEXT NOT NULL UNIQUE,
    secret_hash  TEXT NOT NULL,
    scopes       TEXT NOT NULL CHECK (json_valid(scopes)),
    created_by   TEXT REFERENCES users (id),
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at   INTEGER
);

-- Append-only, hash-chained: hash = SHA-256 over prev_hash and the entry's
-- canonical form (vigil-core `audit::chain_hash`), so any edit breaks the chain.
CREATE TABLE audit_log (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    at           INTEGER NOT NULL,
    actor        TEXT NOT NULL,                  -- user id, `key:<id>`, or `system`
    action       TEXT NOT NULL,                  -- e.g. `user.created`
    subject_kind TEXT,
    subject_id   TEXT,
    request_id   TEXT,
    client_addr  TEXT,
    before       TEXT CHECK (before IS NULL OR json_valid(before)),
    after        TEXT CHECK (after IS NULL OR json_valid(after)),
    prev_hash    TEXT NOT NULL,
    hash         TEXT NOT NULL UNIQUE
);
CREATE INDEX audit_log_by_subject ON audit_log (subject_kind, subject_id);
CREATE TRIGGER audit_log_is_append_only_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
CREATE TRIGGER audit_log_is_append_only_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;

-- The outbox: written in the same transaction as the change it announces;
-- the relay tails it by id and subscribers resume from their last id.
CREATE TABLE events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    type       TEXT NOT NULL,
    payload    TEXT NOT NULL CHECK (json_valid(payload)),
    created_at INTEGER NOT NULL
);

-- Fixed-window counters (login throttles, lockouts): a fresh component
-- instance per request keeps nothing in memory.
CREATE TABLE rate_limits (
    bucket       TEXT NOT NULL,                  -- e.g. `login:addr`
    key          TEXT NOT NULL,
    window_start INTEGER NOT NULL,
    count        INTEGER NOT NULL,
    PRIMARY KEY (bucket, key, window_start)
) WITHOUT ROWID;

-- A retried submission returns the original; the same key with another body is a conflict.
CREATE TABLE idempotency_keys (
    scope           TEXT NOT NULL,               -- e.g. principal + endpoint
    key             TEXT NOT NULL,
    request_hash    TEXT NOT NULL,
    response_status INTEGER NOT NULL,
    response_body   TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    PRIMARY KEY (scope, key)
) WITHOUT ROWID;
CREATE INDEX idempotency_keys_by_expiry ON idempotency_keys (expires_at);
