//! The live-session cap (contract v2): a login beyond `max_sessions_per_user` ends the user's
//! least recently used session, the way a logout does. Within the cap nothing is counted: the
//! account's `session_bound` (src/auth/session/cap.rs) must then never fall below its live
//! sessions, whichever way sessions start and end.

use crate::admin_support::{get_json, with_admin};
use crate::code_grant_support::{exchange, issue_code, public_client, signed_in, Authorized};
use crate::helpers::*;
use crate::oidc_support::conn;
use crate::on_both_backends;
use futures::future::join_all;
use portcullis::db::Id;
use portcullis::models::SessionStore;
use rocket::http::Status;
use serde_json::{json, Value};

/// How many `session_evicted` events the audit log holds for `user` (read as `admin`).
async fn evictions(app: &TestApp, admin: &Tokens, user: &TestUser) -> usize {
    let path = format!("/admin/audit?event=session_evicted&user_id={}", user.id);
    get_json(app, &path, &admin.access).await["events"].as_array().unwrap().len()
}

/// The account's live sessions as the cap counts them, with the refresh lifetime `refresh_ttl`.
async fn live_count(app: &TestApp, user: &TestUser, refresh_ttl: i64) -> i64 {
    let mut conn = conn(app).await;
    let user: Id = user.id.parse().unwrap();
    portcullis::with_conn!(&mut conn, |c| c.count_live_sessions(user, app.clock.now(), refresh_ttl).await).unwrap()
}

async fn live_sessions(app: &TestApp, access: &str) -> Vec<String> {
    let body: Value = app.get_authed("/auth/sessions", access).await.into_json().await.unwrap();
    body["sessions"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap().to_owned()).collect()
}

on_both_backends! {
    async fn a_login_beyond_the_cap_ends_the_least_recently_used_session(backend) {
        let app = TestApp::builder(backend).with_config("max_sessions_per_user", 3).build().await;
        let other = app.second_instance(|b| b.with_config("max_sessions_per_user", 3)).await;
        let user = app.with_user().await;
        let first = app.login(&user).await;
        app.clock.advance(10);
        let second = app.login(&user).await;
        app.clock.advance(10);
        let third = app.login(&user).await;
        app.clock.advance(10);
        // The first session is used again: now the second is the least recently used.
        let first = tokens(app.refresh_response(&first.refresh).await).await;
        assert_eq!(other.me_status(&second.access).await, Status::Ok);
        app.clock.advance(10);
        let fourth = app.login(&user).await;

        assert_eq!(app.me_status(&second.access).await, Status::Unauthorized, "evicted at once here");
        let (status, code) = error_of(app.refresh_response(&second.refresh).await).await;
        assert_eq!((status, code.as_str()), (Status::Unauthorized, "invalid_grant"));
        for live in [&first, &third, &fourth] {
            assert_eq!(app.me_status(&live.access).await, Status::Ok);
        }
        let mut ids = live_sessions(&app, &fourth.access).await;
        ids.sort();
        let mut expected = vec![first.session_id.clone(), third.session_id.clone(), fourth.session_id.clone()];
        expected.sort();
        assert_eq!(ids, expected);

        // Through the revocation feed like a logout: another instance rejects it too.
        eventually("another instance refuses the evicted session's access token", async || {
            other.me_status(&second.access).await == Status::Unauthorized
        })
        .await;

        let (_, admin) = with_admin(&app).await;
        let audit = get_json(&app, "/admin/audit?event=session_evicted", &admin.access).await;
        let events = audit["events"].as_array().unwrap();
        assert_eq!(events.len(), 1, "{audit}");
        assert_eq!(events[0]["user_id"], user.id.as_str());
    }

    async fn concurrent_logins_never_leave_more_live_sessions_than_the_cap(backend) {
        let app = TestApp::builder(backend).with_config("max_sessions_per_user", 2).build().await;
        let user = app.with_user().await;
        // Five at once: more simultaneous logins of one account from one address than the throttle
        // threshold would get 429 for the excess (in-flight attempts count until they succeed).
        let responses = join_all((0..5).map(|_| app.login_response(&user.email, &user.password))).await;
        let mut logins = vec![];
        for response in responses {
            assert_eq!(response.status(), Status::Ok);
            logins.push(tokens(response).await);
        }
        let alive = join_all(logins.iter().map(|t| app.me_status(&t.access))).await;
        assert_eq!(alive.iter().filter(|s| **s == Status::Ok).count(), 2, "{alive:?}");
        let latest = app.login(&user).await;
        assert_eq!(live_sessions(&app, &latest.access).await.len(), 2);
    }

    async fn deleting_a_session_that_has_already_ended_records_nothing_new(backend) {
        let app = TestApp::new(backend).await;
        let user = app.with_user().await;
        let ended = app.login(&user).await;
        let current = app.login(&user).await;
        let path = format!("/auth/sessions/{}", ended.session_id);
        assert_eq!(app.delete_authed(&path, &current.access).await.status(), Status::NoContent);
        let again = app.delete_authed(&path, &current.access).await.status();
        assert!(again == Status::NoContent || again == Status::NotFound, "{again}");
        let (_, admin) = with_admin(&app).await;
        let audit = get_json(&app, &format!("/admin/audit?event=logout&user_id={}", user.id), &admin.access).await;
        assert_eq!(audit["events"].as_array().unwrap().len(), 1, "{audit}");
    }

    async fn sessions_that_ended_or_expired_make_room_and_the_cap_holds_after_them(backend) {
        let app = TestApp::builder(backend)
            .with_config("max_sessions_per_user", 3)
            .with_config("refresh_ttl", 3600)
            .build()
            .await;
        let user = app.with_user().await;
        // Two sessions die by idling past the refresh lifetime, without being ended.
        app.login(&user).await;
        app.login(&user).await;
        app.clock.advance(3601);
        let (_, admin) = with_admin(&app).await;
        let c = app.login(&user).await;
        app.clock.advance(10);
        let d = app.login(&user).await;
        app.clock.advance(10);
        let e = app.login(&user).await;
        for live in [&c, &d, &e] {
            assert_eq!(app.me_status(&live.access).await, Status::Ok, "within the cap, nothing was evicted");
        }
        // One ends by logout: room for one more, and the one after that is beyond the cap.
        app.clock.advance(10);
        app.post_authed("/auth/logout", &d.access, json!({})).await;
        let f = app.login(&user).await;
        assert_eq!(evictions(&app, &admin, &user).await, 0);
        app.clock.advance(10);
        let g = app.login(&user).await;
        assert_eq!(app.me_status(&c.access).await, Status::Unauthorized, "the least recently used one ended");
        for live in [&e, &f, &g] {
            assert_eq!(app.me_status(&live.access).await, Status::Ok);
        }
        assert_eq!(evictions(&app, &admin, &user).await, 1);
        assert_eq!(live_count(&app, &user, 3600).await, 3);
    }

    async fn code_exchanges_count_against_the_cap_and_the_one_beyond_it_ends_one_session(backend) {
        let app = TestApp::builder(backend).with_config("max_sessions_per_user", 3).build().await;
        let (_, admin) = with_admin(&app).await;
        let client = public_client(&app).await;
        let (user, browser) = signed_in(&app).await;
        let authorized = Authorized {
            user: user.id.parse().unwrap(),
            browser_session: browser,
            scope: "openid",
            nonce: None,
            auth_time: app.clock.now(),
        };
        // The browser session and two code sessions fill the cap; a replayed code starts none.
        let mut started = vec![];
        for round in 0..3 {
            app.clock.advance(10);
            let code = issue_code(&app, &client, authorized).await;
            let response = exchange(&app, &client, &code, &[]).await;
            assert_eq!(response.status(), Status::Ok, "round {round}");
            let body: Value = response.into_json().await.unwrap();
            started.push(body["session_id"].as_str().unwrap().to_owned());
            if round == 0 {
                assert_eq!(exchange(&app, &client, &code, &[]).await.status(), Status::BadRequest);
            }
            if round < 2 {
                assert_eq!(evictions(&app, &admin, &user).await, 0, "round {round}");
            }
        }
        // The replay ended the first code session; the third exchange found room without evicting.
        assert_eq!(evictions(&app, &admin, &user).await, 0);
        assert_eq!(live_count(&app, &user, 86400).await, 3);
        app.clock.advance(10);
        let code = issue_code(&app, &client, authorized).await;
        assert_eq!(exchange(&app, &client, &code, &[]).await.status(), Status::Ok);
        assert_eq!(evictions(&app, &admin, &user).await, 1);
        assert_eq!(live_count(&app, &user, 86400).await, 3);
    }
}
