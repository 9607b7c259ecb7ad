//! The diesel schema shared by both backends. Ids are [`DbUuid`](super::DbUuid); times are
//! Unix seconds (`BigInt`) so that the same queries compile for PostgreSQL and SQLite.

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::DbUuid;

    users (id) {
        id -> DbUuid,
        email -> Text,
        password_hash -> Text,
        disabled -> Bool,
        created_at -> BigInt,
        updated_at -> BigInt,
        mfa_enabled -> Bool,
        email_verified -> Bool,
        passkey_count -> Integer,
        session_bound -> BigInt,
    }
}

diesel::table! {
    roles (name) {
        name -> Text,
        description -> Text,
        builtin -> Bool,
        created_at -> BigInt,
    }
}

diesel::table! {
    role_permissions (role_name, permission) {
        role_name -> Text,
        permission -> Text,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::DbUuid;

    user_roles (user_id, role_name) {
        user_id -> DbUuid,
        role_name -> Text,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::DbUuid;

    sessions (id) {
        id -> DbUuid,
        user_id -> DbUuid,
        created_at -> BigInt,
        last_used_at -> BigInt,
        expires_at -> BigInt,
        ended_at -> Nullable<BigInt>,
        end_reason -> Nullable<Text>,
        user_agent -> Nullable<Text>,
        ip -> Nullable<Text>,
        amr -> Text,
        generation -> BigInt,
        rotated_at -> Nullable<BigInt>,
        burst_generation -> BigInt,
        burst_at -> Nullable<BigInt>,
        resource -> Nullable<Text>,
        client_id -> Text,
        scope -> Nullable<Text>,
        browser_session_id -> Nullable<DbUuid>,
        auth_time -> Nullable<BigInt>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::DbUuid;

    refresh_tokens (id) {
        id -> DbUuid,
        session_id -> DbUuid,
        token_hash -> Text,
        created_at -> BigInt,
        spent_at -> Nullable<BigInt>,
        expires_at -> BigInt,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::DbUuid;

    revoked_sessions (session_id) {
        session_id -> DbUuid,
        user_id -> DbUuid,
        revoked_at -> BigInt,
        expires_at -> BigInt,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::DbUuid;

    role_changes (user_id) {
        user_id -> DbUuid,
        version -> BigInt,
        changed_at -> BigInt,
        roles -> Text,
        expires_at -> BigInt,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::DbUuid;

    audit_events (id) {
        id -> DbUuid,
        at -> BigInt,
        event -> Text,
        user_id -> Nullable<DbUuid>,
        actor_id -> Nullable<DbUuid>,
        ip -> Nullable<Text>,
        detail -> Text,
    }
}

diesel::table! {
    login_throttle (key) {
        key -> Text,
        failures -> Integer,
        window_start -> BigInt,
        locked_until -> BigInt,
    }
}

diesel::table! {
    settings (name) {
        name -> Text,
        value -> Text,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::DbUuid;

    mfa_totp (user_id) {
        user_id -> DbUuid,
        secret -> Text,
        last_step -> BigInt,
        created_at -> BigInt,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::DbUuid;

    mfa_recovery_codes (user_id, code_hash) {
        user_id -> DbUuid,
        code_hash -> Text,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::DbUuid;

    mfa_challenges (token_hash) {
        token_hash -> Text,
        user_id -> DbUuid,
        attempts -> Integer,
        expires_at -> BigInt,
        resource -> Nullable<Text>,
        scope -> Nullable<Text>,
    }
}

diesel::table! {
    signing_keys (kid) {
        kid -> Text,
        generation -> BigInt,
        algorithm -> Text,
        private_key -> Text,
        public_key -> Text,
        created_at -> BigInt,
        retired_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::DbUuid;

    clients (client_id) {
        client_id -> DbUuid,
        name -> Text,
        secret_hash -> Text,
        disabled -> Bool,
        created_at -> BigInt,
        created_by -> Nullable<DbUuid>,
        client_type -> Text,
        redirect_uris -> Text,
        post_logout_redirect_uris -> Text,
        grant_types -> Text,
        first_party -> Bool,
        id_token_signed_response_alg -> Text,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::DbUuid;

    client_permissions (client_id, permission) {
        client_id -> DbUuid,
        permission -> Text,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::DbUuid;

    client_token_cutoffs (client_id) {
        client_id -> DbUuid,
        revoked_through -> BigInt,
        changed_at -> BigInt,
        expires_at -> BigInt,
    }
}

// The tables of version 3's doors live in `schema_v3.rs` (this file stays readable).
pub use super::schema_v3::browser_sessions;
pub use super::schema_v3::{
    authorization_codes, consents, id_token_keys, mail_tokens, outbox, passkey_handles, passkeys, webauthn_ceremonies,
};

diesel::joinable!(client_permissions -> clients (client_id));
diesel::joinable!(role_permissions -> roles (role_name));
diesel::joinable!(user_roles -> users (user_id));
diesel::joinable!(user_roles -> roles (role_name));
diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(refresh_tokens -> sessions (session_id));
diesel::joinable!(mfa_totp -> users (user_id));
diesel::joinable!(passkeys -> users (user_id));
diesel::joinable!(consents -> clients (client_id));

diesel::allow_tables_to_appear_in_same_query!(
    users,
    roles,
    role_permissions,
    user_roles,
    sessions,
    refresh_tokens,
    revoked_sessions,
    role_changes,
    audit_events,
    login_throttle,
    settings,
    mfa_totp,
    mfa_recovery_codes,
    mfa_challenges,
    passkey_handles,
    passkeys,
    webauthn_ceremonies,
    signing_keys,
    clients,
    client_permissions,
    client_token_cutoffs,
    id_token_keys,
    authorization_codes,
    consents,
    mail_tokens,
    outbox,
);
