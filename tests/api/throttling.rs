//! Brute-force throttling: per account and per address, bounded backoff, shared by instances.

use crate::helpers::*;
use crate::on_both_backends;
use rocket::http::Status;
use rocket::local::asynchronous::LocalResponse;
use serde_json::json;

const WRONG: &str = "wrong password!";

fn retry_after(response: &LocalResponse<'_>) -> u64 {
    response.headers().get_one("Retry-After").expect("Retry-After").parse().expect("whole seconds")
}

async fn login_from<'a>(app: &'a TestApp, email: &str, password: &str, ip: &str) -> LocalResponse<'a> {
    app.json_request(app.client.post("/auth/login"), json!({"email": email, "password": password}))
        .remote(format!("{ip}:5000").parse().unwrap())
        .dispatch()
        .await
}

on_both_backends! {
    async fn repeated_failures_for_one_account_get_429_with_a_growing_bounded_backoff(backend) {
        let app = TestApp::builder(backend)
            .with_config("throttle_account_failures", 3)
            .with_config("throttle_max_backoff", 8)
            .build()
            .await;
        let user = app.with_user().await;
        for _ in 0..2 {
            assert_eq!(app.login_response(&user.email, WRONG).await.status(), Status::Unauthorized);
        }
        // The third failure reaches the threshold and locks the account for 1 s.
        assert_eq!(app.login_response(&user.email, WRONG).await.status(), Status::Unauthorized);
        let mut waits = vec![];
        for _ in 0..6 {
            let locked = app.login_response(&user.email, &user.password).await;
            assert_eq!(locked.status(), Status::TooManyRequests, "even the right password waits");
            let wait = retry_after(&locked);
            assert_eq!(error_of(locked).await.1, "too_many_requests");
            waits.push(wait);
            app.clock.advance(wait as i64);
            assert_eq!(app.login_response(&user.email, WRONG).await.status(), Status::Unauthorized);
        }
        assert_eq!(waits, vec![1, 2, 4, 8, 8, 8], "doubling, capped at throttle_max_backoff");
    }

    async fn a_successful_login_resets_the_account_counter(backend) {
        let app = TestApp::builder(backend).with_config("throttle_account_failures", 3).build().await;
        let user = app.with_user().await;
        for _ in 0..2 {
            app.login_response(&user.email, WRONG).await;
        }
        app.login(&user).await;
        for _ in 0..2 {
            assert_eq!(app.login_response(&user.email, WRONG).await.status(), Status::Unauthorized);
        }
        app.login(&user).await;
    }

    async fn unknown_emails_are_throttled_exactly_like_real_ones(backend) {
        let app = TestApp::builder(backend).with_config("throttle_account_failures", 2).build().await;
        app.with_user().await;
        for email in ["alice@example.com", "nobody@example.com"] {
            assert_eq!(app.login_response(email, WRONG).await.status(), Status::Unauthorized);
            assert_eq!(app.login_response(email, WRONG).await.status(), Status::Unauthorized);
            assert_eq!(app.login_response(email, WRONG).await.status(), Status::TooManyRequests, "{email}");
        }
    }

    async fn one_address_failing_across_many_accounts_is_throttled(backend) {
        let app = TestApp::builder(backend).with_config("throttle_address_failures", 4).build().await;
        let user = app.with_user().await;
        for i in 0..4 {
            let response = login_from(&app, &format!("victim{i}@example.com"), WRONG, "198.51.100.1").await;
            assert_eq!(response.status(), Status::Unauthorized);
        }
        let blocked = login_from(&app, &user.email, &user.password, "198.51.100.1").await;
        assert_eq!(blocked.status(), Status::TooManyRequests);
        // Another address is unaffected.
        assert_eq!(login_from(&app, &user.email, &user.password, "198.51.100.2").await.status(), Status::Ok);
    }

    async fn the_default_address_limit_tolerates_tens_of_failures_a_minute(backend) {
        let app = TestApp::new(backend).await;
        let user = app.with_user().await;
        for i in 0..40 {
            let response = login_from(&app, &format!("typo{i}@example.com"), WRONG, "192.0.2.10").await;
            assert_eq!(response.status(), Status::Unauthorized, "attempt {i}");
        }
        assert_eq!(login_from(&app, &user.email, &user.password, "192.0.2.10").await.status(), Status::Ok);
    }

    async fn throttling_is_shared_by_instances_on_one_database(backend) {
        let a = TestApp::builder(backend).with_config("throttle_account_failures", 2).build().await;
        let user = a.with_user().await;
        let b = a.second_instance(|b| b.with_config("throttle_account_failures", 2)).await;
        assert_eq!(a.login_response(&user.email, WRONG).await.status(), Status::Unauthorized);
        assert_eq!(b.login_response(&user.email, WRONG).await.status(), Status::Unauthorized);
        assert_eq!(a.login_response(&user.email, &user.password).await.status(), Status::TooManyRequests);
        assert_eq!(b.login_response(&user.email, &user.password).await.status(), Status::TooManyRequests);
    }
}

on_both_backends! {
    async fn guessing_the_current_password_with_a_token_is_throttled(backend) {
        let app = TestApp::builder(backend).with_config("throttle_account_failures", 2).build().await;
        let user = app.with_user().await;
        let tokens = app.login(&user).await;
        let guess = json!({"current_password": WRONG, "new_password": "a new password"});
        for _ in 0..2 {
            let response = app.put_authed("/users/me/password", &tokens.access, guess.clone()).await;
            assert_eq!(response.status(), Status::Unauthorized);
        }
        let response = app.put_authed("/users/me/password", &tokens.access, guess).await;
        assert_eq!(response.status(), Status::TooManyRequests);
        assert_eq!(app.login_response(&user.email, &user.password).await.status(), Status::TooManyRequests);
    }
}
