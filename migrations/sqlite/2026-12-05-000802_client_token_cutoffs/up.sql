-- Client access tokens revoked by time: every access token of `client_id` whose `iat` is at or
-- before `revoked_through` (Unix seconds) is refused, until `expires_at`, when all of them have
-- expired anyway. Written when a client's secret is rotated (tokens issued under the old secret)
-- and when a client revokes one of its access tokens (RFC 7009). Every instance keeps the rows in
-- memory, read like the revocation feed by `changed_at`. No foreign key, like revoked_sessions.
CREATE TABLE client_token_cutoffs (
    client_id TEXT PRIMARY KEY NOT NULL,
    revoked_through BIGINT NOT NULL,
    changed_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX client_token_cutoffs_changed_idx ON client_token_cutoffs (changed_at);
