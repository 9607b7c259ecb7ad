-- Browser sign-in (OpenID Connect): ID-token keys, authorization codes, consents.

-- Keys that sign ID tokens (OpenID Connect Core §10.1), apart from the access-token keys so that
-- they exist whatever signs access tokens (HS256 included). Each generation has one RS256 key
-- (RSA, 2048 bits) and one EdDSA key (Ed25519); the newest generation signs, retired ones stay in
-- the JWKS until every ID token they signed has expired. private_key is stored as auth::keys::kek
-- encodes it (sealed under the key-encryption key when there is one); public_jwk is the public
-- half as a JWK (JSON), without kid/alg/use.
CREATE TABLE id_token_keys (
    kid TEXT PRIMARY KEY NOT NULL,
    generation BIGINT NOT NULL,
    algorithm TEXT NOT NULL,
    private_key TEXT NOT NULL,
    public_jwk TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    retired_at BIGINT,
    UNIQUE (generation, algorithm)
);

-- Authorization codes (RFC 6749 §4.1, RFC 7636). Only a SHA-256 digest of the code is kept (the
-- code is 256 random bits). A code is redeemed once: redeemed_at and session_id (the session the
-- redemption started) are set by one conditional UPDATE; a second redemption finds them and ends
-- that session (RFC 6749 §4.1.2).
CREATE TABLE authorization_codes (
    code_hash TEXT PRIMARY KEY NOT NULL,
    client_id UUID NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    redirect_uri TEXT NOT NULL,
    code_challenge TEXT NOT NULL,
    scope TEXT NOT NULL,
    nonce TEXT,
    resource TEXT,
    user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    auth_time BIGINT NOT NULL,
    amr TEXT NOT NULL,
    browser_session_id UUID NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    redeemed_at BIGINT,
    session_id UUID
);
CREATE INDEX authorization_codes_expires_idx ON authorization_codes (expires_at);
CREATE INDEX authorization_codes_browser_session_idx ON authorization_codes (browser_session_id);

-- What a user approved for a third-party client: one row per user and client, its scope the
-- space-separated values approved so far. A request is covered when its scope is a subset.
CREATE TABLE consents (
    user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id UUID NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    scope TEXT NOT NULL,
    granted_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, client_id)
);
CREATE INDEX consents_client_idx ON consents (client_id);
