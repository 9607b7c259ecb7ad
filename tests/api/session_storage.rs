//! Rule 6 (v2): a session's storage does not grow with its exchanges, reuse of any earlier
//! token (the first included) is still detected, and refresh tokens of the older format (random,
//! hashed in `refresh_tokens`) keep working until they expire or rotate.

use crate::admin_support::{get_json, with_admin};
use crate::helpers::*;
use crate::on_both_backends;
use diesel::sql_types::{BigInt, Text};
use diesel::QueryableByName;
use diesel_async::RunQueryDsl;
use portcullis::db::Id;
use rocket::http::Status;
use rocket_db_pools::{Database, Pool};

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Rows in every table of the database (migration bookkeeping aside).
pub async fn database_rows(app: &TestApp) -> i64 {
    let db = portcullis::db::Db::fetch(app.client.rocket()).expect("db");
    let mut conn = db.get().await.expect("connection");
    let catalog = match app.backend {
        Backend::Sqlite => "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
        Backend::Postgres => {
            "SELECT table_name::text AS name FROM information_schema.tables WHERE table_schema = 'public'"
        }
    };
    portcullis::db::with_conn!(conn, |c| {
        let tables: Vec<Name> = diesel::sql_query(catalog).load(c).await.expect("catalog");
        let mut total = 0;
        for table in tables.iter().filter(|t| t.name != "__diesel_schema_migrations") {
            let sql = format!("SELECT COUNT(*) AS n FROM {}", table.name);
            let count: Count = diesel::sql_query(sql).get_result(c).await.expect("count");
            total += count.n;
        }
        total
    })
}

async fn refresh_ok(app: &TestApp, refresh: &str) -> Tokens {
    let response = app.refresh_response(refresh).await;
    assert_eq!(response.status(), Status::Ok);
    tokens(response).await
}

/// Exchanges `count` times in a row, a quarter of an hour apart; returns the last pair.
async fn refresh_many(app: &TestApp, from: &Tokens, count: usize) -> Tokens {
    let mut current = from.clone();
    for _ in 0..count {
        app.clock.advance(900);
        current = refresh_ok(app, &current.refresh).await;
    }
    current
}

on_both_backends! {
    async fn a_session_holds_a_constant_number_of_rows_however_often_it_refreshes(backend) {
        let app = TestApp::builder(backend).with_config("session_max_age", 10_000_000).build().await;
        let user = app.with_user().await;
        let first = app.login(&user).await;
        let before = database_rows(&app).await;
        let after_ten = refresh_many(&app, &first, 10).await;
        assert_eq!(database_rows(&app).await, before, "ten exchanges add no row");
        let last = refresh_many(&app, &after_ten, 2000).await;
        assert_eq!(database_rows(&app).await, before, "nor do two thousand");
        assert_eq!(app.me_status(&last.access).await, Status::Ok);
    }

    async fn reuse_of_the_first_token_after_a_thousand_exchanges_ends_the_session(backend) {
        let app = TestApp::builder(backend).with_config("session_max_age", 10_000_000).build().await;
        let user = app.with_user().await;
        let first = app.login(&user).await;
        let last = refresh_many(&app, &first, 1000).await;
        let (status, code) = error_of(app.refresh_response(&first.refresh).await).await;
        assert_eq!((status, code.as_str()), (Status::Unauthorized, "invalid_grant"));
        let (status, _) = error_of(app.refresh_response(&last.refresh).await).await;
        assert_eq!(status, Status::Unauthorized, "the newest token of the family dies with it");
        assert_eq!(app.me_status(&last.access).await, Status::Unauthorized);
        let (_, admin) = with_admin(&app).await;
        let audit = get_json(&app, "/admin/audit?event=refresh_reuse_detected", &admin.access).await;
        assert_eq!(audit["events"].as_array().unwrap().len(), 1, "{audit}");
    }

    async fn a_forged_or_altered_refresh_token_is_unknown_and_harms_nothing(backend) {
        let app = TestApp::new(backend).await;
        let user = app.with_user().await;
        let first = app.login(&user).await;
        // The same session and generation under another key.
        let forged = portcullis::auth::session::chain::ChainKey::new(b"not the key of this server at all")
            .mint(first.session_id.parse::<Id>().unwrap(), 1);
        let (status, code) = error_of(app.refresh_response(&forged).await).await;
        assert_eq!((status, code.as_str()), (Status::Unauthorized, "invalid_grant"));
        refresh_ok(&app, &first.refresh).await;
    }

    async fn only_the_current_token_or_a_grace_replay_counts_as_live_for_introspection(backend) {
        let app = TestApp::builder(backend).with_config("reuse_grace", 10).build().await;
        let user = app.with_user().await;
        let first = app.login(&user).await;
        assert!(live_session(&app, &first.refresh).await);
        let second = refresh_ok(&app, &first.refresh).await;
        assert!(live_session(&app, &first.refresh).await, "a replay would still be answered");
        assert!(live_session(&app, &second.refresh).await);
        app.clock.advance(11);
        assert!(!live_session(&app, &first.refresh).await, "spent");
        assert!(live_session(&app, &second.refresh).await, "asking ends nothing");
        assert!(!live_session(&app, "not-a-token").await);
    }

    async fn refresh_tokens_of_the_older_format_keep_working_and_rotate_into_the_new_one(backend) {
        let app = TestApp::builder(backend).with_config("reuse_grace", 10).build().await;
        let user = app.with_user().await;
        let login = app.login(&user).await;
        let legacy = insert_legacy_token(&app, &login.session_id, 1000).await;
        let next = refresh_ok(&app, &legacy).await;
        assert_eq!(next.session_id, login.session_id);
        assert_eq!(next.refresh.len(), 76, "the answer is a token of the new format");
        let after = refresh_ok(&app, &next.refresh).await;
        // The spent older token is still recognised: replayed after the interval, it is reuse.
        app.clock.advance(11);
        let (status, code) = error_of(app.refresh_response(&legacy).await).await;
        assert_eq!((status, code.as_str()), (Status::Unauthorized, "invalid_grant"));
        assert_eq!(app.refresh_response(&after.refresh).await.status(), Status::Unauthorized);
        assert_eq!(app.me_status(&after.access).await, Status::Unauthorized);
    }
}

/// Writes a refresh token as the service did before the new format (a random token whose
/// SHA-256 is kept in `refresh_tokens`) for `session`, expiring in `ttl` seconds; returns it.
pub async fn insert_legacy_token(app: &TestApp, session: &str, ttl: i64) -> String {
    use portcullis::auth::secrets::OpaqueToken;
    use portcullis::models::{NewRefreshToken, RefreshTokenStore};
    let db = portcullis::db::Db::fetch(app.client.rocket()).expect("db");
    let mut conn = db.get().await.expect("connection");
    let token = OpaqueToken::generate();
    let now = app.clock.now();
    let row = NewRefreshToken {
        id: Id::new(),
        session_id: session.parse().unwrap(),
        token_hash: token.hash(),
        created_at: now,
        expires_at: now + ttl,
    };
    portcullis::db::with_conn!(conn, |c| c.insert_refresh_token(&row).await).expect("insert");
    token.into_plaintext()
}

/// Whether the service counts `token` as a live refresh token (what introspection asks).
async fn live_session(app: &TestApp, token: &str) -> bool {
    let auth = app.client.rocket().state::<portcullis::auth::Auth>().unwrap();
    let db = portcullis::db::Db::fetch(app.client.rocket()).expect("db");
    let mut conn = db.get().await.expect("connection");
    auth.live_refresh_session(&mut conn, token).await.expect("lookup").is_some()
}
