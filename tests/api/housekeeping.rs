//! Housekeeping deletes expired tokens, old sessions, stale revocations and throttle counters.

use crate::helpers::*;
use crate::on_both_backends;
use crate::session_storage::insert_legacy_token;
use portcullis::auth::housekeeping::{run_once, Swept};
use portcullis::auth::Auth;
use rocket::http::Status;
use rocket_db_pools::Database;

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
        assert_eq!(swept.throttles, 1, "the failure window is over");
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
