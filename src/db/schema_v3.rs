//! The tables of contract version 3's doors: ID-token keys, authorization codes and consents
//! (browser sign-in), the mail tokens and outbox, and passkeys. `schema.rs` re-exports them, so
//! queries name every table as `crate::db::schema::<table>`.

diesel::table! {
    id_token_keys (kid) {
        kid -> Text,
        generation -> BigInt,
        algorithm -> Text,
        private_key -> Text,
        public_jwk -> Text,
        created_at -> BigInt,
        retired_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::DbUuid;

    authorization_codes (code_hash) {
        code_hash -> Text,
        client_id -> DbUuid,
        redirect_uri -> Text,
        code_challenge -> Text,
        scope -> Text,
        nonce -> Nullable<Text>,
        resource -> Nullable<Text>,
        user_id -> DbUuid,
        auth_time -> BigInt,
        amr -> Text,
        browser_session_id -> DbUuid,
        created_at -> BigInt,
        expires_at -> BigInt,
        redeemed_at -> Nullable<BigInt>,
        session_id -> Nullable<DbUuid>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::DbUuid;

    consents (user_id, client_id) {
        user_id -> DbUuid,
        client_id -> DbUuid,
        scope -> Text,
        granted_at -> BigInt,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::DbUuid;

    mail_tokens (token_hash) {
        token_hash -> Text,
        user_id -> DbUuid,
        kind -> Text,
        email -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
        used_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::DbUuid;

    outbox (id) {
        id -> DbUuid,
        message_id -> Text,
        recipient -> Text,
        kind -> Text,
        link -> Nullable<Text>,
        detail -> Nullable<Text>,
        user_id -> Nullable<DbUuid>,
        attempts -> Integer,
        next_attempt_at -> BigInt,
        lease_until -> BigInt,
        created_at -> BigInt,
        token_hash -> Nullable<Text>,
        client_ip -> Nullable<Text>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::DbUuid;

    passkey_handles (user_id) {
        user_id -> DbUuid,
        handle -> Text,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::DbUuid;

    passkeys (id) {
        id -> DbUuid,
        user_id -> DbUuid,
        credential_id -> Text,
        name -> Text,
        credential -> Text,
        sign_count -> BigInt,
        created_at -> BigInt,
        last_used_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::DbUuid;

    webauthn_ceremonies (id_hash) {
        id_hash -> Text,
        purpose -> Text,
        user_id -> Nullable<DbUuid>,
        mfa_token_hash -> Nullable<Text>,
        state -> Text,
        expires_at -> BigInt,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::DbUuid;

    browser_sessions (session_id) {
        session_id -> DbUuid,
        token_hash -> Text,
        auth_time -> BigInt,
    }
}

// Browser sessions are read with their `sessions` row (and that row's user).
use super::schema::{sessions, users};
diesel::joinable!(browser_sessions -> sessions (session_id));
diesel::allow_tables_to_appear_in_same_query!(browser_sessions, sessions);
diesel::allow_tables_to_appear_in_same_query!(browser_sessions, users);
