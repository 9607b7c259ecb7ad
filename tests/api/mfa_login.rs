//! The two-step login with MFA on: `mfa_required` and its `mfa_token`, codes accepted once and
//! within ±1 step, the token's single use, expiry and attempt limit, throttling, the password
//! grant, `amr`, and a login answer that reveals nothing about MFA to a wrong password.

use crate::helpers::*;
use crate::mfa_support::*;
use crate::oauth::post_form;
use crate::on_both_backends;
use rocket::http::Status;
use serde_json::{json, Value};

/// An app with a user who has MFA on.
async fn enrolled(app: &TestApp) -> (TestUser, Authenticator) {
    let user = app.with_user().await;
    let tokens = app.login(&user).await;
    (user.clone(), enrol(app, &tokens).await)
}

on_both_backends! {
    async fn a_correct_password_answers_mfa_required_and_a_code_completes_the_login_with_amr(backend) {
        let app = TestApp::new(backend).await;
        let plain = app.with_user_email("plain@example.com").await;
        assert_eq!(claims(&app.login(&plain).await.access)["amr"], json!(["pwd"]));
        let (user, authenticator) = enrolled(&app).await;
        let response = app.login_response(&user.email, &user.password).await;
        assert_eq!(response.status(), Status::Forbidden);
        assert_eq!(response.headers().get_one("Cache-Control"), Some("no-store"));
        let body: Value = response.into_json().await.unwrap();
        assert_eq!(body["error"], "mfa_required");
        assert!(body["error_description"].is_string());
        let token = body["mfa_token"].as_str().unwrap().to_owned();
        assert_eq!(app.me_status(&token).await, Status::Unauthorized, "an mfa_token is no access token");
        assert_eq!(app.refresh_response(&token).await.status(), Status::Unauthorized, "nor a refresh token");
        let response = verify(&app, &token, &authenticator.code(&app, 0)).await;
        assert_eq!(response.status(), Status::Ok);
        assert_eq!(response.headers().get_one("Cache-Control"), Some("no-store"));
        let tokens = tokens(response).await;
        assert_eq!(claims(&tokens.access)["amr"], json!(["pwd", "otp", "mfa"]));
        let refreshed = app.refresh_response(&tokens.refresh).await;
        assert_eq!(refreshed.status(), Status::Ok);
        assert_eq!(claims(&crate::helpers::tokens(refreshed).await.access)["amr"], json!(["pwd", "otp", "mfa"]), "a refresh keeps amr");
    }

    async fn a_code_that_was_accepted_once_is_refused_afterwards(backend) {
        let app = TestApp::new(backend).await;
        let (user, authenticator) = enrolled(&app).await;
        let code = authenticator.code(&app, 0);
        login_with_code(&app, &user, &code).await;
        let replay = verify(&app, &mfa_token(&app, &user).await, &code).await;
        assert_eq!(error_of(replay).await, (Status::Unauthorized, "invalid_credentials".into()));
        // An older code of the window is refused too once a newer one was accepted.
        let older = verify(&app, &mfa_token(&app, &user).await, &authenticator.code(&app, -1)).await;
        assert_eq!(error_of(older).await, (Status::Unauthorized, "invalid_credentials".into()));
    }

    async fn the_adjacent_steps_are_accepted_and_a_code_two_steps_away_is_refused(backend) {
        let app = TestApp::builder(backend).with_config("throttle_pair_failures", 50).build().await;
        let (user, authenticator) = enrolled(&app).await;
        app.clock.advance(300);
        for offset in [-2, 2] {
            let response = verify(&app, &mfa_token(&app, &user).await, &authenticator.code(&app, offset)).await;
            assert_eq!(error_of(response).await, (Status::Unauthorized, "invalid_credentials".into()), "offset {offset}");
        }
        login_with_code(&app, &user, &authenticator.code(&app, -1)).await;
        login_with_code(&app, &user, &authenticator.code(&app, 0)).await;
        login_with_code(&app, &user, &authenticator.code(&app, 1)).await;
    }

    async fn of_simultaneous_verifies_of_one_code_exactly_one_wins(backend) {
        let app = TestApp::new(backend).await;
        let (user, authenticator) = enrolled(&app).await;
        let code = authenticator.code(&app, 0);
        let mut mfa_tokens = vec![];
        for _ in 0..4 {
            mfa_tokens.push(mfa_token(&app, &user).await);
        }
        let responses = futures::future::join_all(mfa_tokens.iter().map(|t| verify(&app, t, &code))).await;
        let statuses: Vec<Status> = responses.iter().map(|r| r.status()).collect();
        assert_eq!(statuses.iter().filter(|s| **s == Status::Ok).count(), 1, "{statuses:?}");
        assert_eq!(statuses.iter().filter(|s| **s == Status::Unauthorized).count(), 3, "{statuses:?}");
    }

    async fn of_simultaneous_verifies_of_one_mfa_token_exactly_one_wins(backend) {
        let app = TestApp::new(backend).await;
        let (user, authenticator) = enrolled(&app).await;
        let token = mfa_token(&app, &user).await;
        let codes = [authenticator.code(&app, -1), authenticator.code(&app, 0), authenticator.code(&app, 1)];
        let responses = futures::future::join_all(codes.iter().map(|c| verify(&app, &token, c))).await;
        let statuses: Vec<Status> = responses.iter().map(|r| r.status()).collect();
        assert_eq!(statuses.iter().filter(|s| **s == Status::Ok).count(), 1, "{statuses:?}");
    }

    async fn the_mfa_token_is_single_use(backend) {
        let app = TestApp::new(backend).await;
        let (user, authenticator) = enrolled(&app).await;
        let token = mfa_token(&app, &user).await;
        assert_eq!(verify(&app, &token, &authenticator.code(&app, 0)).await.status(), Status::Ok);
        let again = verify(&app, &token, &authenticator.code(&app, 1)).await;
        assert_eq!(error_of(again).await, (Status::Unauthorized, "invalid_grant".into()));
    }

    async fn the_mfa_token_expires_after_five_minutes(backend) {
        let app = TestApp::new(backend).await;
        let (user, authenticator) = enrolled(&app).await;
        let token = mfa_token(&app, &user).await;
        app.clock.advance(300);
        let late = verify(&app, &token, &authenticator.code(&app, 0)).await;
        assert_eq!(error_of(late).await, (Status::Unauthorized, "invalid_grant".into()));
        let token = mfa_token(&app, &user).await;
        app.clock.advance(299);
        assert_eq!(verify(&app, &token, &authenticator.code(&app, 0)).await.status(), Status::Ok);
    }

    async fn five_wrong_codes_kill_the_mfa_token(backend) {
        let app = TestApp::builder(backend).with_config("throttle_pair_failures", 50).build().await;
        let (user, authenticator) = enrolled(&app).await;
        let token = mfa_token(&app, &user).await;
        let right = authenticator.code(&app, 0);
        let wrong = if right == "000000" { "111111" } else { "000000" };
        for _ in 0..4 {
            assert_eq!(error_of(verify(&app, &token, wrong).await).await, (Status::Unauthorized, "invalid_credentials".into()));
        }
        // A login completed in between clears the account's second-factor counter, not the
        // attempts this token has used.
        login_with_code(&app, &user, &right).await;
        app.clock.advance(30);
        assert_eq!(error_of(verify(&app, &token, wrong).await).await, (Status::Unauthorized, "invalid_credentials".into()));
        let right = authenticator.code(&app, 0);
        assert_eq!(error_of(verify(&app, &token, &right).await).await, (Status::Unauthorized, "invalid_grant".into()));
        login_with_code(&app, &user, &right).await;
    }

    async fn simultaneous_wrong_codes_cannot_exceed_the_five_attempts_of_an_mfa_token(backend) {
        let app = TestApp::builder(backend).with_config("throttle_pair_failures", 50).build().await;
        let (user, authenticator) = enrolled(&app).await;
        let token = mfa_token(&app, &user).await;
        let right = authenticator.code(&app, 0);
        let wrong = if right == "000000" { "111111" } else { "000000" };
        let responses = futures::future::join_all((0..10).map(|_| verify(&app, &token, wrong))).await;
        let mut codes = vec![];
        for response in responses {
            codes.push(error_of(response).await.1);
        }
        assert_eq!(codes.iter().filter(|c| *c == "invalid_credentials").count(), 5, "{codes:?}");
        // The other five meet the dead token or the account's locked second factor.
        let refused = codes.iter().filter(|c| *c == "invalid_grant" || *c == "too_many_requests").count();
        assert_eq!(refused, 5, "{codes:?}");
        assert_eq!(error_of(verify(&app, &token, &right).await).await.1, "too_many_requests");
    }

    async fn wrong_codes_count_toward_the_login_throttling_of_the_account(backend) {
        let app = TestApp::builder(backend).with_config("throttle_pair_failures", 3).build().await;
        let (user, authenticator) = enrolled(&app).await;
        for _ in 0..3 {
            let response = verify(&app, &mfa_token(&app, &user).await, "not-a-code").await;
            assert_eq!(error_of(response).await, (Status::Unauthorized, "invalid_credentials".into()));
        }
        let locked = app.login_response(&user.email, &user.password).await;
        assert_eq!(locked.status(), Status::TooManyRequests);
        app.clock.advance(1);
        login_with_code(&app, &user, &authenticator.code(&app, 0)).await;
    }

    async fn a_wrong_password_answers_the_same_with_and_without_mfa(backend) {
        let app = TestApp::new(backend).await;
        let (user, _) = enrolled(&app).await;
        let plain = app.with_user_email("plain@example.com").await;
        let mut answers = vec![];
        for email in [user.email.as_str(), plain.email.as_str(), "nobody@example.com"] {
            let response = app.login_response(email, "wrong password!").await;
            let status = response.status();
            answers.push((status, response.into_string().await.unwrap()));
        }
        assert_eq!(answers[0].0, Status::Unauthorized);
        assert!(answers.iter().all(|a| *a == answers[0]), "{answers:?}");
    }

    async fn the_password_grant_with_mfa_on_answers_mfa_required(backend) {
        let app = TestApp::new(backend).await;
        let (user, authenticator) = enrolled(&app).await;
        let form = [("grant_type", "password"), ("username", user.email.as_str()), ("password", user.password.as_str())];
        let response = post_form(&app, "/oauth/token", &form).await;
        assert_eq!(response.status(), Status::Forbidden);
        let body: Value = response.into_json().await.unwrap();
        assert_eq!(body["error"], "mfa_required");
        let token = body["mfa_token"].as_str().unwrap();
        let response = verify(&app, token, &authenticator.code(&app, 0)).await;
        assert_eq!(response.status(), Status::Ok);
        let wrong = [("grant_type", "password"), ("username", user.email.as_str()), ("password", "wrong password!")];
        assert_eq!(error_of(post_form(&app, "/oauth/token", &wrong).await).await, (Status::BadRequest, "invalid_grant".into()));
    }

    async fn an_account_disabled_between_the_steps_cannot_complete_the_login(backend) {
        let app = TestApp::new(backend).await;
        let (_, admin) = crate::admin_support::with_admin(&app).await;
        let (user, authenticator) = enrolled(&app).await;
        let token = mfa_token(&app, &user).await;
        let path = format!("/admin/users/{}", user.id);
        let response = crate::admin_support::patch_authed(&app, &path, &admin.access, json!({"disabled": true})).await;
        assert_eq!(response.status(), Status::Ok);
        // Disabling ended the pending login with the sessions.
        let response = verify(&app, &token, &authenticator.code(&app, 0)).await;
        assert_eq!(error_of(response).await, (Status::Unauthorized, "invalid_grant".into()));
    }
}
