//! Cross-instance propagation without polling delay: on PostgreSQL a `NOTIFY` from the feed's
//! triggers wakes every instance's poller at once; the poll stays as the fallback, so killing the
//! listening connection delays nothing beyond `revocation_poll_ms`. On SQLite only the poll runs.

use crate::helpers::*;
use crate::on_both_backends;
use portcullis::auth::Auth;
use rocket::http::Status;

fn signals(app: &TestApp) -> u64 {
    app.client.rocket().state::<Auth>().unwrap().sync_wake.signals()
}

async fn logout(app: &TestApp, tokens: &Tokens) {
    let response = app.authed(app.client.post("/auth/logout"), &tokens.access).dispatch().await;
    assert_eq!(response.status(), Status::NoContent);
}

on_both_backends! {
    async fn an_ended_session_wakes_the_other_instances_poller_through_a_notification(backend) {
        let a = TestApp::new(backend).await;
        // The slowest poll allowed: what arrives sooner came through the notification.
        let b = a.second_instance(|b| b.with_config("revocation_poll_ms", 1000)).await;
        let user = a.with_user().await;
        let tokens = a.login(&user).await;
        assert_eq!(b.me_status(&tokens.access).await, Status::Ok);
        if backend == Backend::Postgres {
            // The listener signals once when it starts listening.
            eventually("the other instance listens", || async { signals(&b) >= 1 }).await;
        }
        let before = signals(&b);
        logout(&a, &tokens).await;
        if backend == Backend::Postgres {
            eventually("the notification reaches the other instance", || async { signals(&b) > before }).await;
        }
        eventually("the other instance rejects the token", || async {
            b.me_status(&tokens.access).await == Status::Unauthorized
        })
        .await;
    }

    async fn when_the_listening_connection_dies_the_poll_still_delivers(backend) {
        let a = TestApp::new(backend).await;
        let b = a.second_instance(|b| b).await;
        let user = a.with_user().await;
        let first = a.login(&user).await;
        let second = a.login(&user).await;
        if backend == Backend::Postgres {
            eventually("the other instance listens", || async { signals(&b) >= 1 }).await;
            kill_listeners(&a).await;
        }
        let after_kill = signals(&b);
        logout(&a, &first).await;
        eventually("the poll delivers", || async { b.me_status(&first.access).await == Status::Unauthorized }).await;
        if backend == Backend::Postgres {
            // The listener reconnects by itself (and signals once)...
            eventually("the listener reconnects", || async { signals(&b) > after_kill }).await;
        }
        let reconnected = signals(&b);
        logout(&a, &second).await;
        if backend == Backend::Postgres {
            // ...and notifications flow again.
            eventually("a notification after the reconnect", || async { signals(&b) > reconnected }).await;
        }
        eventually("the poll delivers again", || async {
            b.me_status(&second.access).await == Status::Unauthorized
        })
        .await;
    }
}

/// Terminates every listening connection on the test's database.
async fn kill_listeners(app: &TestApp) {
    use diesel_async::SimpleAsyncConnection;
    use rocket_db_pools::{Database, Pool};
    let db = portcullis::db::Db::fetch(app.client.rocket()).unwrap();
    let mut conn = db.get().await.unwrap();
    let sql = format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE application_name = '{}' AND datname = current_database()",
        portcullis::db::notify::LISTENER_NAME
    );
    portcullis::db::with_conn!(conn, |c| c.batch_execute(&sql).await).expect("terminate the listeners");
}
