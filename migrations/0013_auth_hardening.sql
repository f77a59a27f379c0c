-- Auth hardening (issue 22).

-- The lockout counts failures per (account, client address), so a stranger
-- locks out only their own address, never the owner (vigil_core::login).
-- `last_success_at` makes an address known to the account: while a
-- distributed guess has the account slowed, only known addresses keep five
-- tries. The account's window across addresses stays in
-- `credentials.failed_logins` / `first_failure_at`; the account-wide lock
-- columns go.
CREATE TABLE login_failures (
    user_id          TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_addr      TEXT NOT NULL,
    failures         INTEGER NOT NULL DEFAULT 0,
    first_failure_at INTEGER,
    locked_until     INTEGER,
    lockouts         INTEGER NOT NULL DEFAULT 0,
    last_success_at  INTEGER,
    PRIMARY KEY (user_id, client_addr)
) WITHOUT ROWID;
ALTER TABLE credentials DROP COLUMN locked_until;
ALTER TABLE credentials DROP COLUMN lockouts;

-- An admin reset's one-time password stops working at this time (NULL: a
-- password the user chose, which does not expire).
ALTER TABLE credentials ADD COLUMN password_expires_at INTEGER;

-- Replacing an authenticator: the new secret waits here until a code from it
-- confirms it; the one in use stays until then. Both are stored encrypted
-- (`v1.` + XChaCha20-Poly1305 under the `totp_encryption_key` variable).
ALTER TABLE credentials ADD COLUMN totp_pending_secret TEXT;

-- Invitations can be revoked before they are used.
ALTER TABLE invitations ADD COLUMN revoked_at INTEGER;
ALTER TABLE invitations ADD COLUMN revoked_by TEXT REFERENCES users (id);

-- API keys may expire.
ALTER TABLE api_keys ADD COLUMN expires_at INTEGER;
