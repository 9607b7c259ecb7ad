-- Passkeys (WebAuthn Level 2): the credentials of each account, the random WebAuthn user handle
-- of each account, and the ceremonies in progress (so any instance can finish what another
-- started). See docs/passkeys.md.

-- How many passkeys the account holds: the user object's `mfa` and the login's second step read
-- it without another query, and the cap of 10 is one conditional UPDATE of it.
ALTER TABLE users ADD COLUMN passkey_count INTEGER NOT NULL DEFAULT 0;

-- The WebAuthn user handle (user.id of the creation options): random, never the account id, so
-- an authenticator's list of accounts tells nothing that identifies the account here.
CREATE TABLE passkey_handles (
    user_id UUID PRIMARY KEY NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    handle TEXT NOT NULL UNIQUE
);

-- One row per credential. `credential` is webauthn-rs's Credential as JSON (public key,
-- counter, flags): public data. `sign_count` mirrors its counter so that a use is recorded only
-- by the conditional UPDATE that raises it.
CREATE TABLE passkeys (
    id UUID PRIMARY KEY NOT NULL,
    user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    credential_id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    credential TEXT NOT NULL,
    sign_count BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT
);
CREATE INDEX passkeys_user_idx ON passkeys (user_id);

-- A ceremony in progress: SHA-256 of its ceremony_id, what it is for, the account (registration,
-- second step, sign-in by email), the mfa_token it completes (second step), webauthn-rs's state
-- as JSON, and its expiry. Deleted by the one request that finishes it.
CREATE TABLE webauthn_ceremonies (
    id_hash TEXT PRIMARY KEY NOT NULL,
    purpose TEXT NOT NULL,
    user_id UUID REFERENCES users (id) ON DELETE CASCADE,
    mfa_token_hash TEXT,
    state TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX webauthn_ceremonies_expiry_idx ON webauthn_ceremonies (expires_at);
