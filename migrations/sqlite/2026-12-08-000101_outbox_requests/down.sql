DELETE FROM outbox WHERE kind = 'reset_request';
ALTER TABLE outbox DROP COLUMN client_ip;
ALTER TABLE outbox DROP COLUMN token_hash;
