-- Generated Ed25519 signing keys, shared by every instance. The key with the highest generation
-- signs; older ones verify until retired_at + access_ttl + leeway, then leave the JWKS.
-- private_key is the 32-byte seed as stored by auth::kek (encrypted when a KEK is configured).
CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY NOT NULL,
    generation BIGINT NOT NULL UNIQUE,
    algorithm TEXT NOT NULL,
    private_key TEXT NOT NULL,
    public_key TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    retired_at BIGINT
);
