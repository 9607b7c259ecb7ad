//! Rule 5: once a session ends, its access tokens are refused at once on the instance that
//! ended it and within a second on every other instance sharing the database.

use crate::helpers::*;
use crate::on_both_backends;
use portcullis::auth::Auth;
use rocket::http::Status;

/// Waits until `GET /users/me` on `app` refuses `token` (see [`eventually`]).
async fn eventually_rejected(app: &TestApp, token: &str) {
    eventually("another instance refuses the access token of an ended session", async || {
        app.me_status(token).await == Status::Unauthorized
    })
    .await;
}

on_both_backends! {
    async fn logout_on_one_instance_reaches_another_sharing_the_database(backend) {
        let a = TestApp::new(backend).await;
        let b = a.second_instance(|b| b).await;
        let user = a.with_user().await;
        let tokens = a.login(&user).await;
        assert_eq!(b.me_status(&tokens.access).await, Status::Ok);
        let response = a.authed(a.client.post("/auth/logout"), &tokens.access).dispatch().await;
        assert_eq!(response.status(), Status::NoContent);
        assert_eq!(a.me_status(&tokens.access).await, Status::Unauthorized, "at once where it ended");
        eventually_rejected(&b, &tokens.access).await;
    }

    async fn reuse_detection_on_one_instance_reaches_another(backend) {
        let a = TestApp::builder(backend).with_config("reuse_grace", 0).build().await;
        let b = a.second_instance(|b| b.with_config("reuse_grace", 0)).await;
        let user = a.with_user().await;
        let first = a.login(&user).await;
        let second = tokens(b.refresh_response(&first.refresh).await).await;
        assert_eq!(a.refresh_response(&first.refresh).await.status(), Status::Unauthorized);
        eventually_rejected(&b, &second.access).await;
    }

    async fn an_instance_started_later_knows_sessions_ended_before(backend) {
        let a = TestApp::new(backend).await;
        let user = a.with_user().await;
        let tokens = a.login(&user).await;
        a.authed(a.client.post("/auth/logout-all"), &tokens.access).dispatch().await;
        let late = a.second_instance(|b| b).await;
        assert_eq!(late.me_status(&tokens.access).await, Status::Unauthorized);
    }

    async fn ended_sessions_are_forgotten_once_their_access_tokens_expired(backend) {
        let app = TestApp::builder(backend).with_config("access_ttl", 60).build().await;
        let user = app.with_user().await;
        let tokens = app.login(&user).await;
        app.authed(app.client.post("/auth/logout"), &tokens.access).dispatch().await;
        let auth = app.client.rocket().state::<Auth>().unwrap();
        assert!(auth.revoked.contains(&tokens.session_id.parse().unwrap()));
        app.clock.advance(62);
        auth.revoked.prune(app.clock.now());
        assert!(auth.revoked.is_empty(), "the set only holds sessions whose tokens can still be valid");
        assert_eq!(app.me_status(&tokens.access).await, Status::Unauthorized, "the token itself has expired");
    }
}
