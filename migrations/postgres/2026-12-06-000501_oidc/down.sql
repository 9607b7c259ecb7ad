DROP TABLE consents;
DROP TABLE authorization_codes;
DROP TABLE id_token_keys;
