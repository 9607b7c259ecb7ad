-- Multi-factor authentication (TOTP, RFC 6238): the secret and last accepted step per user,
-- hashed recovery codes, the pending second step of a login, and the session's `amr`.

-- The one flag login reads: no extra query for accounts without MFA.
ALTER TABLE users ADD COLUMN mfa_enabled BOOLEAN NOT NULL DEFAULT FALSE;
-- RFC 8176 methods of the login that started the session, space-separated; refreshes keep it.
ALTER TABLE sessions ADD COLUMN amr TEXT NOT NULL DEFAULT 'pwd';

-- One row per user: pending while users.mfa_enabled is false, active once it is true.
-- `last_step` is the last accepted 30-second step: a code is accepted only by the conditional
-- UPDATE that raises it, so a code works once.
CREATE TABLE mfa_totp (
    user_id UUID PRIMARY KEY NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    secret TEXT NOT NULL,
    last_step BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);

-- SHA-256 of each unused recovery code; a used one is deleted.
CREATE TABLE mfa_recovery_codes (
    user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash TEXT NOT NULL,
    PRIMARY KEY (user_id, code_hash)
);

-- The second step of a login: SHA-256 of the mfa_token, its account, attempts used, expiry.
CREATE TABLE mfa_challenges (
    token_hash TEXT PRIMARY KEY NOT NULL,
    user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    attempts INTEGER NOT NULL DEFAULT 0,
    expires_at BIGINT NOT NULL
);
CREATE INDEX mfa_challenges_user_idx ON mfa_challenges (user_id);
