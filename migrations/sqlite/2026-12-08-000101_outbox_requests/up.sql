-- Password-reset requests wait in the outbox as `reset_request` rows (docs/mail.md, "Timing"):
-- the request writes the same row whether or not the address has an account, and the sender
-- turns it into a reset mail (or deletes it) when it claims it. `token_hash` is the digest of
-- the token in the row's sealed link, stored as a `mail_tokens` row only then; `client_ip` is
-- the requester's address for the audit row written then. Both are NULL on every other row.
ALTER TABLE outbox ADD COLUMN token_hash TEXT;
ALTER TABLE outbox ADD COLUMN client_ip TEXT;
