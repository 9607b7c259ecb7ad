//! A real Portcullis, in process on a free port and a fresh SQLite file, as the issuer of the
//! tokens the app under test trusts; and the HTTP calls an operator would make to it.
#![allow(dead_code)]

pub mod proxy;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use portcullis::auth::keys::kek::AtRest;
use portcullis::auth::keys::ring::KeyRing;
use portcullis::db::DbPool;
use rocket::fairing::AdHoc;
use rocket::figment::Figment;
use rocket_db_pools::Database;
use serde_json::{json, Value};

pub const ADMIN: &str = "admin@example.com";
pub const PASSWORD: &str = "correct horse battery";
/// The app's own audience (`reports_api::AUDIENCE`): listed in Portcullis's `auth.resources`,
/// requested by [`Issuer::login`], configured as the app's `audience`.
pub const APP_AUDIENCE: &str = "https://reports.example";

/// A running Portcullis.
pub struct Issuer {
    pub base: String,
    pub port: u16,
    /// The service's keys: to sign tokens a client could not get (expired ones).
    pub keys: Arc<KeyRing>,
    pub pool: DbPool,
    pub at_rest: AtRest,
    shutdown: rocket::Shutdown,
    task: tokio::task::JoinHandle<()>,
    http: reqwest::Client,
}

fn figment(db: &Path, port: u16) -> Figment {
    portcullis::defaults()
        .merge(("log_level", "off"))
        .merge(("address", "127.0.0.1"))
        .merge(("port", port))
        .merge(("shutdown", json!({"grace": 0, "mercy": 0, "ctrlc": false})))
        .merge(("databases.main", json!({"url": db.to_string_lossy(), "max_connections": 4})))
        .merge(("auth.argon2_memory_kib", 256))
        .merge(("auth.argon2_iterations", 1))
        .merge(("auth.revocation_poll_ms", poll_ms()))
        .merge(("auth.permissions", ["reports:read", "reports:write"]))
        .merge(("auth.resources", [APP_AUDIENCE]))
        // One issuer for every start on this database: the default is built from the port, and a
        // first start on port 0 would otherwise issue tokens a restart on the real port refuses.
        .merge(("auth.issuer", "http://127.0.0.1"))
}

/// Portcullis's `revocation_poll_ms` in these tests: 50, or `PORTCULLIS_TEST_POLL_MS`.
pub fn poll_ms() -> u64 {
    std::env::var("PORTCULLIS_TEST_POLL_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(50)
}

/// A fresh database with an admin and the app's service client; returns the client's
/// `(client_id, client_secret)`.
pub async fn prepare(db: &Path) -> (String, String) {
    let rocket = portcullis::rocket(figment(db, 0)).ignite().await.expect("Portcullis ignites");
    let auth = rocket.state::<portcullis::auth::Auth>().expect("auth");
    let pool = portcullis::db::Db::fetch(&rocket).expect("db");
    portcullis::auth::accounts::create_user(
        auth,
        pool,
        ADMIN,
        PASSWORD,
        &["admin".into()],
        portcullis::auth::accounts::Creation::Operator,
    )
    .await
    .expect("admin");
    let fields = portcullis::admin::client_settings::ClientFields {
        name: Some("reports-api".into()),
        permissions: Some(vec!["feed:read".into()]),
        ..Default::default()
    };
    let client = portcullis::admin::clients::create_client_unchecked(auth, pool, &fields).await.expect("client");
    (client.client.client_id.to_string(), client.client_secret.expect("a confidential client's secret"))
}

impl Issuer {
    /// Starts Portcullis on `db`, on `port` (0: any free port). Restarting on the port of an
    /// issuer just stopped may find it still held for a moment (connections it closed itself):
    /// that is retried for up to 10 s.
    pub async fn start(db: &Path, port: u16) -> Issuer {
        for _ in 0..100 {
            if let Some(issuer) = Issuer::try_start(db, port).await {
                return issuer;
            }
            assert_ne!(port, 0, "Portcullis lifts off");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("Portcullis could not listen on port {port} again");
    }

    async fn try_start(db: &Path, port: u16) -> Option<Issuer> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let tx = std::sync::Mutex::new(Some(tx));
        let rocket = portcullis::rocket(figment(db, port)).attach(AdHoc::on_liftoff("test handles", move |rocket| {
            Box::pin(async move {
                let auth = rocket.state::<portcullis::auth::Auth>().expect("auth");
                let pool = portcullis::db::Db::fetch(rocket).expect("db");
                let handles = (
                    rocket.config().port,
                    auth.keys.clone(),
                    (**pool).clone(),
                    auth.at_rest.clone(),
                    rocket.shutdown(),
                );
                if let Some(tx) = tx.lock().unwrap().take() {
                    let _ = tx.send(handles);
                }
            })
        }));
        let task = tokio::spawn(async move {
            // A resource server's long poll still open when the issuer stops makes Rocket end
            // the connection after its grace period and report a forced shutdown; the issuer is
            // gone either way. Reading the error's kind handles it (Rocket panics on an
            // unhandled one as it is dropped).
            if let Err(e) = rocket.launch().await {
                let _ = e.kind();
            }
        });
        let (port, keys, pool, at_rest, shutdown) = rx.await.ok()?;
        Some(Issuer {
            base: format!("http://127.0.0.1:{port}"),
            port,
            keys,
            pool,
            at_rest,
            shutdown,
            task,
            http: reqwest::Client::new(),
        })
    }

    /// Stops it and waits until it has let go of its port.
    pub async fn stop(self) {
        self.shutdown.notify();
        let _ = self.task.await;
    }

    /// Signs `email` in for the app: a session whose tokens are for [`APP_AUDIENCE`].
    pub async fn login(&self, email: &str) -> Value {
        self.login_for(email, Some(APP_AUDIENCE)).await
    }

    /// Signs `email` in for `resource`, or for Portcullis itself without one.
    pub async fn login_for(&self, email: &str, resource: Option<&str>) -> Value {
        let mut body = json!({"email": email, "password": PASSWORD});
        if let Some(resource) = resource {
            body["resource"] = json!(resource);
        }
        let response = self.http.post(format!("{}/auth/login", self.base)).json(&body).send().await.unwrap();
        assert_eq!(response.status(), 200, "login {email}");
        response.json().await.unwrap()
    }

    /// Signs `email` in for the app with `scope`: a down-scoped session.
    pub async fn login_scoped(&self, email: &str, scope: &str) -> Value {
        let body = json!({"email": email, "password": PASSWORD, "resource": APP_AUDIENCE, "scope": scope});
        let response = self.http.post(format!("{}/auth/login", self.base)).json(&body).send().await.unwrap();
        assert_eq!(response.status(), 200, "login {email} with scope {scope}");
        response.json().await.unwrap()
    }

    /// Exchanges `refresh_token`, naming `resource` when given.
    pub async fn refresh_for(&self, refresh_token: &str, resource: Option<&str>) -> Value {
        let mut body = json!({"refresh_token": refresh_token});
        if let Some(resource) = resource {
            body["resource"] = json!(resource);
        }
        let response = self.http.post(format!("{}/auth/refresh", self.base)).json(&body).send().await.unwrap();
        assert_eq!(response.status(), 200, "refresh");
        response.json().await.unwrap()
    }

    /// An access token of `email` for the app.
    pub async fn token(&self, email: &str) -> String {
        self.login(email).await["access_token"].as_str().unwrap().to_owned()
    }

    /// An access token of `email` for Portcullis itself (its `/admin` API, its own account).
    pub async fn portcullis_token(&self, email: &str) -> String {
        self.login_for(email, None).await["access_token"].as_str().unwrap().to_owned()
    }

    /// Ends the session of `token` (access or refresh) as its client would: RFC 7009 revocation,
    /// which works for tokens of any audience.
    pub async fn revoke(&self, token: &str) {
        let response =
            self.http.post(format!("{}/oauth/revoke", self.base)).form(&[("token", token)]).send().await.unwrap();
        assert_eq!(response.status(), 200, "revoke");
    }

    /// Sends `method path` with `body` as `token`; returns the status and the body.
    pub async fn call(&self, method: reqwest::Method, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.base)).bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// `GET path` with `authorization` as the header, if any: status, `WWW-Authenticate`, body.
    pub async fn get_raw(&self, path: &str, authorization: Option<&str>) -> (u16, Option<String>, Value) {
        let mut request = self.http.get(format!("{}{path}", self.base));
        if let Some(value) = authorization {
            request = request.header("Authorization", value);
        }
        let response = request.send().await.unwrap();
        let challenge = response.headers().get("WWW-Authenticate").and_then(|v| v.to_str().ok()).map(str::to_owned);
        (response.status().as_u16(), challenge, response.json().await.unwrap_or(Value::Null))
    }

    /// A user `email` with `roles`, created by the admin; returns the user id.
    pub async fn user_with_roles(&self, admin: &str, email: &str, roles: &[&str]) -> String {
        let response = self
            .http
            .post(format!("{}/auth/register", self.base))
            .json(&json!({"email": email, "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "register {email}");
        let id = response.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
        let (status, _) = self
            .call(reqwest::Method::PUT, &format!("/admin/users/{id}/roles"), admin, Some(json!({"roles": roles})))
            .await;
        assert_eq!(status, 200, "roles of {email}");
        id
    }

    pub async fn role(&self, admin: &str, name: &str, permissions: &[&str]) {
        let body = json!({"name": name, "description": name, "permissions": permissions});
        let (status, _) = self.call(reqwest::Method::POST, "/admin/roles", admin, Some(body.clone())).await;
        if status == 409 {
            let (status, _) = self.call(reqwest::Method::PUT, &format!("/admin/roles/{name}"), admin, Some(body)).await;
            assert_eq!(status, 200, "update role {name}");
        } else {
            assert_eq!(status, 201, "create role {name}");
        }
    }
}

/// A fresh directory with a prepared database.
pub struct World {
    pub dir: tempfile::TempDir,
    pub client_id: String,
    pub client_secret: String,
}

impl World {
    pub async fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let (client_id, client_secret) = prepare(&dir.path().join("portcullis.db")).await;
        World { dir, client_id, client_secret }
    }

    pub fn db(&self) -> PathBuf {
        self.dir.path().join("portcullis.db")
    }

    /// The app's configuration against `issuer`.
    pub fn app_figment(&self, issuer: &Issuer, max_staleness: u64) -> Figment {
        rocket::Config::figment().merge(("log_level", "off")).merge((
            "portcullis",
            json!({
                "url": issuer.base, "client_id": self.client_id, "client_secret": self.client_secret,
                "max_staleness": max_staleness, "jwks_min_interval_ms": 200, "audience": APP_AUDIENCE,
            }),
        ))
    }
}

/// Polls `check` every 10 ms until it holds; panics after `limit`. Returns the time it took.
pub async fn within<F, Fut>(limit: Duration, what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    loop {
        if check().await {
            return started.elapsed();
        }
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
