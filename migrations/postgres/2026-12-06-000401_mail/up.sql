-- Mail (docs/mail.md). Accounts that existed before count as unverified: none proved its address.
ALTER TABLE users ADD COLUMN email_verified BOOLEAN NOT NULL DEFAULT FALSE;

-- Tokens sent in mail links: only their SHA-256 digest is kept. `kind` is reset, verify or
-- change; `email` is the address a change moves to (or the one a verification proves).
-- A token is spent by one conditional UPDATE setting `used_at`.
CREATE TABLE mail_tokens (
    token_hash TEXT PRIMARY KEY NOT NULL,
    user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    email TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);
CREATE INDEX mail_tokens_user_idx ON mail_tokens (user_id, kind);
CREATE INDEX mail_tokens_expires_idx ON mail_tokens (expires_at);

-- Messages waiting for the SMTP server, written in the transaction that causes them and deleted
-- once delivered or given up. `link` is sealed under the key-encryption key when there is one.
-- A sender claims a row by setting `lease_until`; `next_attempt_at` grows with each failure.
CREATE TABLE outbox (
    id UUID PRIMARY KEY NOT NULL,
    message_id TEXT NOT NULL,
    recipient TEXT NOT NULL,
    kind TEXT NOT NULL,
    link TEXT,
    detail TEXT,
    user_id UUID,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_until BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);
CREATE INDEX outbox_due_idx ON outbox (next_attempt_at);
