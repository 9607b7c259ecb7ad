ALTER TABLE sessions DROP COLUMN client_id;
ALTER TABLE clients DROP COLUMN id_token_signed_response_alg;
ALTER TABLE clients DROP COLUMN first_party;
ALTER TABLE clients DROP COLUMN grant_types;
ALTER TABLE clients DROP COLUMN post_logout_redirect_uris;
ALTER TABLE clients DROP COLUMN redirect_uris;
ALTER TABLE clients DROP COLUMN client_type;
