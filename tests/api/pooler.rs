//! Behind PgBouncer in transaction pooling mode: runs when `PORTCULLIS_TEST_PGBOUNCER_URL`
//! names one in front of the test server (`.ci/run` starts one, and runs the whole PostgreSQL
//! suite through it too, with a direct URL for `LISTEN`). These tests use no direct URL at all:
//! migrations, every flow, and concurrent clients through the pooler alone.

use std::io::Write;

use futures_util::future::join_all;
use rocket::http::Status;
use serde_json::json;

use crate::helpers::*;

/// The service on a fresh database (an empty one when `migrate`, so the service migrates it
/// through the pooler itself) reached only through the test pooler, or `None` without one.
async fn behind_the_pooler(test: &str, migrate: bool) -> Option<TestApp> {
    let Some(pooler) = pgbouncer_url() else {
        // Only `.ci/run` starts a pooler, so this is no failure under CI=true either.
        let _ = writeln!(std::io::stderr(), "skipped: {test}: PORTCULLIS_TEST_PGBOUNCER_URL is not set");
        return None;
    };
    if !postgres_or_skip(test) {
        return None;
    }
    let db = if migrate { TestDb::empty(Backend::Postgres).await } else { TestDb::migrated(Backend::Postgres).await };
    let database = json!({"url": through_pooler(&pooler, db.url()), "max_connections": 4, "pool_mode": "transaction"});
    Some(TestApp::builder(Backend::Postgres).with_db(db).with_database(database).build().await)
}

#[rocket::async_test]
async fn behind_a_transaction_pooler_without_a_direct_url_the_service_migrates_and_serves_every_flow() {
    let test = "behind_a_transaction_pooler_without_a_direct_url_the_service_migrates_and_serves_every_flow";
    let Some(app) = behind_the_pooler(test, true).await else { return };
    assert_eq!(app.client.get("/health/ready").dispatch().await.status(), Status::Ok);
    let user = app.with_user().await;
    let tokens = app.login(&user).await;
    assert_eq!(app.me_status(&tokens.access).await, Status::Ok);

    let mut refresh = tokens.refresh.clone();
    for _ in 0..5 {
        app.clock.advance(900);
        let response = app.refresh_response(&refresh).await;
        assert_eq!(response.status(), Status::Ok);
        refresh = crate::helpers::tokens(response).await.refresh;
    }
    // StatementCache of a spent token (past the grace interval) is detected through the pooler as
    // directly, and ends the session.
    assert_eq!(app.refresh_response(&tokens.refresh).await.status(), Status::Unauthorized);
    assert_eq!(app.refresh_response(&refresh).await.status(), Status::Unauthorized);

    let again = app.login(&user).await;
    let logout = app.post_authed("/auth/logout", &again.access, json!({})).await;
    assert_eq!(logout.status(), Status::NoContent);
    assert_eq!(app.me_status(&again.access).await, Status::Unauthorized);
}

#[rocket::async_test]
async fn behind_a_transaction_pooler_concurrent_clients_each_keep_one_chain() {
    let test = "behind_a_transaction_pooler_concurrent_clients_each_keep_one_chain";
    let Some(app) = behind_the_pooler(test, false).await else { return };
    let user = app.with_user().await;
    let sessions = join_all((0..4).map(|_| app.login(&user))).await;
    // Many statements at once from the pool's connections, over the pooler's servers.
    let chains = sessions.iter().map(|session| async {
        let mut refresh = session.refresh.clone();
        for _ in 0..10 {
            let response = app.refresh_response(&refresh).await;
            assert_eq!(response.status(), Status::Ok);
            let next = crate::helpers::tokens(response).await;
            assert_eq!(app.me_status(&next.access).await, Status::Ok);
            refresh = next.refresh;
        }
    });
    join_all(chains).await;
}
