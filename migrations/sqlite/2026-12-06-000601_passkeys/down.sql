DROP TABLE webauthn_ceremonies;
DROP TABLE passkeys;
DROP TABLE passkey_handles;
ALTER TABLE users DROP COLUMN passkey_count;
