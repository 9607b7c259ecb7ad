DROP TABLE outbox;
DROP TABLE mail_tokens;
ALTER TABLE users DROP COLUMN email_verified;
