-- Browser sessions (docs/browser-sign-in.md): the hosted sign-in's session is a row of sessions
-- (client_id 'portcullis', no refresh token ever minted), so every path that ends sessions ends it.
-- This side table marks it as a browser session and holds what only such a session has: the
-- SHA-256 digest of its cookie's 256-bit token (never the token) and when the password or second
-- factor was last presented (OpenID Connect Core §2, auth_time).
CREATE TABLE browser_sessions (
    session_id UUID PRIMARY KEY NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL UNIQUE,
    auth_time BIGINT NOT NULL
);
