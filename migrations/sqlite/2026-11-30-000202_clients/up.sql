-- Service clients (OAuth 2.0 client-credentials). Only a SHA-256 digest of the secret is kept:
-- secrets are 256 random bits, so a fast hash is enough. Deleted clients' tokens are rejected
-- through the revoked_sessions feed (session_id = client_id).
CREATE TABLE clients (
    client_id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    disabled BOOLEAN NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    created_by TEXT
);

CREATE TABLE client_permissions (
    client_id TEXT NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    permission TEXT NOT NULL,
    PRIMARY KEY (client_id, permission)
);
