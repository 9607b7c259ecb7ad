//! Zero-configuration signing: a generated Ed25519 key kept in the database, verifiable from the
//! JWKS alone, shared by instances, rotated without logging anyone out, encrypted at rest with a
//! key-encryption key; and tokens of a version-1 database's generated HS256 key after upgrade.

use crate::helpers::*;
use crate::on_both_backends;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use portcullis::config::AuthConfig;
use portcullis::db::PoolSettings;
use rocket::http::Status;
use serde_json::{json, Value};

pub const KEK: &str = "a key-encryption key for the tests, 32+ bytes";

fn header_of(token: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token.split('.').next().unwrap()).unwrap()).unwrap()
}

/// The kids of the access-token keys of the JWKS (the ID-token keys, `id-...`, left out).
pub async fn jwks_kids(app: &TestApp) -> Vec<String> {
    let jwks: Value = app.client.get("/.well-known/jwks.json").dispatch().await.into_json().await.unwrap();
    let kids = jwks["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap().to_owned());
    kids.filter(|kid| !kid.starts_with("id-")).collect()
}

/// `portcullis keys rotate` on the app's database, at the app's time.
pub async fn rotate(app: &TestApp, kek: Option<&str>) -> String {
    let settings: PoolSettings = test_figment(app.db_url()).extract_inner("databases.main").unwrap();
    let config = AuthConfig { key_encryption_key: kek.map(portcullis::config::Secret::new), ..AuthConfig::default() };
    let rotated = portcullis::cli::rotate_keys(&settings, &config, app.clock.now()).await.expect("rotation");
    rotated.access_token_kid.expect("the access-token key rotated")
}

/// Waits until `app` signs with `kid` (running instances reload keys on their poll interval),
/// and returns the tokens of the login that did.
async fn until_signing_with(app: &TestApp, user: &TestUser, kid: &str) -> Tokens {
    let mut last = None;
    eventually(&format!("the instance signs with key {kid}"), async || {
        let tokens = app.login(user).await;
        let signed_with_kid = header_of(&tokens.access)["kid"] == kid;
        last = Some(tokens);
        signed_with_kid
    })
    .await;
    last.expect("a login")
}

/// Every text cell of the tables that could hold key material, on either backend.
async fn stored_text(app: &TestApp) -> String {
    let query = "SELECT private_key AS value FROM signing_keys UNION ALL SELECT value FROM settings \
                 UNION ALL SELECT private_key FROM id_token_keys";
    cells(app, query).await
}

/// The text cells `query` selects (as `value`), joined by newlines.
pub async fn cells(app: &TestApp, query: &str) -> String {
    cells_at(app.backend, app.db_url(), query).await
}

/// [`cells`] of the database at `url`.
pub async fn cells_at(backend: Backend, url: &str, query: &str) -> String {
    #[derive(diesel::QueryableByName)]
    struct Cell {
        #[diesel(sql_type = diesel::sql_types::Text)]
        value: String,
    }
    let cells: Vec<Cell> = match backend {
        Backend::Sqlite => {
            use diesel::Connection;
            let mut conn = diesel::SqliteConnection::establish(url).unwrap();
            diesel::RunQueryDsl::execute(diesel::sql_query("PRAGMA busy_timeout = 10000"), &mut conn).unwrap();
            diesel::RunQueryDsl::load(diesel::sql_query(query), &mut conn).unwrap()
        }
        Backend::Postgres => {
            let mut conn = AsyncPgConnection::establish(url).await.unwrap();
            diesel_async::RunQueryDsl::load(diesel::sql_query(query), &mut conn).await.unwrap()
        }
    };
    cells.into_iter().map(|c| c.value).collect::<Vec<_>>().join("\n")
}

on_both_backends! {
    async fn zero_configuration_signs_with_a_generated_ed25519_key_that_the_jwks_alone_verifies(backend) {
        use jwt_simple::prelude::*;
        use std::collections::HashSet;
        let app = TestApp::new(backend).await;
        let user = app.with_user().await;
        let tokens = app.login(&user).await;
        let header = header_of(&tokens.access);
        assert_eq!((header["alg"].as_str(), header["typ"].as_str()), (Some("EdDSA"), Some("at+jwt")));
        let jwks: Value = app.client.get("/.well-known/jwks.json").dispatch().await.into_json().await.unwrap();
        assert_eq!(jwks_kids(&app).await.len(), 1, "one access-token key (then the ID-token keys)");
        let jwk = &jwks["keys"][0];
        assert_eq!((jwk["kty"].as_str(), jwk["crv"].as_str(), jwk["kid"].clone(), jwk.get("d")), (Some("OKP"), Some("Ed25519"), header["kid"].clone(), None));
        let x = URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap();
        let key = Ed25519PublicKey::from_bytes(&x).unwrap().with_key_id(jwk["kid"].as_str().unwrap());
        let options = VerificationOptions {
            allowed_issuers: Some(HashSet::from([crate::issuer::issuer_of(&app)])),
            allowed_audiences: Some(HashSet::from(["portcullis".to_string()])),
            ..Default::default()
        };
        let claims = key.verify_token::<Value>(&tokens.access, Some(options)).expect("verifies from the JWKS");
        assert_eq!(claims.subject.as_deref(), Some(user.id.as_str()));
    }

    async fn instances_sharing_a_database_share_the_generated_key_and_it_survives_restarts(backend) {
        let first = TestApp::new(backend).await;
        let second = first.second_instance(|b| b).await;
        let user = first.with_user().await;
        let from_first = first.login(&user).await;
        let from_second = second.login(&user).await;
        assert_eq!(second.me_status(&from_first.access).await, Status::Ok);
        assert_eq!(first.me_status(&from_second.access).await, Status::Ok);
        assert_eq!(jwks_kids(&first).await, jwks_kids(&second).await);
        let restarted = first.second_instance(|b| b).await;
        assert_eq!(restarted.me_status(&from_first.access).await, Status::Ok);
    }

    async fn rotation_logs_nobody_out_and_the_old_key_leaves_the_jwks_once_its_tokens_have_expired(backend) {
        let app = TestApp::new(backend).await;
        let other = app.second_instance(|b| b).await;
        let user = app.with_user().await;
        let before = app.login(&user).await;
        let old_kid = header_of(&before.access)["kid"].as_str().unwrap().to_owned();
        let new_kid = rotate(&app, None).await;
        assert_ne!(new_kid, old_kid);
        // Both running instances pick up the new key without a restart.
        let after = until_signing_with(&app, &user, &new_kid).await;
        until_signing_with(&other, &user, &new_kid).await;
        for instance in [&app, &other] {
            assert_eq!(instance.me_status(&before.access).await, Status::Ok, "old tokens still work");
            assert_eq!(instance.me_status(&after.access).await, Status::Ok);
            assert_eq!(jwks_kids(instance).await, vec![new_kid.clone(), old_kid.clone()]);
        }
        // Once every token the old key signed has expired (plus the pickup margin) it is gone.
        app.clock.advance(900 + 61);
        assert_eq!(jwks_kids(&app).await, vec![new_kid.clone()]);
        let fresh = app.login(&user).await;
        assert_eq!(app.me_status(&fresh.access).await, Status::Ok);
    }

    async fn a_generated_key_is_stored_encrypted_when_a_key_encryption_key_is_configured(backend) {
        let app = TestApp::builder(backend).with_config("key_encryption_key", KEK).build().await;
        let user = app.with_user().await;
        let tokens = app.login(&user).await;
        let stored = stored_text(&app).await;
        assert!(stored.contains("xc20p1:"), "sealed: {stored}");
        assert!(!stored.contains("plain:"), "nothing in clear");
        // A rotation under the same KEK is sealed too, and a restart with the KEK works.
        rotate(&app, Some(KEK)).await;
        assert!(!stored_text(&app).await.contains("plain:"));
        let restarted = app.second_instance(|b| b.with_config("key_encryption_key", KEK)).await;
        assert_eq!(restarted.me_status(&tokens.access).await, Status::Ok);
    }

    async fn without_the_key_encryption_key_an_encrypted_key_stops_start_up_with_a_clear_error(backend) {
        let app = TestApp::builder(backend).with_config("key_encryption_key", KEK).build().await;
        for other in [None, Some("a different key-encryption key, 32+ bytes")] {
            let mut figment = test_figment(app.db_url());
            if let Some(kek) = other {
                figment = figment.merge(("auth.key_encryption_key", kek));
            }
            let config = AuthConfig::from_figment(&figment).unwrap();
            let settings: PoolSettings = figment.extract_inner("databases.main").unwrap();
            let pool = portcullis::db::DbPool::build(&settings).unwrap();
            let error = portcullis::auth::Auth::build(config, app.clock.clone(), &pool).await.expect_err("cannot start");
            assert!(error.to_string().contains("auth.key_encryption_key"), "{error}");
        }
    }

    async fn totp_secrets_are_encrypted_at_rest_with_the_same_key_encryption_key(backend) {
        use crate::mfa_support::{enrol, login_with_code, start_enrolment};
        let app = TestApp::builder(backend).with_config("key_encryption_key", KEK).build().await;
        let user = app.with_user().await;
        let tokens = app.login(&user).await;
        let shown = start_enrolment(&app, &tokens, PASSWORD).await["secret"].as_str().unwrap().to_owned();
        let stored = cells(&app, "SELECT secret AS value FROM mfa_totp").await;
        assert!(stored.starts_with("xc20p1:") && !stored.contains(&shown), "sealed: {stored}");
        let authenticator = enrol(&app, &tokens).await;
        let code = authenticator.code(&app, 0);
        login_with_code(&app, &user, &code).await;
    }

    async fn keys_and_totp_secrets_stored_in_clear_are_sealed_once_a_key_encryption_key_is_configured(backend) {
        use crate::mfa_support::{enrol, login_with_code};
        let app = TestApp::new(backend).await;
        let user = app.with_user().await;
        let tokens = app.login(&user).await;
        let authenticator = enrol(&app, &tokens).await;
        crate::keys_at_rest::to_clear(&app).await;
        assert!(stored_text(&app).await.contains("plain:"));
        assert!(cells(&app, "SELECT secret AS value FROM mfa_totp").await.starts_with("plain:"));
        let sealed = app.second_instance(|b| b.with_config("key_encryption_key", KEK)).await;
        assert!(!stored_text(&app).await.contains("plain:"));
        assert!(cells(&app, "SELECT secret AS value FROM mfa_totp").await.starts_with("xc20p1:"), "TOTP sealed too");
        assert_eq!(sealed.me_status(&tokens.access).await, Status::Ok);
        login_with_code(&sealed, &user, &authenticator.code(&sealed, 0)).await;
    }

    async fn a_version_1_database_keeps_accepting_its_hs256_tokens_until_they_expire(backend) {
        use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
        let db = TestDb::migrated(backend).await;
        // What version 1 left: a generated HS256 key in `settings`.
        let secret = "v1-generated-hs256-key-0123456789abcdef";
        let insert = format!("INSERT INTO settings (name, value) VALUES ('hs256_secret', '{secret}')");
        match backend {
            Backend::Sqlite => {
                use diesel::Connection;
                let mut conn = diesel::SqliteConnection::establish(db.url()).unwrap();
                diesel::RunQueryDsl::execute(diesel::sql_query("PRAGMA busy_timeout = 10000"), &mut conn).unwrap();
                diesel::RunQueryDsl::execute(diesel::sql_query(insert), &mut conn).unwrap();
            }
            Backend::Postgres => {
                AsyncPgConnection::establish(db.url()).await.unwrap().batch_execute(&insert).await.unwrap();
            }
        }
        let app = TestApp::builder(backend).with_db(db).build().await;
        let user = app.with_user().await;
        let current = app.login(&user).await;
        let now = app.clock.now();
        let mut header = Header::new(Algorithm::HS256);
        header.typ = Some("at+jwt".into());
        header.kid = Some(portcullis::auth::keys::tokens::hs256_kid(secret.as_bytes()));
        let claims = json!({"iss": crate::issuer::issuer_of(&app), "aud": "portcullis", "sub": user.id, "sid": current.session_id,
            "jti": uuid::Uuid::new_v4(), "iat": now - 100, "exp": now + 800, "roles": ["user"]});
        let v1_token = encode(&header, &claims, &EncodingKey::from_secret(secret.as_bytes())).unwrap();
        assert_eq!(app.me_status(&v1_token).await, Status::Ok, "a v1 token still works");
        assert_eq!(header_of(&current.access)["alg"], "EdDSA", "new tokens are EdDSA");
        assert!(!jwks_kids(&app).await.contains(header.kid.as_ref().unwrap()), "the HS256 key is never published");
        // A token minted with the old key after its tokens have all expired is refused.
        app.clock.advance(900 + 61);
        let now = app.clock.now();
        let late = json!({"iss": crate::issuer::issuer_of(&app), "aud": "portcullis", "sub": user.id, "sid": current.session_id,
            "jti": uuid::Uuid::new_v4(), "iat": now, "exp": now + 800, "roles": ["user"]});
        let late = encode(&header, &late, &EncodingKey::from_secret(secret.as_bytes())).unwrap();
        assert_eq!(app.me_status(&late).await, Status::Unauthorized);
        // And the key itself is deleted: no copy of the database made from now on holds it.
        let stored = "SELECT value FROM settings WHERE name = 'hs256_secret'";
        for _ in 0..200 {
            if cells(&app, stored).await.is_empty() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("the expired HS256 key is still stored");
    }
}

on_both_backends! {
    async fn the_refresh_token_key_is_sealed_too_and_refresh_tokens_survive_a_restart_with_the_kek(backend) {
        let app = TestApp::new(backend).await;
        let user = app.with_user().await;
        let before = app.login(&user).await;
        crate::keys_at_rest::to_clear(&app).await;
        let clear = cells(&app, "SELECT value FROM settings WHERE name = 'refresh_mac_key'").await;
        assert!(clear.starts_with("plain:"), "without a KEK the key is in clear: {clear}");
        let sealed_app = app.second_instance(|b| b.with_config("key_encryption_key", KEK)).await;
        let sealed = cells(&app, "SELECT value FROM settings WHERE name = 'refresh_mac_key'").await;
        assert!(sealed.starts_with("xc20p1:"), "sealed at the first start with a KEK: {sealed}");
        let next = tokens(sealed_app.refresh_response(&before.refresh).await).await;
        let restarted = app.second_instance(|b| b.with_config("key_encryption_key", KEK)).await;
        assert_eq!(restarted.refresh_response(&next.refresh).await.status(), Status::Ok, "the same key after a restart");
    }
}
