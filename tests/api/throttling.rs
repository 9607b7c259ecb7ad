//! Brute-force throttling: per account and per address, bounded backoff, shared by instances.

use crate::helpers::*;
use crate::oidc_support::{auth, conn};
use crate::on_both_backends;
use portcullis::auth::throttle::{self, ThrottleKeys};
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
            .with_config("throttle_pair_failures", 3)
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

    async fn a_lock_runs_from_the_answer_the_client_saw_not_from_the_moment_the_attempt_was_counted(backend) {
        // A password check on a busy machine can outlast a one-second backoff that began when the
        // attempt was counted; the next attempt must still find the lock (`throttle::failed`).
        let app = TestApp::builder(backend).with_config("throttle_pair_failures", 1).build().await;
        let keys = ThrottleKeys::new("slow@example.com", Some("192.0.2.7"));
        let counted = app.clock.now_ms();
        let reservation = throttle::reserve(&mut conn(&app).await, &keys, &auth(&app).config, counted).await.unwrap();
        let answered = counted + 2_500;
        throttle::failed(&mut conn(&app).await, &reservation, answered).await.unwrap();
        let refused = throttle::check(&mut conn(&app).await, &keys, answered.div_euclid(1000)).await;
        assert!(refused.is_err(), "the lock outlives the slow check");
        let later = throttle::check(&mut conn(&app).await, &keys, answered.div_euclid(1000) + 2).await;
        assert!(later.is_ok(), "and ends a backoff after the answer");
    }

    async fn a_successful_login_resets_the_account_counter(backend) {
        let app = TestApp::builder(backend).with_config("throttle_pair_failures", 3).build().await;
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
        let app = TestApp::builder(backend).with_config("throttle_pair_failures", 2).build().await;
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
        let a = TestApp::builder(backend).with_config("throttle_pair_failures", 2).build().await;
        let user = a.with_user().await;
        let b = a.second_instance(|b| b.with_config("throttle_pair_failures", 2)).await;
        assert_eq!(a.login_response(&user.email, WRONG).await.status(), Status::Unauthorized);
        assert_eq!(b.login_response(&user.email, WRONG).await.status(), Status::Unauthorized);
        assert_eq!(a.login_response(&user.email, &user.password).await.status(), Status::TooManyRequests);
        assert_eq!(b.login_response(&user.email, &user.password).await.status(), Status::TooManyRequests);
    }
}

on_both_backends! {
    async fn guessing_the_current_password_with_a_token_is_throttled(backend) {
        let app = TestApp::builder(backend).with_config("throttle_pair_failures", 2).build().await;
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

/// How many of `responses` got each of 401 and 429 (anything else fails the test).
fn tally(statuses: &[Status]) -> (usize, usize) {
    let checked = statuses.iter().filter(|s| **s == Status::Unauthorized).count();
    let throttled = statuses.iter().filter(|s| **s == Status::TooManyRequests).count();
    assert_eq!(checked + throttled, statuses.len(), "only 401 or 429: {statuses:?}");
    (checked, throttled)
}

on_both_backends! {
    async fn of_thirty_simultaneous_wrong_passwords_no_more_than_the_threshold_reach_the_check(backend) {
        let app = TestApp::new(backend).await;
        let user = app.with_user().await;
        let attempts = (0..30).map(|_| login_from(&app, &user.email, WRONG, "127.0.0.2"));
        let statuses: Vec<Status> = futures::future::join_all(attempts).await.iter().map(|r| r.status()).collect();
        let (checked, throttled) = tally(&statuses);
        assert!(checked <= 5, "{checked} reached the password check");
        assert_eq!(checked + throttled, 30);
    }

    async fn of_thirty_simultaneous_wrong_current_passwords_no_more_than_the_threshold_are_checked(backend) {
        let app = TestApp::new(backend).await;
        let user = app.with_user().await;
        let tokens = app.login(&user).await;
        let guess = json!({"current_password": WRONG, "new_password": "a new password"});
        let attempts = (0..30).map(|_| app.put_authed("/users/me/password", &tokens.access, guess.clone()));
        let statuses: Vec<Status> = futures::future::join_all(attempts).await.iter().map(|r| r.status()).collect();
        assert!(tally(&statuses).0 <= 5, "{statuses:?}");
    }

    async fn an_address_that_locked_itself_out_does_not_lock_out_the_owner_elsewhere(backend) {
        let app = TestApp::new(backend).await;
        let user = app.with_user().await;
        for _ in 0..5 {
            assert_eq!(login_from(&app, &user.email, WRONG, "127.0.0.2").await.status(), Status::Unauthorized);
        }
        for _ in 0..3 {
            let response = login_from(&app, &user.email, &user.password, "127.0.0.2").await;
            assert_eq!(response.status(), Status::TooManyRequests, "the guessing address waits, even with the password");
        }
        let owner = login_from(&app, &user.email, &user.password, "127.0.0.3").await;
        assert_eq!(owner.status(), Status::Ok, "the owner elsewhere logs in");
        // A lock of the attacker's address outlives the owner's success.
        assert_eq!(login_from(&app, &user.email, WRONG, "127.0.0.2").await.status(), Status::TooManyRequests);
    }

    async fn guessing_spread_over_many_addresses_is_bounded_per_account(backend) {
        let app = TestApp::builder(backend).with_config("throttle_account_total_failures", 6).build().await;
        let user = app.with_user().await;
        for address in ["127.0.0.2", "127.0.0.3", "127.0.0.4"] {
            for _ in 0..2 {
                assert_eq!(login_from(&app, &user.email, WRONG, address).await.status(), Status::Unauthorized);
            }
        }
        let anywhere = login_from(&app, &user.email, &user.password, "127.0.0.5").await;
        assert_eq!(anywhere.status(), Status::TooManyRequests, "the account-wide threshold is reached");
        let other = app.with_user_email("bob@example.com").await;
        assert_eq!(login_from(&app, &other.email, &other.password, "127.0.0.2").await.status(), Status::Ok, "other accounts are untouched");
    }

    async fn hundreds_of_accounts_log_in_from_one_address_with_the_defaults(backend) {
        let app = TestApp::new(backend).await;
        for i in 0..120 {
            let user = app.with_user_email(&format!("user{i}@example.com")).await;
            assert_eq!(login_from(&app, &user.email, &user.password, "127.0.0.1").await.status(), Status::Ok, "login {i}");
        }
    }
}

/// Several instances in front of one PostgreSQL database (the scale-out deployment; several
/// processes on one SQLite file are not one) share the threshold: row locks order the checks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simultaneous_wrong_passwords_on_two_postgres_instances_share_one_threshold() {
    if !postgres_or_skip("simultaneous_wrong_passwords_on_two_postgres_instances_share_one_threshold") {
        return;
    }
    let a = TestApp::new(Backend::Postgres).await;
    let b = a.second_instance(|b| b).await;
    let user = a.with_user().await;
    let attempts = (0..30).map(|i| login_from(if i % 2 == 0 { &a } else { &b }, &user.email, WRONG, "127.0.0.2"));
    let statuses: Vec<Status> = futures::future::join_all(attempts).await.iter().map(|r| r.status()).collect();
    assert!(tally(&statuses).0 <= 5, "{statuses:?}");
}
