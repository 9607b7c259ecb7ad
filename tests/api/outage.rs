//! PostgreSQL outages, on a throwaway cluster this test starts and stops itself (never the
//! shared one): 503 `unavailable` with `Retry-After` within `connect_timeout`, bearer-only
//! endpoints keep answering, and the service recovers by itself once the database is back.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::helpers::*;
use crate::shutdown::free_port;
use rocket::http::Status;
use rocket::local::asynchronous::LocalResponse;

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";
/// `databases.main.connect_timeout` of the app under test.
const CONNECT_TIMEOUT: u64 = 2;

/// A PostgreSQL cluster in a temporary directory, run as the `postgres` user on its own port.
struct ThrowawayCluster {
    dir: tempfile::TempDir,
    port: u16,
}

fn as_postgres(program: &str, args: &[&str]) -> std::process::Output {
    Command::new("runuser")
        .args(["-u", "postgres", "--", &format!("{PG_BIN}/{program}")])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"))
}

impl ThrowawayCluster {
    /// `None` where it cannot run: no PostgreSQL 15 binaries, not root, no `postgres` user.
    fn create() -> Option<ThrowawayCluster> {
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        if !root || !Path::new(PG_BIN).join("initdb").exists() {
            eprintln!("skipped: the outage test needs root and {PG_BIN}");
            return None;
        }
        let id = |flag: &str| -> Option<u32> {
            let out = Command::new("id").args([flag, "postgres"]).output().ok()?;
            String::from_utf8_lossy(&out.stdout).trim().parse().ok()
        };
        let (uid, gid) = (id("-u")?, id("-g")?);
        let dir = tempfile::tempdir().expect("temp dir");
        std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).expect("chown");
        let data = dir.path().join("data");
        let init = as_postgres("initdb", &["-D", data.to_str().unwrap(), "-A", "trust", "-U", "postgres", "--no-sync"]);
        assert!(init.status.success(), "initdb: {}", String::from_utf8_lossy(&init.stderr));
        let cluster = ThrowawayCluster { dir, port: free_port() };
        cluster.start();
        Some(cluster)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn start(&self) {
        let options =
            format!("-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off", self.port, self.dir.path().display());
        let log = self.dir.path().join("log");
        let out = as_postgres(
            "pg_ctl",
            &["-D", self.data().to_str().unwrap(), "-o", &options, "-l", log.to_str().unwrap(), "-w", "start"],
        );
        assert!(out.status.success(), "pg_ctl start: {}", String::from_utf8_lossy(&out.stderr));
    }

    fn stop(&self) {
        let out = as_postgres("pg_ctl", &["-D", self.data().to_str().unwrap(), "-m", "fast", "-w", "stop"]);
        assert!(out.status.success(), "pg_ctl stop: {}", String::from_utf8_lossy(&out.stderr));
    }
}

impl Drop for ThrowawayCluster {
    fn drop(&mut self) {
        let _ = as_postgres("pg_ctl", &["-D", self.data().to_str().unwrap(), "-m", "immediate", "-w", "stop"]);
    }
}

/// A request that must answer within `connect_timeout` (plus scheduling slack), never hang.
async fn bounded<'c>(request: impl std::future::IntoFuture<Output = LocalResponse<'c>>) -> LocalResponse<'c> {
    tokio::time::timeout(Duration::from_secs(CONNECT_TIMEOUT + 3), request.into_future())
        .await
        .expect("answered within connect_timeout instead of hanging")
}

/// `GET /users/me/token`: the bearer check alone (with the in-memory ended-session set).
async fn token_info(app: &TestApp, token: &str) -> Status {
    app.authed(app.client.get("/users/me/token"), token).dispatch().await.status()
}

async fn assert_unavailable(response: LocalResponse<'_>, what: &str) {
    let retry_after = response.headers().get_one("Retry-After").map(str::to_owned);
    assert_eq!(error_of(response).await, (Status::ServiceUnavailable, "unavailable".to_owned()), "{what}");
    assert!(retry_after.is_some_and(|s| s.parse::<u64>().is_ok_and(|n| n >= 1)), "{what}: Retry-After");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_outage_answers_503_and_the_service_and_its_revocation_feed_recover_by_themselves() {
    // Declared first, so dropped last: the app's pool goes before the cluster does.
    let Some(cluster) = ThrowawayCluster::create() else { return };
    let db = TestDb::Postgres { admin_url: cluster.url(), name: "postgres".into(), url: cluster.url() };
    let app = TestApp::builder(Backend::Postgres)
        .with_db(db)
        .with_config("databases.main.connect_timeout", CONNECT_TIMEOUT)
        .build()
        .await;
    let other = app.second_instance(|b| b.with_config("databases.main.connect_timeout", CONNECT_TIMEOUT)).await;
    let user = app.with_user().await;
    let tokens = app.login(&user).await;
    let elsewhere = app.login(&user).await;

    cluster.stop();
    let down = Instant::now();
    let bearer_only = bounded(app.authed(app.client.get("/users/me/token"), &tokens.access).dispatch()).await;
    assert_eq!(bearer_only.status(), Status::Ok, "a bearer-only endpoint needs no database");
    assert_unavailable(bounded(app.client.get("/health/ready").dispatch()).await, "ready").await;
    assert_unavailable(bounded(app.authed(app.client.get("/users/me"), &tokens.access).dispatch()).await, "me").await;
    let login = app
        .json_request(app.client.post("/auth/login"), serde_json::json!({"email": user.email, "password": PASSWORD}));
    assert_unavailable(bounded(login.dispatch()).await, "login").await;
    let refresh =
        app.json_request(app.client.post("/auth/refresh"), serde_json::json!({"refresh_token": tokens.refresh}));
    assert_unavailable(bounded(refresh.dispatch()).await, "refresh").await;

    eprintln!("outage: 4 answers of 503 and one of 200 took {:?} in all", down.elapsed());
    cluster.start();
    let back = Instant::now();
    eventually_within(Duration::from_secs(60), "the service recovers without a restart", async || {
        let status = bounded(app.client.get("/health/ready").dispatch()).await.status();
        assert!(
            status == Status::Ok || status == Status::ServiceUnavailable,
            "ready answered {status} while recovering"
        );
        status == Status::Ok
    })
    .await;
    let ready = back.elapsed();
    let refreshed = app.refresh_response(&tokens.refresh).await;
    assert_eq!(refreshed.status(), Status::Ok, "the refresh token survived the outage");
    assert_eq!(app.me_status(&app.login(&user).await.access).await, Status::Ok);
    eprintln!("recovered: /health/ready answered 200 {ready:?} after pg_ctl start returned");

    // The other instance's revocation poller failed through the outage; it reads the feed again.
    assert_eq!(token_info(&other, &elsewhere.access).await, Status::Ok);
    let logout = app.authed(app.client.post("/auth/logout"), &elsewhere.access).dispatch().await;
    assert_eq!(logout.status(), Status::NoContent);
    eventually("the other instance's revocation feed resumes after the outage", async || {
        token_info(&other, &elsewhere.access).await == Status::Unauthorized
    })
    .await;
}
