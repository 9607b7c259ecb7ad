//! Mail (docs/mail.md) through a real SMTP server over TCP ([`SmtpSink`]): password reset,
//! email verification and email change, their tokens, limits and pages.

use rocket::http::{ContentType, Header, Status};
use serde_json::{json, Value};

use crate::helpers::*;
use crate::mfa_support::{enrol, login_with_code};
use crate::on_both_backends;
use crate::smtp_sink::{Received, SmtpSink};

/// The service with mail through `sink`.
pub async fn mail_app(backend: Backend, sink: &SmtpSink) -> TestApp {
    TestApp::builder(backend).with_config("mail.smtp_url", sink.url()).build().await
}

/// Waits for the `n`-th message to `address` and returns it (messages sent together may
/// arrive in any order: see [`link_mail`]).
pub async fn nth_mail(sink: &SmtpSink, address: &str, n: usize) -> Received {
    eventually(&format!("mail #{n} to {address}"), async || sink.to(address).len() >= n).await;
    sink.to(address)[n - 1].clone()
}

/// Waits for the `n`-th message to `address` whose link leads to `page` and returns it.
pub async fn link_mail(sink: &SmtpSink, address: &str, page: &str, n: usize) -> Received {
    let links =
        || sink.to(address).into_iter().filter(|m| m.text().contains(&format!("/{page}?token="))).collect::<Vec<_>>();
    eventually(&format!("{page} mail #{n} to {address}"), async || links().len() >= n).await;
    links()[n - 1].clone()
}

/// Registers three accounts at once and waits for their verification mails: sent together
/// they may go over one kept SMTP session or several. Returns how many sessions the sender
/// opened, every one of them still open.
async fn kept_sessions(app: &TestApp, sink: &SmtpSink) -> usize {
    let emails = ["ann@example.com", "bob@example.com", "cyd@example.com"];
    futures::future::join_all(emails.map(|email| app.with_user_email(email))).await;
    for email in emails {
        link_mail(sink, email, "verify-email", 1).await;
    }
    assert_eq!((sink.quits(), sink.hang_ups()), (0, 0), "the sessions are kept for the next messages");
    assert!(sink.sessions() >= 1);
    sink.sessions()
}

async fn forgot(app: &TestApp, email: &str) -> Status {
    let response = app.post("/auth/password/forgot", json!({"email": email})).await;
    let status = response.status();
    let body: Value = response.into_json().await.unwrap_or(Value::Null);
    assert!(status != Status::Accepted || body == json!({}), "202 answers {{}}");
    status
}

async fn reset(app: &TestApp, token: &str, password: &str) -> Status {
    app.post("/auth/password/reset", json!({"token": token, "new_password": password})).await.status()
}

/// Messages in the outbox, pending reset requests included.
async fn outbox_depth(app: &TestApp) -> i64 {
    use portcullis::models::OutboxStore;
    use rocket_db_pools::{Database, Pool};
    let db = portcullis::db::Db::fetch(app.client.rocket()).expect("db");
    let mut conn = db.get().await.expect("connection");
    portcullis::db::with_conn!(conn, |c| c.outbox_depth().await).expect("count")
}

const NEW_PASSWORD: &str = "a brand new passphrase";

on_both_backends! {
    async fn a_reset_mail_leads_to_a_new_password_once_and_every_session_ends(backend) {
        let sink = SmtpSink::start().await;
        let app = mail_app(backend, &sink).await;
        let user = app.with_user().await;
        let tokens = app.login(&user).await;
        assert_eq!(forgot(&app, "Alice@Example.com").await, Status::Accepted);
        let mail = link_mail(&sink, &user.email, "reset-password", 1).await;
        assert!(mail.subject().contains("Reset your"), "{}", mail.subject());
        assert!(mail.text().contains("/reset-password?token="));
        assert_eq!(mail.to, vec![user.email.clone()], "only the recipient");
        let token = mail.token();
        assert!(token.len() >= 43, "256 bits");
        assert_eq!(reset(&app, &token, NEW_PASSWORD).await, Status::NoContent);
        assert_eq!(app.me_status(&tokens.access).await, Status::Unauthorized, "sessions ended");
        assert_eq!(app.refresh_response(&tokens.refresh).await.status(), Status::Unauthorized);
        assert_eq!(app.login_response(&user.email, PASSWORD).await.status(), Status::Unauthorized);
        assert_eq!(app.login_response(&user.email, NEW_PASSWORD).await.status(), Status::Ok);
        let (status, code) = error_of(app.post("/auth/password/reset", json!({"token": token, "new_password": "yet another passphrase"})).await).await;
        assert_eq!((status, code.as_str()), (Status::BadRequest, "invalid_grant"), "single use");
        nth_mail(&sink, &user.email, 3).await;
        let notice = sink.to(&user.email).into_iter().find(|m| m.subject().contains("password was changed")).expect("a notice");
        assert!(notice.subject().contains("password was changed"), "{}", notice.subject());
    }

    async fn forgot_answers_the_same_for_unknown_disabled_and_hostile_emails_and_mails_none_of_them(backend) {
        let sink = SmtpSink::start().await;
        let app = mail_app(backend, &sink).await;
        let long = format!("{}@example.com", "a".repeat(300));
        for email in ["nobody@example.com", "nul\u{0}@example.com", long.as_str(), "bidi\u{202E}@example.com", ""] {
            assert_eq!(forgot(&app, email).await, Status::Accepted, "{email:?}");
        }
        let response = app.post("/auth/password/forgot", json!({"email": 5})).await;
        assert!(response.status().code < 500);
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert!(sink.messages().is_empty());
    }

    async fn requests_for_unknown_addresses_leave_the_outbox_unsent(backend) {
        let sink = SmtpSink::start().await;
        let app = mail_app(backend, &sink).await;
        let user = app.with_user().await;
        assert_eq!(forgot(&app, "nobody@example.com").await, Status::Accepted);
        assert_eq!(forgot(&app, "nobody-else@example.com").await, Status::Accepted);
        assert_eq!(forgot(&app, &user.email).await, Status::Accepted);
        link_mail(&sink, &user.email, "reset-password", 1).await;
        eventually("an empty outbox", async || outbox_depth(&app).await == 0).await;
        for unknown in ["nobody@example.com", "nobody-else@example.com"] {
            assert!(sink.to(unknown).is_empty(), "a decoy for {unknown} went out");
        }
        let others = sink.messages().into_iter().filter(|m| m.to != vec![user.email.clone()]).count();
        assert_eq!(others, 0, "only the known address's mail went out");
    }

    async fn a_new_request_and_a_password_change_void_earlier_reset_tokens(backend) {
        let sink = SmtpSink::start().await;
        let app = mail_app(backend, &sink).await;
        let user = app.with_user().await;
        forgot(&app, &user.email).await;
        let first = link_mail(&sink, &user.email, "reset-password", 1).await.token();
        forgot(&app, &user.email).await;
        let second = link_mail(&sink, &user.email, "reset-password", 2).await.token();
        assert_eq!(reset(&app, &first, NEW_PASSWORD).await, Status::BadRequest, "voided by the new request");
        let tokens = app.login(&user).await;
        let change = json!({"current_password": PASSWORD, "new_password": "changed by the owner"});
        assert_eq!(app.put_authed("/users/me/password", &tokens.access, change).await.status(), Status::NoContent);
        assert_eq!(reset(&app, &second, NEW_PASSWORD).await, Status::BadRequest, "voided by the password change");
    }

    async fn a_reset_from_anywhere_clears_the_password_failures_counted_against_the_account(backend) {
        let sink = SmtpSink::start().await;
        let app = mail_app(backend, &sink).await;
        let user = app.with_user().await;
        let login_from = |address: &'static str, password: &'static str| {
            let body = json!({"email": user.email, "password": password});
            let request = app.client.post("/auth/login").remote(format!("{address}:4000").parse().unwrap());
            app.json_request(request, body).dispatch()
        };
        // Guessed at from one address until that address is locked out of the account...
        let mut locked = false;
        for _ in 0..8 {
            locked |= login_from("127.0.0.61", "wrong password").await.status() == Status::TooManyRequests;
        }
        assert!(locked, "the guesses lock the (account, address) pair");
        // ...then reset from another one (the mail link opened on the owner's phone).
        forgot(&app, &user.email).await;
        let token = link_mail(&sink, &user.email, "reset-password", 1).await.token();
        let body = json!({"token": token, "new_password": NEW_PASSWORD});
        let request = app.client.post("/auth/password/reset").remote("127.0.0.62:4000".parse().unwrap());
        assert_eq!(app.json_request(request, body).dispatch().await.status(), Status::NoContent);
        assert_eq!(login_from("127.0.0.61", NEW_PASSWORD).await.status(), Status::Ok, "the new password works at once");
    }

    async fn reset_tokens_expire_and_bad_passwords_keep_the_token(backend) {
        let sink = SmtpSink::start().await;
        let app = mail_app(backend, &sink).await;
        let user = app.with_user().await;
        forgot(&app, &user.email).await;
        let token = link_mail(&sink, &user.email, "reset-password", 1).await.token();
        assert_eq!(reset(&app, &token, "short").await, Status::UnprocessableEntity);
        assert_eq!(reset(&app, "not-a-token", NEW_PASSWORD).await, Status::BadRequest);
        app.clock.advance(901);
        assert_eq!(reset(&app, &token, NEW_PASSWORD).await, Status::BadRequest, "expired after reset_ttl");
    }

    async fn simultaneous_resets_with_one_token_succeed_exactly_once(backend) {
        let sink = SmtpSink::start().await;
        let app = mail_app(backend, &sink).await;
        let user = app.with_user().await;
        forgot(&app, &user.email).await;
        let token = link_mail(&sink, &user.email, "reset-password", 1).await.token();
        let attempts = (0..6).map(|i| {
            let body = json!({"token": token, "new_password": format!("parallel passphrase {i}")});
            app.json_request(app.client.post("/auth/password/reset"), body).dispatch()
        });
        let statuses: Vec<Status> = futures::future::join_all(attempts).await.iter().map(|r| r.status()).collect();
        assert_eq!(statuses.iter().filter(|s| **s == Status::NoContent).count(), 1, "{statuses:?}");
        assert!(statuses.iter().all(|s| *s == Status::NoContent || *s == Status::BadRequest), "{statuses:?}");
    }

    async fn a_reset_of_an_account_with_mfa_needs_its_code(backend) {
        let sink = SmtpSink::start().await;
        let app = mail_app(backend, &sink).await;
        let user = app.with_user().await;
        let authenticator = enrol(&app, &app.login(&user).await).await;
        forgot(&app, &user.email).await;
        let token = link_mail(&sink, &user.email, "reset-password", 1).await.token();
        let (status, code) = error_of(app.post("/auth/password/reset", json!({"token": token, "new_password": NEW_PASSWORD})).await).await;
        assert_eq!((status, code.as_str()), (Status::Forbidden, "mfa_required"));
        let wrong = json!({"token": token, "new_password": NEW_PASSWORD, "code": "000000"});
        let (status, code) = error_of(app.post("/auth/password/reset", wrong).await).await;
        assert_eq!((status, code.as_str()), (Status::Unauthorized, "invalid_credentials"));
        let right = json!({"token": token, "new_password": NEW_PASSWORD, "code": authenticator.code(&app, 0)});
        assert_eq!(app.post("/auth/password/reset", right).await.status(), Status::NoContent, "the token survived the wrong code");
        app.clock.advance(30);
        let new = TestUser { password: NEW_PASSWORD.into(), ..user };
        login_with_code(&app, &new, &authenticator.code(&app, 0)).await;
    }

    async fn registration_mails_a_link_that_verifies_the_address(backend) {
        let sink = SmtpSink::start().await;
        let app = mail_app(backend, &sink).await;
        let user = app.with_user().await;
        let tokens = app.login(&user).await;
        let me: Value = app.get_authed("/users/me", &tokens.access).await.into_json().await.unwrap();
        assert_eq!(me["email_verified"], false);
        let mail = link_mail(&sink, &user.email, "verify-email", 1).await;
        let token = mail.token();
        assert_eq!(app.post("/auth/email/verify", json!({"token": token})).await.status(), Status::NoContent);
        let me: Value = app.get_authed("/users/me", &tokens.access).await.into_json().await.unwrap();
        assert_eq!(me["email_verified"], true);
        let (status, code) = error_of(app.post("/auth/email/verify", json!({"token": token})).await).await;
        assert_eq!((status, code.as_str()), (Status::BadRequest, "invalid_grant"));
        assert_eq!(app.post_authed("/auth/email/verify/send", &tokens.access, json!({})).await.status(), Status::Accepted);
    }

    async fn an_email_change_is_confirmed_by_the_new_address_and_told_to_the_old(backend) {
        let sink = SmtpSink::start().await;
        let app = mail_app(backend, &sink).await;
        let user = app.with_user().await;
        app.with_user_email("taken@example.com").await;
        let tokens = app.login(&user).await;
        let wrong = json!({"password": "not the password", "new_email": "alice@new.example"});
        let (status, code) = error_of(app.post_authed("/users/me/email", &tokens.access, wrong).await).await;
        assert_eq!((status, code.as_str()), (Status::Unauthorized, "invalid_credentials"));
        let taken = json!({"password": PASSWORD, "new_email": "Taken@Example.com"});
        assert_eq!(app.post_authed("/users/me/email", &tokens.access, taken).await.status(), Status::Conflict);
        let body = json!({"password": PASSWORD, "new_email": "alice@new.example"});
        assert_eq!(app.post_authed("/users/me/email", &tokens.access, body).await.status(), Status::Accepted);
        let confirm = nth_mail(&sink, "alice@new.example", 1).await;
        nth_mail(&sink, &user.email, 2).await;
        let notice = sink.to(&user.email).into_iter().find(|m| m.subject().contains("being changed")).expect("a notice");
        assert!(notice.text().contains("alice@new.example"), "the notice names the new address");
        assert!(!notice.text().contains("token="), "the notice carries no link");
        let me: Value = app.get_authed("/users/me", &tokens.access).await.into_json().await.unwrap();
        assert_eq!(me["email"], user.email, "unchanged until confirmed");
        let response = app.post("/auth/email/confirm", json!({"token": confirm.token()})).await;
        assert_eq!(response.status(), Status::Ok);
        let changed: Value = response.into_json().await.unwrap();
        assert_eq!((changed["email"].as_str(), changed["email_verified"].as_bool()), (Some("alice@new.example"), Some(true)));
        assert_eq!(app.login_response("alice@new.example", PASSWORD).await.status(), Status::Ok);
        assert_eq!(app.post("/auth/email/confirm", json!({"token": confirm.token()})).await.status(), Status::BadRequest);
    }

    async fn the_fourth_token_mail_to_one_address_in_an_hour_is_answered_202_and_not_sent(backend) {
        let sink = SmtpSink::start().await;
        let app = mail_app(backend, &sink).await;
        let user = app.with_user().await;
        for _ in 0..3 {
            assert_eq!(forgot(&app, &user.email).await, Status::Accepted);
        }
        nth_mail(&sink, &user.email, 3).await;
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let mails = sink.to(&user.email);
        assert_eq!(mails.len(), 3, "registration's and two resets");
        // The two resets may arrive in either order; the later one's token is alive.
        let resets: Vec<String> = mails.iter().filter(|m| m.text().contains("/reset-password?")).map(|m| m.token()).collect();
        let mut statuses = vec![];
        for token in &resets {
            statuses.push(reset(&app, token, NEW_PASSWORD).await);
        }
        statuses.sort_by_key(|s| s.code);
        assert_eq!(statuses, vec![Status::NoContent, Status::BadRequest], "a limited request voids nothing");
        app.clock.advance(3601);
        forgot(&app, &user.email).await;
        nth_mail(&sink, &user.email, 5).await;
    }

    async fn with_require_verified_email_an_unverified_login_is_403_after_the_password_and_mails_a_link(backend) {
        let sink = SmtpSink::start().await;
        let app = TestApp::builder(backend)
            .with_config("mail.smtp_url", sink.url())
            .with_config("require_verified_email", true)
            .build()
            .await;
        let user = app.with_user().await;
        assert_eq!(app.login_response(&user.email, "wrong password").await.status(), Status::Unauthorized);
        let (status, code) = error_of(app.login_response(&user.email, PASSWORD).await).await;
        assert_eq!((status, code.as_str()), (Status::Forbidden, "email_unverified"));
        let link = link_mail(&sink, &user.email, "verify-email", 2).await.token();
        assert_eq!(app.post("/auth/email/verify", json!({"token": link})).await.status(), Status::NoContent);
        app.login(&user).await;
    }

    async fn without_smtp_url_the_mail_endpoints_answer_503_after_the_bearer_check(backend) {
        let app = TestApp::new(backend).await;
        let (status, code) = error_of(app.post("/auth/password/forgot", json!({"email": "a@example.com"})).await).await;
        assert_eq!((status, code.as_str()), (Status::ServiceUnavailable, "unavailable"));
        let response = app.client.post("/auth/email/verify/send").dispatch().await;
        assert_eq!(response.status(), Status::Unauthorized);
        let user = app.with_user().await;
        let tokens = app.login(&user).await;
        let me: Value = app.get_authed("/users/me", &tokens.access).await.into_json().await.unwrap();
        assert_eq!(me["email_verified"], false);
        let response = app.post_authed("/auth/email/verify/send", &tokens.access, json!({})).await;
        assert_eq!(response.status(), Status::ServiceUnavailable);
    }

    async fn the_link_page_shows_a_form_on_get_and_spends_the_token_only_on_a_post_with_its_csrf_token(backend) {
        let sink = SmtpSink::start().await;
        let app = mail_app(backend, &sink).await;
        let user = app.with_user().await;
        let token = link_mail(&sink, &user.email, "verify-email", 1).await.token();
        let page = app.client.get(format!("/verify-email?token={token}")).dispatch().await;
        assert_eq!(page.status(), Status::Ok);
        assert_eq!(page.headers().get_one("Referrer-Policy"), Some("no-referrer"));
        assert!(page.headers().get_one("Content-Security-Policy").unwrap().contains("frame-ancestors 'none'"));
        let html = page.into_string().await.unwrap();
        assert!(html.contains("<label") || html.contains("<button"), "a form");
        let csrf = html.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
        let forged = app.client.post("/verify-email").header(ContentType::Form)
            .body(format!("csrf=forged&token={token}")).dispatch().await;
        assert_eq!(forged.status(), Status::Forbidden);
        let posted = app.client.post("/verify-email").header(ContentType::Form)
            .body(format!("csrf={csrf}&token={token}")).dispatch().await;
        assert_eq!(posted.status(), Status::SeeOther);
        let again = app.client.post("/verify-email").header(ContentType::Form).header(Header::new("Accept", "text/html"))
            .body(format!("csrf={csrf}&token={token}")).dispatch().await;
        assert_eq!(again.status(), Status::BadRequest, "spent");
    }

    async fn the_sender_ends_every_kept_smtp_session_with_quit_at_shutdown(backend) {
        let sink = SmtpSink::start().await;
        let app = mail_app(backend, &sink).await;
        let sessions = kept_sessions(&app, &sink).await;
        app.client.rocket().shutdown().notify();
        eventually("QUIT on every kept session", async || sink.quits() == sessions).await;
        assert_eq!(sink.hang_ups(), 0, "no session closed without QUIT");
    }

    async fn a_server_that_never_answers_quit_is_hung_up_on_after_the_mail_timeout(backend) {
        let sink = SmtpSink::start().await;
        let app = TestApp::builder(backend).with_config("mail.smtp_url", sink.url()).with_config("mail.timeout", 1).build().await;
        let sessions = kept_sessions(&app, &sink).await;
        sink.freeze_open_sessions();
        app.client.rocket().shutdown().notify();
        eventually("the unanswered QUITs", async || sink.quits() == sessions).await;
        eventually("the sender hanging up", async || sink.hang_ups() == sessions).await;
        assert_eq!(sink.quits(), sessions, "no second QUIT");
    }
}
