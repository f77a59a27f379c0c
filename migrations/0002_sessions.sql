-- Sessions: one per login. Refresh tokens rotate within a session (their
-- `family_id` is the session id); access tokens name it in `sid`, so ending a
-- session (logout, reuse detection, disabling the user, a password change)
-- stops its access tokens at once, not 15 minutes later.

CREATE TABLE sessions (
    id             TEXT PRIMARY KEY,
    user_id        TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at     INTEGER NOT NULL,
    last_used_at   INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,             -- absolute lifetime
    revoked_at     INTEGER,
    revoked_reason TEXT,                         -- logout, refresh_reuse, evicted, user_disabled, password_changed, admin
    client_addr    TEXT,
    user_agent     TEXT
);
CREATE INDEX sessions_by_user ON sessions (user_id, revoked_at, created_at);
CREATE INDEX refresh_tokens_by_session ON refresh_tokens (family_id, revoked_at);
