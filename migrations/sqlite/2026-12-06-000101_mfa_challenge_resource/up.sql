-- The resource server (RFC 8707 `resource`) named at the password step of a login with MFA;
-- the session the second step starts is bound to it. NULL: tokens for Portcullis itself.
ALTER TABLE mfa_challenges ADD COLUMN resource TEXT;
