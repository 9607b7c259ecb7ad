DROP TABLE client_token_cutoffs;
