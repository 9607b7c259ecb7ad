//! The foundation: health, the error shape of every status, migrations, SQLite pragmas, the
//! behaviour without a database and the generated signing key shared through the database.

use crate::helpers::*;
use crate::on_both_backends;
use diesel::sql_types::{BigInt, Text};
use diesel::QueryableByName;
use diesel_async::RunQueryDsl;
use portcullis::db::{Db, DbConn};
use rocket::http::{ContentType, Status};
use rocket_db_pools::{Database, Pool};
use serde_json::{json, Value};

/// `limits.json` in `Rocket.toml`.
const JSON_LIMIT: usize = 64 * 1024;

/// The pool of the running app.
fn pool(app: &TestApp) -> &Db {
    Db::fetch(app.client.rocket()).expect("the database pool is managed")
}

#[derive(QueryableByName)]
struct JournalMode {
    #[diesel(sql_type = Text)]
    journal_mode: String,
}

#[derive(QueryableByName)]
struct BusyTimeout {
    #[diesel(sql_type = BigInt)]
    timeout: i64,
}

#[derive(QueryableByName)]
struct ForeignKeys {
    #[diesel(sql_type = BigInt)]
    foreign_keys: i64,
}

#[derive(QueryableByName)]
struct Synchronous {
    #[diesel(sql_type = BigInt)]
    synchronous: i64,
}

on_both_backends! {
    async fn health_live_and_ready_answer_ok(backend) {
        let app = TestApp::new(backend).await;
        let live = app.client.get("/health/live").dispatch().await;
        assert_eq!(live.status(), Status::Ok);
        assert_eq!(live.into_json::<Value>().await.unwrap(), json!({"status": "ok"}));
        let ready = app.client.get("/health/ready").dispatch().await;
        assert_eq!(ready.status(), Status::Ok);
        assert_eq!(ready.into_json::<Value>().await.unwrap(), json!({"status": "ok"}));
    }

    async fn unknown_routes_get_a_json_404(backend) {
        let app = TestApp::new(backend).await;
        let (status, code) = error_of(app.client.get("/no/such/route").dispatch().await).await;
        assert_eq!((status, code.as_str()), (Status::NotFound, "not_found"));
        let (status, code) = error_of(app.client.post("/no/such/route").dispatch().await).await;
        assert_eq!((status, code.as_str()), (Status::NotFound, "not_found"));
    }

    async fn malformed_json_gets_400_invalid_request(backend) {
        let app = TestApp::new(backend).await;
        let response = app
            .client
            .post("/auth/login")
            .header(ContentType::JSON)
            .body(r#"{"email": "alice@example.com", "password": "#)
            .dispatch()
            .await;
        let (status, code) = error_of(response).await;
        assert_eq!((status, code.as_str()), (Status::BadRequest, "invalid_request"));
    }

    async fn a_missing_field_gets_400_invalid_request(backend) {
        let app = TestApp::new(backend).await;
        let (status, code) = error_of(app.post("/auth/login", json!({"email": "alice@example.com"})).await).await;
        assert_eq!((status, code.as_str()), (Status::BadRequest, "invalid_request"));
        let (status, code) = error_of(app.post("/auth/register", json!({"password": PASSWORD})).await).await;
        assert_eq!((status, code.as_str()), (Status::BadRequest, "invalid_request"));
    }

    async fn a_wrong_content_type_gets_400_invalid_request(backend) {
        let app = TestApp::new(backend).await;
        let body = json!({"email": "alice@example.com", "password": PASSWORD}).to_string();
        for content_type in [ContentType::Plain, ContentType::Form] {
            let response =
                app.client.post("/auth/login").header(content_type.clone()).body(body.clone()).dispatch().await;
            let (status, code) = error_of(response).await;
            assert_eq!((status, code.as_str()), (Status::BadRequest, "invalid_request"), "{content_type}");
        }
    }

    async fn oversized_bodies_get_413_payload_too_large(backend) {
        let app = TestApp::new(backend).await;
        let huge = "x".repeat(JSON_LIMIT + 1);
        let response = app.register("alice@example.com", &huge).await;
        let (status, code) = error_of(response).await;
        assert_eq!((status, code.as_str()), (Status::PayloadTooLarge, "payload_too_large"));
        // The limit is the service's default, not only the shipped Rocket.toml's.
        let bare = TestApp::builder(backend).without_config_file().build().await;
        let (status, _) = error_of(bare.register("alice@example.com", &huge).await).await;
        assert_eq!(status, Status::PayloadTooLarge, "without a Rocket.toml");

        // Just under the limit the body is read, and the password is rejected on its merits.
        let big = "x".repeat(JSON_LIMIT - 100);
        let (status, code, description) = error_with_description(app.register("alice@example.com", &big).await).await;
        assert_eq!((status, code.as_str()), (Status::UnprocessableEntity, "invalid_request"));
        assert!(description.contains("password"), "{description}");
    }

    async fn invalid_values_get_422_naming_the_field(backend) {
        let app = TestApp::new(backend).await;
        let (status, code, description) = error_with_description(app.register("not-an-email", PASSWORD).await).await;
        assert_eq!((status, code.as_str()), (Status::UnprocessableEntity, "invalid_request"));
        assert!(description.contains("email"), "{description}");

        let (status, code, description) = error_with_description(app.register("alice@example.com", "short").await).await;
        assert_eq!((status, code.as_str()), (Status::UnprocessableEntity, "invalid_request"));
        assert!(description.contains("password"), "{description}");

        let too_long = "p".repeat(129);
        let (status, code, description) = error_with_description(app.register("alice@example.com", &too_long).await).await;
        assert_eq!((status, code.as_str()), (Status::UnprocessableEntity, "invalid_request"));
        assert!(description.contains("password"), "{description}");
    }

    async fn a_missing_token_gets_401_with_a_bare_bearer_challenge(backend) {
        let app = TestApp::new(backend).await;
        let response = app.client.get("/users/me").dispatch().await;
        assert_eq!(response.headers().get("WWW-Authenticate").collect::<Vec<_>>(), vec!["Bearer"]);
        let (status, code) = error_of(response).await;
        assert_eq!((status, code.as_str()), (Status::Unauthorized, "invalid_token"));
    }

    async fn migrations_reapplied_are_a_no_op(backend) {
        // On an empty database, so the service's start-up applies them first, for real.
        let app = TestApp::builder(backend).with_db(TestDb::empty(backend).await).build().await;
        let applied = portcullis::db::run_migrations(app.db_url()).await.expect("migrations run again");
        assert_eq!(applied, Vec::<String>::new());
        // And the database still works.
        let user = app.with_user().await;
        app.login(&user).await;
    }

    async fn sqlite_pragmas_are_in_force_on_pooled_connections(backend) {
        if backend == Backend::Postgres {
            return;
        }
        let app = TestApp::new(backend).await;
        let db = pool(&app);
        let mut held = Vec::new();
        for _ in 0..3 {
            held.push(db.get().await.expect("a pooled connection"));
        }
        for conn in &mut held {
            let DbConn::Sqlite(c) = conn else { panic!("an SQLite connection") };
            let c = &mut **c;
            let mode: JournalMode = diesel::sql_query("PRAGMA journal_mode").get_result(c).await.unwrap();
            assert_eq!(mode.journal_mode.to_lowercase(), "wal");
            let busy: BusyTimeout = diesel::sql_query("PRAGMA busy_timeout").get_result(c).await.unwrap();
            assert_eq!(busy.timeout, 5000);
            let fk: ForeignKeys = diesel::sql_query("PRAGMA foreign_keys").get_result(c).await.unwrap();
            assert_eq!(fk.foreign_keys, 1);
            let sync: Synchronous = diesel::sql_query("PRAGMA synchronous").get_result(c).await.unwrap();
            assert_eq!(sync.synchronous, 1, "synchronous = NORMAL");
        }
    }

    async fn ready_is_503_unavailable_once_the_pool_is_closed(backend) {
        let app = TestApp::new(backend).await;
        pool(&app).shutdown().await;
        let (status, code) = error_of(app.client.get("/health/ready").dispatch().await).await;
        assert_eq!((status, code.as_str()), (Status::ServiceUnavailable, "unavailable"));
        assert_eq!(app.client.get("/health/live").dispatch().await.status(), Status::Ok);
        let (status, code) = error_of(app.login_response("alice@example.com", PASSWORD).await).await;
        assert_eq!((status, code.as_str()), (Status::ServiceUnavailable, "unavailable"));
    }

    async fn a_dropped_postgres_database_gives_503_unavailable_not_a_panic(backend) {
        if backend == Backend::Sqlite {
            return;
        }
        let app = TestApp::new(backend).await;
        let user = app.with_user().await;
        // Put a connection in the pool that will be dead once the database is gone, and hold
        // another one as a request in flight would.
        assert_eq!(app.client.get("/health/ready").dispatch().await.status(), Status::Ok);
        let mut in_flight = pool(&app).get().await.expect("a pooled connection");

        let name = app.db_url().rsplit_once('/').expect("a database name").1.to_owned();
        let admin_url = postgres_admin_url().expect("PORTCULLIS_TEST_POSTGRES_URL");
        let mut admin = <diesel_async::AsyncPgConnection as diesel_async::AsyncConnection>::establish(&admin_url)
            .await
            .expect("admin connection");
        diesel_async::SimpleAsyncConnection::batch_execute(&mut admin, &format!("DROP DATABASE {name} WITH (FORCE)"))
            .await
            .expect("drop the database");

        // A query on a connection the server closed is reported as 503, not 500.
        let DbConn::Pg(c) = &mut in_flight else { panic!("a PostgreSQL connection") };
        let lost = diesel::sql_query("SELECT 1").execute(&mut **c).await.expect_err("the database is gone");
        let error = portcullis::error::ApiError::from(lost);
        assert_eq!((error.status, error.code), (Status::ServiceUnavailable, portcullis::error::ErrorCode::Unavailable));
        drop(in_flight);

        for _ in 0..2 {
            let (status, code) = error_of(app.client.get("/health/ready").dispatch().await).await;
            assert_eq!((status, code.as_str()), (Status::ServiceUnavailable, "unavailable"));
        }
        assert_eq!(app.client.get("/health/live").dispatch().await.status(), Status::Ok);
        for _ in 0..3 {
            let (status, code) = error_of(app.login_response(&user.email, &user.password).await).await;
            assert_eq!((status, code.as_str()), (Status::ServiceUnavailable, "unavailable"));
        }
    }

    async fn a_generated_signing_key_is_shared_through_the_database(backend) {
        let app = TestApp::new(backend).await;
        let other = app.second_instance(|b| b).await;

        let user = app.with_user().await;
        let tokens = app.login(&user).await;
        let me = other.get_authed("/users/me", &tokens.access).await;
        assert_eq!(me.status(), Status::Ok);
        let me: Value = me.into_json().await.unwrap();
        assert_eq!(me["id"], json!(user.id));

        let bob = other.with_user_email("bob@example.com").await;
        let tokens = other.login(&bob).await;
        assert_eq!(app.me_status(&tokens.access).await, Status::Ok);
    }
}
