//! Housekeeping deletes expired tokens, old sessions, stale revocations and throttle counters.

use crate::helpers::*;
use crate::on_both_backends;
use crate::session_storage::insert_legacy_token;
use portcullis::auth::housekeeping::{run_once, Swept};
use portcullis::auth::Auth;
use rocket::http::Status;
use rocket_db_pools::Database;

/// Waits until the app's start-up housekeeping pass is over, so a test's own pass does not
/// share its backlog with it.
async fn after_the_start_up_pass(app: &TestApp) {
    let auth = app.client.rocket().state::<Auth>().unwrap();
    eventually("the start-up housekeeping pass finishes", async || {
        auth.housekeeping_passes.load(std::sync::atomic::Ordering::Acquire) > 0
    })
    .await;
}

/// One housekeeping pass while `live`'s session keeps refreshing (each refresh a write
/// transaction interleaving with the pass's batches); every refresh must succeed. Returns what
/// the pass swept, the session's newest tokens and how many refreshes ran during the pass.
async fn sweep_while_refreshing(app: &TestApp, live: &Tokens) -> (Swept, Tokens, usize) {
    use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
    let sweeping = AtomicBool::new(true);
    let pass = async {
        let swept = sweep(app).await;
        sweeping.store(false, SeqCst);
        swept
    };
    let writes = async {
        let (mut current, mut during) = (live.clone(), 0);
        while sweeping.load(SeqCst) {
            let response = app.refresh_response(&current.refresh).await;
            assert_eq!(response.status(), Status::Ok, "a write during housekeeping");
            current = tokens(response).await;
            during += 1;
        }
        (current, during)
    };
    let (swept, (current, during)) = tokio::join!(pass, writes);
    (swept, current, during)
}

async fn sweep(app: &TestApp) -> Swept {
    let auth = app.client.rocket().state::<Auth>().unwrap();
    let db = portcullis::db::Db::fetch(app.client.rocket()).unwrap();
    run_once(db, &auth.clock, &auth.config).await.expect("housekeeping")
}

on_both_backends! {
    async fn housekeeping_keeps_live_data_and_deletes_dead_data(backend) {
        let app = TestApp::builder(backend)
            .with_config("refresh_ttl", 1000)
            .with_config("access_ttl", 100)
            .with_config("retention", 500)
            .with_config("throttle_account_window", 300)
            .with_config("reuse_grace", 0)
            .build()
            .await;
        let user = app.with_user().await;
        let ended = app.login(&user).await;
        let live = app.login(&user).await;
        app.authed(app.client.post("/auth/logout"), &ended.access).dispatch().await;
        app.login_response(&user.email, "wrong password!").await;

        // Nothing is dead yet.
        assert_eq!(sweep(&app).await, Swept::default());

        // Keep the live session active while time passes.
        app.clock.advance(600);
        let live = tokens(app.refresh_response(&live.refresh).await).await;
        let swept = sweep(&app).await;
        assert_eq!(swept.sessions, 1, "the session ended more than `retention` ago");
        assert_eq!(swept.revocations, 1, "its access tokens have expired");
        assert_eq!(swept.throttles, 2, "the failure window is over (the account's counter from this address and from all)");
        assert_eq!(app.me_status(&live.access).await, Status::Ok);

        // Refresh tokens of the older format past their expiry go too, without harming the
        // live chain.
        insert_legacy_token(&app, &live.session_id, 100).await;
        app.clock.advance(900);
        let live = tokens(app.refresh_response(&live.refresh).await).await;
        let swept = sweep(&app).await;
        assert_eq!(swept.refresh_tokens, 1, "{swept:?}");
        assert_eq!(app.refresh_response(&live.refresh).await.status(), Status::Ok);
    }
}

/// Writes `sessions` sessions of `user` that expired long ago, and `audit` audit events older
/// than the audit retention, in multi-row inserts (plain SQL: ids and numbers only).
async fn seed_backlog(app: &TestApp, user: &str, sessions: usize, audit: usize, long_ago: i64) {
    use diesel_async::SimpleAsyncConnection;
    use rocket_db_pools::Pool;
    let db = portcullis::db::Db::fetch(app.client.rocket()).unwrap();
    let mut conn = db.get().await.unwrap();
    let rows = |count: usize, row: &dyn Fn() -> String| -> Vec<String> {
        let all: Vec<String> = (0..count).map(|_| row()).collect();
        all.chunks(500).map(|chunk| chunk.join(",")).collect()
    };
    let mut sql = String::new();
    for values in rows(sessions, &|| {
        let id = uuid::Uuid::new_v4();
        format!("('{id}','{user}',{},{},{long_ago})", long_ago - 100, long_ago - 100)
    }) {
        sql += &format!("INSERT INTO sessions (id, user_id, created_at, last_used_at, expires_at) VALUES {values};");
    }
    for values in rows(audit, &|| {
        let id = uuid::Uuid::new_v4();
        format!("('{id}',{long_ago},'login_succeeded','{user}','{{}}')")
    }) {
        sql += &format!("INSERT INTO audit_events (id, at, event, user_id, detail) VALUES {values};");
    }
    portcullis::db::with_conn!(conn, |c| c.batch_execute(&sql).await).expect("seed");
}

on_both_backends! {
    async fn a_large_backlog_is_deleted_in_several_batches_while_writes_keep_succeeding(backend) {
        let app = TestApp::builder(backend)
            .with_config("housekeeping_batch", 500)
            .with_config("retention", 1000)
            .with_config("audit_retention", 86_400)
            .build()
            .await;
        let user = app.with_user().await;
        after_the_start_up_pass(&app).await;
        let now = app.clock.now();
        seed_backlog(&app, &user.id, 3000, 12_000, now - 100_000).await;
        let live = app.login(&user).await;

        let (swept, current, during) = sweep_while_refreshing(&app, &live).await;
        assert_eq!(swept.sessions, 3000, "{swept:?}");
        assert_eq!(swept.audit_events, 12_000, "{swept:?}");
        assert!(swept.batches >= 30, "500 rows per write transaction: {swept:?}");
        assert!(during >= 1, "writes went on while the pass ran");
        assert_eq!(app.me_status(&current.access).await, Status::Ok);
        // Recent audit events are kept; a second pass finds nothing left.
        let (_, admin) = crate::admin_support::with_admin(&app).await;
        let audit = crate::admin_support::get_json(&app, &format!("/admin/audit?user_id={}", user.id), &admin.access).await;
        assert!(!audit["events"].as_array().unwrap().is_empty(), "{audit}");
        let again = sweep(&app).await;
        assert_eq!((again.sessions, again.audit_events), (0, 0), "{again:?}");
    }
}

/// Writes `count` failure counters whose window started at `long_ago` and that lock nothing,
/// and one that started as long ago but is still locked at `locked_until`.
async fn seed_stale_throttles(app: &TestApp, count: usize, long_ago: i64, locked_until: i64) {
    use diesel_async::SimpleAsyncConnection;
    use rocket_db_pools::Pool;
    let db = portcullis::db::Db::fetch(app.client.rocket()).unwrap();
    let mut conn = db.get().await.unwrap();
    let rows: Vec<String> = (0..count).map(|i| format!("('backlog:{i}',1,{long_ago},0)")).collect();
    let mut sql = String::new();
    for values in rows.chunks(500).map(|chunk| chunk.join(",")) {
        sql += &format!("INSERT INTO login_throttle (key, failures, window_start, locked_until) VALUES {values};");
    }
    sql += &format!(
        "INSERT INTO login_throttle (key, failures, window_start, locked_until) VALUES ('locked',9,{long_ago},{locked_until});"
    );
    portcullis::db::with_conn!(conn, |c| c.batch_execute(&sql).await).expect("seed");
}

on_both_backends! {
    async fn a_large_backlog_of_throttle_counters_is_deleted_in_several_batches_while_writes_keep_succeeding(backend) {
        let app = TestApp::builder(backend)
            .with_config("housekeeping_batch", 500)
            .with_config("throttle_account_window", 300)
            .build()
            .await;
        let user = app.with_user().await;
        after_the_start_up_pass(&app).await;
        let now = app.clock.now();
        seed_stale_throttles(&app, 4000, now - 100_000, now + 100_000).await;
        let live = app.login(&user).await;

        let (swept, _, during) = sweep_while_refreshing(&app, &live).await;
        assert_eq!(swept.throttles, 4000, "every stale counter, not the locked one: {swept:?}");
        assert!(swept.batches >= 8, "500 rows per write transaction: {swept:?}");
        assert!(during >= 1, "writes went on while the pass ran");

        // The counter that still locks its key stays; a second pass finds nothing left.
        use portcullis::models::ThrottleStore;
        use rocket_db_pools::Pool;
        let db = portcullis::db::Db::fetch(app.client.rocket()).unwrap();
        let mut conn = db.get().await.unwrap();
        let keys = ["locked".to_owned(), "backlog:0".to_owned()];
        let left = portcullis::db::with_conn!(conn, |c| c.find_throttles(&keys).await).expect("read");
        assert_eq!(left.iter().map(|t| t.key.as_str()).collect::<Vec<_>>(), ["locked"]);
        assert_eq!(sweep(&app).await.throttles, 0);
    }
}
