//! `TestApp`: the whole service over Rocket's local asynchronous client, on a fresh database
//! per test (see [`crate::test_db`]); [`eventually`] for what comes true in the background.

use std::time::Duration;

use portcullis::clock::Clock;
use rocket::figment::Figment;
use rocket::http::{ContentType, Header, Status};
use rocket::local::asynchronous::{Client, LocalRequest, LocalResponse};
use serde_json::{json, Value};

pub use crate::test_db::{postgres_admin_url, postgres_or_skip, Backend, TestDb};

pub const PASSWORD: &str = "correct horse battery";

/// The PgBouncer (transaction pooling) the service reaches PostgreSQL through in tests, if
/// configured: `PORTCULLIS_TEST_PGBOUNCER_URL` is its URL for the server of
/// `PORTCULLIS_TEST_POSTGRES_URL` (`postgres://postgres@127.0.0.1:6432/postgres`). The tests
/// themselves still create, inspect and drop databases directly. `.ci/run` runs the PostgreSQL
/// tests once more through a PgBouncer it starts.
pub fn pgbouncer_url() -> Option<String> {
    std::env::var("PORTCULLIS_TEST_PGBOUNCER_URL").ok().filter(|u| !u.trim().is_empty())
}

/// `url` (a test database) as reached through the pooler of `pooler_url`.
pub fn through_pooler(pooler_url: &str, url: &str) -> String {
    let name = url.rsplit_once('/').map(|(_, name)| name).unwrap_or(url);
    format!("{}/{name}", server_of(pooler_url))
}

/// The part of a PostgreSQL URL before the database name.
fn server_of(url: &str) -> &str {
    url.rsplit_once('/').map(|(base, _)| base).unwrap_or(url)
}

/// `databases.main` for a test database at `url`: behind the test PgBouncer when there is one
/// and `url` is on its server (with the direct URL for `LISTEN`), else directly.
fn main_database(url: &str) -> Value {
    let on_test_server = postgres_admin_url().is_some_and(|admin| url.starts_with(&format!("{}/", server_of(&admin))));
    match pgbouncer_url() {
        Some(pooler) if on_test_server => json!({
            "url": through_pooler(&pooler, url),
            "max_connections": 4,
            "pool_mode": "transaction",
            "direct_url": url,
        }),
        _ => json!({"url": url, "max_connections": 4}),
    }
}

/// The figment tests start from: cheap argon2 parameters, a small pool, quiet logs, and no
/// registration limit (tests register many accounts from one address; the limit has its own).
pub fn test_figment(url: &str) -> Figment {
    test_figment_on(portcullis::figment(), url)
}

/// [`test_figment`] over `base` instead of `Rocket.toml` and the environment.
pub fn test_figment_on(base: Figment, url: &str) -> Figment {
    test_figment_with(base, main_database(url))
}

/// [`test_figment_on`] with `database` as the whole `databases.main` table.
pub fn test_figment_with(base: Figment, database: Value) -> Figment {
    base.merge(("log_level", "off"))
        .merge(("access_log", false))
        .merge(("databases.main", database))
        .merge(("auth.argon2_memory_kib", 256))
        .merge(("auth.argon2_iterations", 1))
        .merge(("auth.revocation_poll_ms", 50))
        .merge(("auth.registrations_per_address_per_hour", 0))
}

/// Builds a [`TestApp`].
pub struct TestAppBuilder {
    backend: Backend,
    config: Vec<(String, Value)>,
    db: Option<TestDb>,
    without_config_file: bool,
    database: Option<Value>,
}

impl TestAppBuilder {
    /// Sets `auth.<key>` (or any other key when it contains a dot).
    pub fn with_config(mut self, key: &str, value: impl Into<Value>) -> Self {
        let key = if key.contains('.') { key.to_owned() } else { format!("auth.{key}") };
        self.config.push((key, value.into()));
        self
    }

    /// Sets a top-level Rocket key such as `ip_header`.
    pub fn with_rocket_config(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.config.push((key.to_owned(), value.into()));
        self
    }

    /// Builds the app as an installed binary started away from the shipped `Rocket.toml` would be:
    /// from the built-in defaults only.
    pub fn without_config_file(mut self) -> Self {
        self.without_config_file = true;
        self
    }

    /// Uses `database` as the whole `databases.main` table (its `url` naming the test
    /// database's server some other way, such as through a pooler).
    pub fn with_database(mut self, database: Value) -> Self {
        self.database = Some(database);
        self
    }

    /// Runs the app on `db` (e.g. one prepared by the command line) instead of a fresh one.
    pub fn with_db(mut self, db: TestDb) -> Self {
        self.db = Some(db);
        self
    }

    pub async fn build(self) -> TestApp {
        let db = match self.db {
            Some(db) => db,
            None => TestDb::migrated(self.backend).await,
        };
        let clock = Clock::frozen();
        let base = if self.without_config_file { portcullis::defaults() } else { portcullis::figment() };
        let database = self.database.unwrap_or_else(|| main_database(db.url()));
        let mut figment = test_figment_with(base, database);
        for (key, value) in self.config {
            figment = figment.merge((key, value));
        }
        let rocket = portcullis::rocket(figment).manage(clock.clone());
        let client = Client::tracked(rocket).await.expect("the service starts");
        TestApp { client, clock, backend: self.backend, db: Some(db) }
    }
}

/// The service on a fresh database, with a controllable clock.
pub struct TestApp {
    pub client: Client,
    pub clock: Clock,
    pub backend: Backend,
    db: Option<TestDb>,
}

/// An account created through the API.
#[derive(Debug, Clone)]
pub struct TestUser {
    pub id: String,
    pub email: String,
    pub password: String,
}

/// A parsed token response.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub access: String,
    pub refresh: String,
    pub session_id: String,
    pub body: Value,
}

impl TestApp {
    pub fn builder(backend: Backend) -> TestAppBuilder {
        TestAppBuilder { backend, config: vec![], db: None, without_config_file: false, database: None }
    }

    pub async fn new(backend: Backend) -> TestApp {
        Self::builder(backend).build().await
    }

    /// A second instance of the service on the same database (its own memory, the same clock).
    pub async fn second_instance(&self, configure: impl FnOnce(TestAppBuilder) -> TestAppBuilder) -> TestApp {
        let url = self.db_url().to_owned();
        let builder = configure(TestAppBuilder {
            backend: self.backend,
            config: vec![],
            db: None,
            without_config_file: false,
            database: None,
        });
        // Instances share time, as machines synchronised by NTP do.
        let clock = self.clock.clone();
        let mut figment = test_figment(&url);
        for (key, value) in builder.config {
            figment = figment.merge((key, value));
        }
        let client = Client::tracked(portcullis::rocket(figment).manage(clock.clone())).await.expect("second instance");
        TestApp { client, clock, backend: self.backend, db: None }
    }

    pub fn db_url(&self) -> &str {
        self.db.as_ref().map(|d| d.url()).unwrap_or_default()
    }

    pub async fn register(&self, email: &str, password: &str) -> LocalResponse<'_> {
        self.post("/auth/register", json!({"email": email, "password": password})).await
    }

    /// Registers `email` with [`PASSWORD`].
    pub async fn with_user_email(&self, email: &str) -> TestUser {
        let response = self.register(email, PASSWORD).await;
        assert_eq!(response.status(), Status::Created, "registering {email}");
        let body: Value = response.into_json().await.expect("user json");
        TestUser { id: body["id"].as_str().unwrap().to_owned(), email: email.to_owned(), password: PASSWORD.to_owned() }
    }

    /// Registers `alice@example.com`.
    pub async fn with_user(&self) -> TestUser {
        self.with_user_email("alice@example.com").await
    }

    pub async fn login_response(&self, email: &str, password: &str) -> LocalResponse<'_> {
        self.post("/auth/login", json!({"email": email, "password": password})).await
    }

    /// Logs in and returns the token pair; panics unless 200.
    pub async fn login(&self, user: &TestUser) -> Tokens {
        let response = self.login_response(&user.email, &user.password).await;
        assert_eq!(response.status(), Status::Ok, "login of {}", user.email);
        tokens(response).await
    }

    pub async fn refresh_response(&self, refresh_token: &str) -> LocalResponse<'_> {
        self.post("/auth/refresh", json!({"refresh_token": refresh_token})).await
    }

    pub fn json_request<'c>(&'c self, request: LocalRequest<'c>, body: Value) -> LocalRequest<'c> {
        request.header(ContentType::JSON).body(body.to_string())
    }

    pub async fn post(&self, path: &str, body: Value) -> LocalResponse<'_> {
        self.json_request(self.client.post(path.to_owned()), body).dispatch().await
    }

    /// A request with `Authorization: Bearer <token>`.
    pub fn authed<'c>(&'c self, request: LocalRequest<'c>, token: &str) -> LocalRequest<'c> {
        request.header(Header::new("Authorization", format!("Bearer {token}")))
    }

    pub async fn get_authed(&self, path: &str, token: &str) -> LocalResponse<'_> {
        self.authed(self.client.get(path.to_owned()), token).dispatch().await
    }

    pub async fn post_authed(&self, path: &str, token: &str, body: Value) -> LocalResponse<'_> {
        let request = self.authed(self.client.post(path.to_owned()), token);
        self.json_request(request, body).dispatch().await
    }

    pub async fn delete_authed(&self, path: &str, token: &str) -> LocalResponse<'_> {
        self.authed(self.client.delete(path.to_owned()), token).dispatch().await
    }

    pub async fn put_authed(&self, path: &str, token: &str, body: Value) -> LocalResponse<'_> {
        let request = self.authed(self.client.put(path.to_owned()), token);
        self.json_request(request, body).dispatch().await
    }

    /// The status of `GET /users/me` with `token`.
    pub async fn me_status(&self, token: &str) -> Status {
        self.get_authed("/users/me", token).await.status()
    }
}

/// Parses a token response.
pub async fn tokens(response: LocalResponse<'_>) -> Tokens {
    let body: Value = response.into_json().await.expect("token json");
    Tokens {
        access: body["access_token"].as_str().expect("access_token").to_owned(),
        refresh: body["refresh_token"].as_str().expect("refresh_token").to_owned(),
        session_id: body["session_id"].as_str().expect("session_id").to_owned(),
        body,
    }
}

/// Asserts the contract's error shape and returns `(status, error code)`.
pub async fn error_of(response: LocalResponse<'_>) -> (Status, String) {
    let (status, code, _) = error_with_description(response).await;
    (status, code)
}

/// Like [`error_of`], also returning the `error_description`.
pub async fn error_with_description(response: LocalResponse<'_>) -> (Status, String, String) {
    let status = response.status();
    assert_eq!(response.content_type(), Some(ContentType::JSON), "error bodies are JSON");
    let body: Value = response.into_json().await.expect("error json");
    let code = body["error"].as_str().expect("error field").to_owned();
    let description = body["error_description"].as_str().unwrap_or_else(|| panic!("error_description present: {body}"));
    (status, code, description.to_owned())
}

/// Polls `condition` until it holds, for at most ten seconds, then panics saying `what` never
/// happened. The bound only keeps a broken build from hanging the suite: what a test asserts is
/// that the condition comes true, not how fast.
pub async fn eventually(what: &str, condition: impl AsyncFnMut() -> bool) {
    eventually_within(Duration::from_secs(10), what, condition).await
}

/// [`eventually`] with another bound, for what waits on something slower than the service
/// (a PostgreSQL server starting).
pub async fn eventually_within(bound: Duration, what: &str, mut condition: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + bound;
    while !condition().await {
        assert!(tokio::time::Instant::now() < deadline, "not within {bound:?}: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs each test body on SQLite and on PostgreSQL, as `<name>::sqlite` and `<name>::postgres`.
#[macro_export]
macro_rules! on_both_backends {
    ($(async fn $name:ident($backend:ident) $body:block)*) => {$(
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn __test_body($backend: $crate::helpers::Backend) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                __test_body($crate::helpers::Backend::Sqlite).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if $crate::helpers::postgres_or_skip(module_path!()) {
                    __test_body($crate::helpers::Backend::Postgres).await
                }
            }
        }
    )*};
}
