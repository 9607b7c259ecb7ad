//! Keys at rest: with SQLite and no configured key, a key generated into `<database>.kek` seals
//! everything secret, so a copy of the database file alone opens nothing; a missing or wrong key
//! changes nothing; `keys rotate` never writes a key in clear beside sealed ones; and a retired
//! private key is deleted once its tokens have expired.

use crate::generated_keys::{cells, cells_at, jwks_kids, rotate, KEK};
use crate::helpers::*;
use crate::on_both_backends;
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use portcullis::auth::keys::kek::AtRest;
use portcullis::auth::mfa::secret;
use portcullis::config::{AuthConfig, Secret};
use portcullis::db::{DbPool, PoolSettings};
use rocket::http::Status;

/// Every stored secret, one line per cell, sorted: compares a database value for value.
async fn secrets_of(app: &TestApp) -> Vec<String> {
    secrets_at(app.backend, app.db_url()).await
}

/// [`secrets_of`] the database at `url`.
async fn secrets_at(backend: Backend, url: &str) -> Vec<String> {
    let query = "SELECT kid || ' ' || private_key || ' ' || COALESCE(CAST(retired_at AS TEXT), '-') AS value \
                 FROM signing_keys UNION ALL SELECT name || '=' || value FROM settings \
                 UNION ALL SELECT secret FROM mfa_totp \
                 UNION ALL SELECT kid || ' ' || private_key || ' ' || COALESCE(CAST(retired_at AS TEXT), '-') \
                 FROM id_token_keys";
    let mut lines: Vec<String> = cells_at(backend, url, query).await.lines().map(str::to_owned).collect();
    lines.sort();
    lines
}

async fn execute(app: &TestApp, sql: &str) {
    match app.backend {
        Backend::Sqlite => {
            use diesel::Connection;
            let mut conn = diesel::SqliteConnection::establish(app.db_url()).unwrap();
            // The service's writer may hold the lock for a moment: wait for it, as the service does.
            diesel::RunQueryDsl::execute(diesel::sql_query("PRAGMA busy_timeout = 10000"), &mut conn).unwrap();
            diesel::RunQueryDsl::execute(diesel::sql_query(sql), &mut conn).unwrap();
        }
        Backend::Postgres => {
            AsyncPgConnection::establish(app.db_url()).await.unwrap().batch_execute(sql).await.unwrap()
        }
    }
}

/// The generated key file of an SQLite app's database.
fn key_file(app: &TestApp) -> std::path::PathBuf {
    std::path::PathBuf::from(format!("{}.kek", app.db_url()))
}

/// Rewrites every sealed secret in clear and removes the key file, leaving the database as a
/// version without sealing wrote it (on PostgreSQL without a key there is nothing to undo).
pub async fn to_clear(app: &TestApp) {
    let Ok(key) = std::fs::read_to_string(key_file(app)) else {
        assert_eq!(app.backend, Backend::Postgres, "an SQLite database has its key file");
        return;
    };
    let (sealed, clear) = (AtRest::new(Some(&Secret::new(key.trim()))), AtRest::new(None));
    let reseal = |value: &str| clear.encrypt_at_rest(&sealed.decrypt_at_rest(value).unwrap());
    for line in cells(app, "SELECT kid || ' ' || private_key AS value FROM signing_keys").await.lines() {
        let (kid, value) = line.split_once(' ').unwrap();
        execute(app, &format!("UPDATE signing_keys SET private_key = '{}' WHERE kid = '{kid}'", reseal(value))).await;
    }
    for line in cells(app, "SELECT kid || ' ' || private_key AS value FROM id_token_keys").await.lines() {
        let (kid, value) = line.split_once(' ').unwrap();
        execute(app, &format!("UPDATE id_token_keys SET private_key = '{}' WHERE kid = '{kid}'", reseal(value))).await;
    }
    let refresh = cells(app, "SELECT value FROM settings WHERE name = 'refresh_mac_key'").await;
    execute(app, &format!("UPDATE settings SET value = '{}' WHERE name = 'refresh_mac_key'", reseal(&refresh))).await;
    let totp = cells(app, "SELECT secret AS value FROM mfa_totp").await;
    for value in totp.lines() {
        let plain = secret::seal(&clear, &secret::open(&sealed, value).unwrap());
        execute(app, &format!("UPDATE mfa_totp SET secret = '{plain}' WHERE secret = '{value}'")).await;
    }
    std::fs::remove_file(key_file(app)).unwrap();
}

/// Starts the service state on the database at `url` with `kek` configured (or none).
async fn start(app: &TestApp, url: &str, kek: Option<&str>) -> Result<(), String> {
    let mut figment = test_figment(url);
    if let Some(kek) = kek {
        figment = figment.merge(("auth.key_encryption_key", kek));
    }
    let config = AuthConfig::from_figment(&figment).unwrap();
    let settings: PoolSettings = figment.extract_inner("databases.main").unwrap();
    let pool = DbPool::build(&settings).unwrap();
    portcullis::auth::Auth::build(config, app.clock.clone(), &pool).await.map(|_| ()).map_err(|e| e.to_string())
}

/// An app with a user who logged in and enrolled TOTP, so every kind of secret is stored.
async fn app_with_secrets(backend: Backend, kek: Option<&str>) -> TestApp {
    let mut builder = TestApp::builder(backend);
    if let Some(kek) = kek {
        builder = builder.with_config("key_encryption_key", kek);
    }
    let app = builder.build().await;
    let user = app.with_user().await;
    let tokens = app.login(&user).await;
    crate::mfa_support::enrol(&app, &tokens).await;
    app
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_of_the_sqlite_database_without_its_key_file_opens_nothing() {
    let app = app_with_secrets(Backend::Sqlite, None).await;
    rotate(&app, None).await;
    let copy_dir = tempfile::tempdir().unwrap();
    let copy = copy_dir.path().join("copy.db").to_string_lossy().into_owned();
    execute(&app, &format!("VACUUM INTO '{copy}'")).await;
    let secrets = secrets_at(Backend::Sqlite, &copy).await;
    assert_eq!(
        secrets.iter().filter(|s| s.contains("xc20p1:")).count(),
        8,
        "two signing keys, the refresh key, a TOTP secret, two generations of ID-token keys: {secrets:?}"
    );
    assert!(!secrets.iter().any(|s| s.contains("plain:")), "nothing in clear: {secrets:?}");
    let error = start(&app, &copy, None).await.expect_err("the copy alone does not start");
    assert!(error.contains("copy.db.kek") && error.contains("auth.key_encryption_key"), "{error}");
    assert!(!copy_dir.path().join("copy.db.kek").exists(), "no new key is generated beside sealed values");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_generated_key_file_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let app = TestApp::new(Backend::Sqlite).await;
    let mode = std::fs::metadata(key_file(&app)).expect("the key file beside the database").permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

on_both_backends! {
    async fn rotating_without_the_key_on_a_sealed_database_is_refused_and_changes_nothing(backend) {
        let app = app_with_secrets(backend, Some(KEK)).await;
        let before = secrets_of(&app).await;
        let settings: PoolSettings = test_figment(app.db_url()).extract_inner("databases.main").unwrap();
        for kek in [None, Some("a mistyped key-encryption key, 32+ bytes!")] {
            let config = AuthConfig { key_encryption_key: kek.map(Secret::new), ..AuthConfig::default() };
            let error = portcullis::cli::rotate_keys(&settings, &config, app.clock.now()).await.expect_err("refused");
            assert!(error.contains("auth.key_encryption_key"), "{error}");
            assert_eq!(secrets_of(&app).await, before, "nothing written");
        }
    }

    async fn a_wrong_key_changes_nothing_and_the_right_key_still_starts(backend) {
        let app = app_with_secrets(backend, Some(KEK)).await;
        // A key left in clear beside sealed ones (as a rotation without the key once wrote it).
        let seed = [7u8; 32];
        let public = ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key();
        let public = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, public.as_bytes());
        let clear = AtRest::new(None).encrypt_at_rest(&seed);
        execute(&app, &format!("INSERT INTO signing_keys (kid, generation, algorithm, private_key, public_key, \
            created_at, retired_at) VALUES ('ed25519-left-in-clear', 99, 'EdDSA', '{clear}', '{public}', 0, NULL)")).await;
        let before = secrets_of(&app).await;
        let error = start(&app, app.db_url(), Some("a mistyped key-encryption key, 32+ bytes!")).await.expect_err("a wrong key");
        assert!(error.contains("auth.key_encryption_key"), "{error}");
        assert_eq!(secrets_of(&app).await, before, "nothing written");
        start(&app, app.db_url(), Some(KEK)).await.expect("the right key starts");
        assert!(!secrets_of(&app).await.iter().any(|s| s.contains("plain:")), "and seals what was in clear");
    }

    async fn a_retired_private_key_is_deleted_once_its_tokens_have_expired(backend) {
        let app = TestApp::new(backend).await;
        let user = app.with_user().await;
        app.login(&user).await;
        let new_kid = rotate(&app, None).await;
        let kids = "SELECT kid AS value FROM signing_keys";
        assert_eq!(cells(&app, kids).await.lines().count(), 2, "the retired key verifies its tokens");
        app.clock.advance(900 + 61);
        for _ in 0..200 {
            if cells(&app, kids).await == new_kid {
                assert_eq!(jwks_kids(&app).await, vec![new_kid.clone()]);
                assert_eq!(app.me_status(&app.login(&user).await.access).await, Status::Ok);
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("the retired key is still stored: {}", cells(&app, kids).await);
    }
}
