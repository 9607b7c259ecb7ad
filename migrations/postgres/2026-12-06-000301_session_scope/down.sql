ALTER TABLE mfa_challenges DROP COLUMN scope;
ALTER TABLE sessions DROP COLUMN scope;
