-- Client types (RFC 6749 §2.1) and the registration metadata of RFC 7591 §2: a public client has
-- no secret (its secret_hash is the empty string, which no SHA-256 digest equals); list-valued
-- fields are JSON arrays of strings. Clients from before keep what they could do: confidential,
-- the client-credentials grant only.
ALTER TABLE clients ADD COLUMN client_type TEXT NOT NULL DEFAULT 'confidential';
ALTER TABLE clients ADD COLUMN redirect_uris TEXT NOT NULL DEFAULT '[]';
ALTER TABLE clients ADD COLUMN post_logout_redirect_uris TEXT NOT NULL DEFAULT '[]';
ALTER TABLE clients ADD COLUMN grant_types TEXT NOT NULL DEFAULT '["client_credentials"]';
ALTER TABLE clients ADD COLUMN first_party BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE clients ADD COLUMN id_token_signed_response_alg TEXT NOT NULL DEFAULT 'RS256';
-- The client a session belongs to (RFC 6749 §6: refresh tokens are bound to it): a registered
-- client's id, or 'portcullis' for first-party sessions, which every session before was.
ALTER TABLE sessions ADD COLUMN client_id TEXT NOT NULL DEFAULT 'portcullis';
