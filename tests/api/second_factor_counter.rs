//! The account's one second-factor counter, tried as an attacker would: wrong codes at every
//! endpoint that checks a code, one after another and all at once, from several addresses, with
//! the password re-entered in between; the lock's end, a pending enrolment's expiry, and the
//! `mfa_token`s that die with a password change, logout-all or disabling.

use crate::admin_support::{patch_authed, with_admin};
use crate::helpers::*;
use crate::mfa_support::*;
use crate::on_both_backends;
use rocket::http::Status;
use rocket::local::asynchronous::LocalResponse;
use serde_json::{json, Value};

/// A user with MFA on, logged in with both factors.
async fn enrolled(app: &TestApp) -> (TestUser, Tokens, Authenticator) {
    let user = app.with_user().await;
    let tokens = app.login(&user).await;
    let authenticator = enrol(app, &tokens).await;
    (user, tokens, authenticator)
}

/// A six-digit code that none of the accepted steps produces now.
fn wrong_code(app: &TestApp, authenticator: &Authenticator) -> String {
    let accepted: Vec<String> = (-1..=1).map(|offset| authenticator.code(app, offset)).collect();
    ["000000", "111111", "222222", "333333"].into_iter().find(|c| !accepted.iter().any(|a| a == c)).unwrap().to_owned()
}

async fn new_recovery_codes<'a>(app: &'a TestApp, tokens: &Tokens, password: &str, code: &str) -> LocalResponse<'a> {
    app.post_authed("/auth/mfa/recovery-codes", &tokens.access, json!({"password": password, "code": code})).await
}

async fn disable<'a>(app: &'a TestApp, tokens: &Tokens, password: &str, code: &str) -> LocalResponse<'a> {
    delete_json(app, "/auth/mfa/totp", &tokens.access, json!({"password": password, "code": code})).await
}

async fn confirm<'a>(app: &'a TestApp, tokens: &Tokens, code: &str) -> LocalResponse<'a> {
    app.post_authed("/auth/mfa/totp/confirm", &tokens.access, json!({"code": code})).await
}

async fn verify_from<'a>(app: &'a TestApp, mfa_token: &str, code: &str, ip: &str) -> LocalResponse<'a> {
    app.json_request(app.client.post("/auth/mfa/verify"), json!({"mfa_token": mfa_token, "code": code}))
        .remote(format!("{ip}:5000").parse().unwrap())
        .dispatch()
        .await
}

/// The `Retry-After` of a 429, in seconds; panics on any other answer.
fn retry_after(response: &LocalResponse<'_>) -> u64 {
    assert_eq!(response.status(), Status::TooManyRequests);
    response.headers().get_one("Retry-After").expect("Retry-After").parse().expect("seconds")
}

/// How many of `statuses` got 401 (a code was checked) and how many 429; nothing else allowed.
fn tally(statuses: &[Status]) -> (usize, usize) {
    let checked = statuses.iter().filter(|s| **s == Status::Unauthorized).count();
    let throttled = statuses.iter().filter(|s| **s == Status::TooManyRequests).count();
    assert_eq!(checked + throttled, statuses.len(), "only 401 or 429: {statuses:?}");
    (checked, throttled)
}

on_both_backends! {
    async fn five_wrong_codes_at_new_recovery_codes_lock_the_endpoint_even_with_the_password_reentered(backend) {
        let app = TestApp::new(backend).await;
        let (_, tokens, authenticator) = enrolled(&app).await;
        let wrong = wrong_code(&app, &authenticator);
        for i in 0..5 {
            assert_eq!(new_recovery_codes(&app, &tokens, PASSWORD, &wrong).await.status(), Status::Unauthorized, "guess {i}");
        }
        let locked = new_recovery_codes(&app, &tokens, PASSWORD, &authenticator.code(&app, 0)).await;
        assert_eq!(retry_after(&locked), 900, "locked for 15 minutes, even for the right code");
    }

    async fn five_wrong_codes_at_disabling_lock_the_endpoint_even_with_the_password_reentered(backend) {
        let app = TestApp::new(backend).await;
        let (_, tokens, authenticator) = enrolled(&app).await;
        let wrong = wrong_code(&app, &authenticator);
        for i in 0..5 {
            assert_eq!(disable(&app, &tokens, PASSWORD, &wrong).await.status(), Status::Unauthorized, "guess {i}");
        }
        let locked = disable(&app, &tokens, PASSWORD, &authenticator.recovery_codes[0]).await;
        assert_eq!(locked.status(), Status::TooManyRequests);
        assert!(app.get_authed("/users/me", &tokens.access).await.into_json::<Value>().await.unwrap()["mfa"] == true);
    }

    async fn five_wrong_codes_at_confirmation_lock_the_pending_enrolment(backend) {
        let app = TestApp::new(backend).await;
        let user = app.with_user().await;
        let tokens = app.login(&user).await;
        let body = start_enrolment(&app, &tokens, PASSWORD).await;
        let authenticator = Authenticator::from_base32(body["secret"].as_str().unwrap());
        let wrong = wrong_code(&app, &authenticator);
        for i in 0..5 {
            assert_eq!(confirm(&app, &tokens, &wrong).await.status(), Status::Unauthorized, "guess {i}");
        }
        let locked = confirm(&app, &tokens, &authenticator.code(&app, 0)).await;
        assert_eq!(locked.status(), Status::TooManyRequests);
    }

    async fn wrong_codes_at_every_endpoint_share_one_counter_across_addresses(backend) {
        // A high password threshold, so only the second-factor counter can answer 429 here.
        let app = TestApp::builder(backend).with_config("throttle_pair_failures", 50).build().await;
        let (user, tokens, authenticator) = enrolled(&app).await;
        let wrong = wrong_code(&app, &authenticator);
        assert_eq!(new_recovery_codes(&app, &tokens, PASSWORD, &wrong).await.status(), Status::Unauthorized);
        assert_eq!(disable(&app, &tokens, PASSWORD, &wrong).await.status(), Status::Unauthorized);
        for ip in ["192.0.2.1", "192.0.2.2", "192.0.2.3"] {
            let token = mfa_token(&app, &user).await;
            assert_eq!(verify_from(&app, &token, &wrong, ip).await.status(), Status::Unauthorized, "from {ip}");
        }
        // A correct password at the login does not give the guesses back.
        let token = mfa_token(&app, &user).await;
        let right = authenticator.code(&app, 0);
        assert_eq!(verify_from(&app, &token, &right, "198.51.100.7").await.status(), Status::TooManyRequests);
        assert_eq!(new_recovery_codes(&app, &tokens, PASSWORD, &right).await.status(), Status::TooManyRequests);
        assert_eq!(disable(&app, &tokens, PASSWORD, &right).await.status(), Status::TooManyRequests);
        assert_eq!(confirm(&app, &tokens, &right).await.status(), Status::TooManyRequests, "429 before 409");
    }

    async fn the_lock_wins_over_a_wrong_password_and_a_dead_mfa_token(backend) {
        let app = TestApp::builder(backend).with_config("throttle_pair_failures", 50).build().await;
        let (user, tokens, authenticator) = enrolled(&app).await;
        let wrong = wrong_code(&app, &authenticator);
        let token = mfa_token(&app, &user).await;
        for _ in 0..5 {
            assert_eq!(verify(&app, &token, &wrong).await.status(), Status::Unauthorized);
        }
        assert_eq!(error_of(disable(&app, &tokens, "wrong password!", &wrong).await).await.1, "too_many_requests");
        assert_eq!(error_of(verify(&app, &token, &wrong).await).await.1, "too_many_requests", "the token is dead too");
    }

    async fn the_password_of_a_reauthentication_is_checked_before_the_code(backend) {
        let app = TestApp::builder(backend).with_config("throttle_pair_failures", 50).build().await;
        let (_, tokens, authenticator) = enrolled(&app).await;
        let wrong = wrong_code(&app, &authenticator);
        for _ in 0..6 {
            let response = new_recovery_codes(&app, &tokens, "wrong password!", &wrong).await;
            assert_eq!(error_of(response).await, (Status::Unauthorized, "invalid_credentials".into()));
        }
        // None of those reached the code: the right one still works.
        assert_eq!(new_recovery_codes(&app, &tokens, PASSWORD, &authenticator.code(&app, 0)).await.status(), Status::Ok);
    }

    async fn the_lock_ends_fifteen_minutes_after_the_fifth_failure(backend) {
        // Access tokens that outlive the lock, so the same session tries again after it.
        let app = TestApp::builder(backend)
            .with_config("throttle_pair_failures", 50)
            .with_config("access_ttl", 3600)
            .build()
            .await;
        let (_, tokens, authenticator) = enrolled(&app).await;
        for _ in 0..4 {
            assert_eq!(new_recovery_codes(&app, &tokens, PASSWORD, &wrong_code(&app, &authenticator)).await.status(), Status::Unauthorized);
        }
        app.clock.advance(100);
        assert_eq!(new_recovery_codes(&app, &tokens, PASSWORD, &wrong_code(&app, &authenticator)).await.status(), Status::Unauthorized);
        app.clock.advance(899);
        let locked = new_recovery_codes(&app, &tokens, PASSWORD, &authenticator.code(&app, 0)).await;
        assert_eq!(retry_after(&locked), 1);
        app.clock.advance(1);
        assert_eq!(new_recovery_codes(&app, &tokens, PASSWORD, &authenticator.code(&app, 0)).await.status(), Status::Ok);
    }

    async fn only_a_correct_code_clears_the_counter(backend) {
        let app = TestApp::builder(backend).with_config("throttle_pair_failures", 50).build().await;
        let (user, tokens, authenticator) = enrolled(&app).await;
        let wrong = wrong_code(&app, &authenticator);
        for _ in 0..4 {
            assert_eq!(disable(&app, &tokens, PASSWORD, &wrong).await.status(), Status::Unauthorized);
        }
        login_with_code(&app, &user, &authenticator.code(&app, 0)).await;
        app.clock.advance(30);
        let wrong = wrong_code(&app, &authenticator);
        for i in 0..4 {
            assert_eq!(disable(&app, &tokens, PASSWORD, &wrong).await.status(), Status::Unauthorized, "guess {i} after clearing");
        }
        assert_eq!(disable(&app, &tokens, PASSWORD, &authenticator.code(&app, 0)).await.status(), Status::NoContent);
    }

    async fn a_pending_enrolment_expires_after_ten_minutes(backend) {
        let app = TestApp::builder(backend).with_config("access_ttl", 3600).build().await;
        let user = app.with_user().await;
        let tokens = app.login(&user).await;
        let body = start_enrolment(&app, &tokens, PASSWORD).await;
        let authenticator = Authenticator::from_base32(body["secret"].as_str().unwrap());
        app.clock.advance(600);
        assert_eq!(error_of(confirm(&app, &tokens, &authenticator.code(&app, 0)).await).await, (Status::Conflict, "conflict".into()));
        let body = start_enrolment(&app, &tokens, PASSWORD).await;
        let authenticator = Authenticator::from_base32(body["secret"].as_str().unwrap());
        app.clock.advance(599);
        assert_eq!(confirm(&app, &tokens, &authenticator.code(&app, 0)).await.status(), Status::Ok);
    }

    async fn an_mfa_token_from_before_a_password_change_cannot_complete_the_login(backend) {
        let app = TestApp::new(backend).await;
        let (user, tokens, authenticator) = enrolled(&app).await;
        let token = mfa_token(&app, &user).await;
        let change = json!({"current_password": PASSWORD, "new_password": "a brand new password"});
        assert_eq!(app.put_authed("/users/me/password", &tokens.access, change).await.status(), Status::NoContent);
        let response = verify(&app, &token, &authenticator.code(&app, 0)).await;
        assert_eq!(error_of(response).await, (Status::Unauthorized, "invalid_grant".into()));
    }

    async fn an_mfa_token_dies_with_logout_all_and_with_disabling(backend) {
        let app = TestApp::new(backend).await;
        let (_, admin) = with_admin(&app).await;
        let (user, tokens, authenticator) = enrolled(&app).await;
        let token = mfa_token(&app, &user).await;
        assert_eq!(app.post_authed("/auth/logout-all", &tokens.access, json!({})).await.status(), Status::NoContent);
        assert_eq!(error_of(verify(&app, &token, &authenticator.code(&app, 0)).await).await.1, "invalid_grant");

        let token = mfa_token(&app, &user).await;
        let path = format!("/admin/users/{}", user.id);
        assert_eq!(patch_authed(&app, &path, &admin.access, json!({"disabled": true})).await.status(), Status::Ok);
        assert_eq!(patch_authed(&app, &path, &admin.access, json!({"disabled": false})).await.status(), Status::Ok);
        assert_eq!(error_of(verify(&app, &token, &authenticator.code(&app, 0)).await).await.1, "invalid_grant");
    }

    async fn of_120_simultaneous_wrong_codes_at_verify_no_more_than_five_are_checked(backend) {
        let app = TestApp::builder(backend).with_config("throttle_pair_failures", 1000).build().await;
        let (user, _, authenticator) = enrolled(&app).await;
        let wrong = wrong_code(&app, &authenticator);
        let mut mfa_tokens = vec![];
        for _ in 0..24 {
            mfa_tokens.push(mfa_token(&app, &user).await);
        }
        // Five guesses per token: the token's own cap never answers before the account's.
        let guesses = mfa_tokens.iter().flat_map(|t| std::iter::repeat_n(t, 5)).map(|t| verify(&app, t, &wrong));
        let statuses: Vec<Status> = futures::future::join_all(guesses).await.iter().map(|r| r.status()).collect();
        let (checked, throttled) = tally(&statuses);
        assert!(checked <= 5, "{checked} codes were checked");
        assert_eq!(checked + throttled, 120);
    }

    async fn of_60_simultaneous_wrong_codes_at_new_recovery_codes_no_more_than_five_are_checked(backend) {
        let app = TestApp::builder(backend).with_config("throttle_pair_failures", 1000).build().await;
        let (_, tokens, authenticator) = enrolled(&app).await;
        let wrong = wrong_code(&app, &authenticator);
        let guesses = (0..60).map(|_| new_recovery_codes(&app, &tokens, PASSWORD, &wrong));
        let statuses: Vec<Status> = futures::future::join_all(guesses).await.iter().map(|r| r.status()).collect();
        assert!(tally(&statuses).0 <= 5, "{statuses:?}");
    }

    async fn of_60_simultaneous_wrong_codes_at_confirmation_no_more_than_five_are_checked(backend) {
        let app = TestApp::new(backend).await;
        let user = app.with_user().await;
        let tokens = app.login(&user).await;
        let body = start_enrolment(&app, &tokens, PASSWORD).await;
        let authenticator = Authenticator::from_base32(body["secret"].as_str().unwrap());
        let wrong = wrong_code(&app, &authenticator);
        let guesses = (0..60).map(|_| confirm(&app, &tokens, &wrong));
        let statuses: Vec<Status> = futures::future::join_all(guesses).await.iter().map(|r| r.status()).collect();
        assert!(tally(&statuses).0 <= 5, "{statuses:?}");
    }
}
