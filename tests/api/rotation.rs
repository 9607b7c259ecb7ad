//! Refresh-token rotation: the contract's rules 1–5, reuse detection and the grace interval,
//! concurrent exchanges, and idle and absolute session expiry. Storage per session (rule 6) and
//! tokens of the older format are in `session_storage`.

use crate::helpers::*;
use crate::on_both_backends;
use futures::future::join_all;
use rocket::http::Status;
use serde_json::json;

/// Marks an account disabled directly in storage (the admin API is tested elsewhere).
pub async fn disable_in_storage(app: &TestApp, user_id: &str) {
    use rocket_db_pools::{Database, Pool};
    let db = portcullis::db::Db::fetch(app.client.rocket()).expect("db");
    let mut conn = db.get().await.expect("connection");
    let id: portcullis::db::Id = user_id.parse().expect("uuid");
    portcullis::db::with_conn!(conn, |c| portcullis::models::UserStore::set_disabled(c, id, true, 0).await)
        .expect("update");
}

async fn refresh_ok(app: &TestApp, refresh: &str) -> Tokens {
    let response = app.refresh_response(refresh).await;
    assert_eq!(response.status(), Status::Ok);
    tokens(response).await
}

async fn assert_invalid_grant(app: &TestApp, refresh: &str, why: &str) {
    let (status, code) = error_of(app.refresh_response(refresh).await).await;
    assert_eq!((status, code.as_str()), (Status::Unauthorized, "invalid_grant"), "{why}");
}

on_both_backends! {
    async fn a_refresh_returns_a_new_pair_in_the_same_session_and_spends_the_old_token(backend) {
        let app = TestApp::builder(backend).with_config("reuse_grace", 0).build().await;
        let user = app.with_user().await;
        let first = app.login(&user).await;
        let response = app.refresh_response(&first.refresh).await;
        assert_eq!(response.headers().get_one("Cache-Control"), Some("no-store"));
        let second = tokens(response).await;
        assert_eq!(second.session_id, first.session_id);
        assert_ne!(second.refresh, first.refresh);
        assert_ne!(second.access, first.access);
        assert_eq!(app.me_status(&second.access).await, Status::Ok);
        let third = refresh_ok(&app, &second.refresh).await;
        assert_eq!(third.session_id, first.session_id);
    }

    async fn unknown_and_malformed_refresh_tokens_get_invalid_grant(backend) {
        let app = TestApp::new(backend).await;
        let user = app.with_user().await;
        let tokens = app.login(&user).await;
        assert_invalid_grant(&app, "no-such-token", "unknown").await;
        assert_invalid_grant(&app, &tokens.access, "an access token is not a refresh token").await;
        let (status, code) = error_of(app.post("/auth/refresh", json!({})).await).await;
        assert_eq!((status, code.as_str()), (Status::BadRequest, "invalid_request"));
        // Failed attempts do not harm the genuine token.
        refresh_ok(&app, &tokens.refresh).await;
    }

    async fn reuse_after_the_grace_interval_ends_the_whole_session(backend) {
        let app = TestApp::builder(backend).with_config("reuse_grace", 10).build().await;
        let user = app.with_user().await;
        let first = app.login(&user).await;
        let second = refresh_ok(&app, &first.refresh).await;
        app.clock.advance(11);
        assert_invalid_grant(&app, &first.refresh, "replayed after grace").await;
        // The newest token of the family and its access token die with the session.
        assert_invalid_grant(&app, &second.refresh, "newest token of an ended family").await;
        assert_eq!(app.me_status(&second.access).await, Status::Unauthorized);
        assert_eq!(app.me_status(&first.access).await, Status::Unauthorized);
        // Other sessions of the user are untouched.
        let other = app.login(&user).await;
        assert_eq!(app.me_status(&other.access).await, Status::Ok);
    }

    async fn the_grace_interval_is_judged_to_the_millisecond_not_the_second(backend) {
        let app = TestApp::builder(backend).with_config("reuse_grace", 1).build().await;
        let user = app.with_user().await;
        // Each case: where in its second the exchange happens, and how long after it the replay
        // comes. In whole seconds, the late replays below would look 1 s old and pass.
        for (fraction, after, within) in [(100, 1500, false), (900, 1050, false), (900, 950, true), (100, 1000, true)] {
            let first = app.login(&user).await;
            app.clock.advance_ms((1000 + fraction - app.clock.now_ms() % 1000) % 1000);
            let second = refresh_ok(&app, &first.refresh).await;
            app.clock.advance_ms(after);
            if within {
                assert_eq!(refresh_ok(&app, &first.refresh).await.refresh, second.refresh, "{after} ms after");
            } else {
                assert_invalid_grant(&app, &first.refresh, &format!("{after} ms after, exchanged at .{fraction}"))
                    .await;
                assert_invalid_grant(&app, &second.refresh, "the session has ended").await;
            }
        }
    }

    async fn reuse_within_the_grace_interval_succeeds_with_the_same_successor(backend) {
        let app = TestApp::builder(backend).with_config("reuse_grace", 10).build().await;
        let user = app.with_user().await;
        let first = app.login(&user).await;
        let a = refresh_ok(&app, &first.refresh).await;
        app.clock.advance(10);
        let b = refresh_ok(&app, &first.refresh).await;
        assert_eq!(a.session_id, b.session_id);
        assert_eq!(a.refresh, b.refresh, "a replay receives the successor the first exchange produced");
        assert_ne!(a.access, b.access);
        // One chain continues from it.
        let c = refresh_ok(&app, &a.refresh).await;
        refresh_ok(&app, &c.refresh).await;
    }

    async fn a_replay_within_the_grace_interval_starts_no_second_chain(backend) {
        let app = TestApp::builder(backend).with_config("reuse_grace", 10).build().await;
        let user = app.with_user().await;
        let first = app.login(&user).await;
        let victim = refresh_ok(&app, &first.refresh).await;
        app.clock.advance(5);
        // A thief replays the copied token inside the grace interval...
        let thief = refresh_ok(&app, &first.refresh).await;
        // ...the victim keeps refreshing...
        app.clock.advance(60);
        let victim = refresh_ok(&app, &victim.refresh).await;
        // ...and the thief's next exchange is reuse: the whole session ends.
        app.clock.advance(60);
        assert_invalid_grant(&app, &thief.refresh, "the thief's copy is caught at its next exchange").await;
        assert_invalid_grant(&app, &victim.refresh, "the family ended").await;
        assert_eq!(app.me_status(&victim.access).await, Status::Unauthorized);
    }

    async fn with_zero_grace_any_reuse_ends_the_session(backend) {
        let app = TestApp::builder(backend).with_config("reuse_grace", 0).build().await;
        let user = app.with_user().await;
        let first = app.login(&user).await;
        let second = refresh_ok(&app, &first.refresh).await;
        assert_invalid_grant(&app, &first.refresh, "immediate replay").await;
        assert_invalid_grant(&app, &second.refresh, "family ended").await;
        assert_eq!(app.me_status(&second.access).await, Status::Unauthorized);
    }

    async fn with_zero_grace_exactly_one_of_concurrent_exchanges_succeeds(backend) {
        let app = TestApp::builder(backend).with_config("reuse_grace", 0).build().await;
        let user = app.with_user().await;
        let first = app.login(&user).await;
        let responses = join_all((0..8).map(|_| app.refresh_response(&first.refresh))).await;
        let statuses: Vec<Status> = responses.iter().map(|r| r.status()).collect();
        let ok = statuses.iter().filter(|s| **s == Status::Ok).count();
        assert_eq!(ok, 1, "statuses: {statuses:?}");
        assert!(statuses.iter().all(|s| *s == Status::Ok || *s == Status::Unauthorized), "{statuses:?}");
    }

    async fn with_a_grace_interval_concurrent_exchanges_all_succeed_in_one_chain(backend) {
        let app = TestApp::builder(backend).with_config("reuse_grace", 10).build().await;
        let user = app.with_user().await;
        let first = app.login(&user).await;
        let responses = join_all((0..8).map(|_| app.refresh_response(&first.refresh))).await;
        let mut successors = vec![];
        for response in responses {
            assert_eq!(response.status(), Status::Ok);
            let tokens = tokens(response).await;
            assert_eq!(tokens.session_id, first.session_id);
            successors.push(tokens.refresh);
        }
        successors.dedup();
        assert_eq!(successors.len(), 1, "every concurrent exchange received the same successor");
        // Afterwards one chain continues; the spent generations are reuse after the interval.
        let next = refresh_ok(&app, &successors[0]).await;
        app.clock.advance(11);
        let newest = refresh_ok(&app, &next.refresh).await;
        assert_invalid_grant(&app, &successors[0], "an older generation after the grace interval").await;
        assert_invalid_grant(&app, &newest.refresh, "the family ended").await;
    }

    async fn a_session_ends_after_refresh_ttl_of_inactivity(backend) {
        let app = TestApp::builder(backend).with_config("refresh_ttl", 100).with_config("reuse_grace", 0).build().await;
        let user = app.with_user().await;
        let first = app.login(&user).await;
        assert_eq!(first.body["refresh_expires_in"], 100);
        app.clock.advance(99);
        let second = refresh_ok(&app, &first.refresh).await;
        app.clock.advance(99);
        let third = refresh_ok(&app, &second.refresh).await;
        app.clock.advance(100);
        assert_invalid_grant(&app, &third.refresh, "idle for refresh_ttl").await;
    }

    async fn a_session_ends_at_its_absolute_lifetime_however_active(backend) {
        let app = TestApp::builder(backend)
            .with_config("session_max_age", 50)
            .with_config("refresh_ttl", 40)
            .with_config("access_ttl", 30)
            .with_config("reuse_grace", 0)
            .build()
            .await;
        let user = app.with_user().await;
        let first = app.login(&user).await;
        app.clock.advance(30);
        let second = refresh_ok(&app, &first.refresh).await;
        // Neither token outlives the session.
        assert_eq!(second.body["refresh_expires_in"], 20);
        assert_eq!(second.body["expires_in"], 20);
        app.clock.advance(20);
        assert_invalid_grant(&app, &second.refresh, "past session_max_age").await;
        assert_eq!(app.me_status(&second.access).await, Status::Unauthorized);
    }

    async fn a_disabled_account_gets_account_disabled_at_refresh(backend) {
        let app = TestApp::new(backend).await;
        let user = app.with_user().await;
        let tokens = app.login(&user).await;
        disable_in_storage(&app, &user.id).await;
        let (status, code) = error_of(app.refresh_response(&tokens.refresh).await).await;
        assert_eq!((status, code.as_str()), (Status::Forbidden, "account_disabled"));
    }
}
