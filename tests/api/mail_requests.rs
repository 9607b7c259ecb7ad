//! Password-reset requests are issued by the sender, not the request (`mail::issue`, docs/mail.md
//! "Timing"): the request writes one row whatever the address; what stays behind is right in
//! every order — a password change never leaves a live reset link of a request made before it, of two
//! requests the later one's link is the one that works, and the audit says what happened.

use rocket::http::Status;
use serde_json::{json, Value};

use crate::admin_support::{get_json, with_admin};
use crate::helpers::*;
use crate::mail::{link_mail, mail_app};
use crate::on_both_backends;
use crate::smtp_sink::{Received, SmtpSink};

/// `POST /auth/password/forgot` from 127.0.0.2.
async fn forgot(app: &TestApp, email: &str) {
    let request = app.json_request(app.client.post("/auth/password/forgot"), json!({"email": email}));
    let response = request.remote("127.0.0.2:5000".parse().unwrap()).dispatch().await;
    assert_eq!(response.status(), Status::Accepted);
}

async fn reset(app: &TestApp, token: &str, password: &str) -> Status {
    app.post("/auth/password/reset", json!({"token": token, "new_password": password})).await.status()
}

/// Reset mails to `address` so far, in the order their requests were made (Message-IDs are
/// time-ordered UUIDs, fixed when the request was written).
fn resets(sink: &SmtpSink, address: &str) -> Vec<Received> {
    let mut mails: Vec<Received> =
        sink.to(address).into_iter().filter(|m| m.text().contains("/reset-password?token=")).collect();
    mails.sort_by_key(message_id);
    mails
}

fn message_id(mail: &Received) -> String {
    mail.data.lines().find_map(|l| l.strip_prefix("Message-ID: ")).unwrap_or_default().to_owned()
}

async fn outbox_is_empty(app: &TestApp) {
    use portcullis::models::OutboxStore;
    let mut conn = crate::oidc_support::conn(app).await;
    eventually("an empty outbox", async || {
        portcullis::db::with_conn!(&mut conn, |c| c.outbox_depth().await).expect("count") == 0
    })
    .await;
}

on_both_backends! {
    async fn a_reset_request_still_waiting_when_the_password_changes_is_never_issued(backend) {
        use portcullis::mail::MailKind;
        use portcullis::models::OutboxStore;
        // An instance without mail has no sender: the request it holds waits, unissued.
        let quiet = TestApp::new(backend).await;
        let user = quiet.with_user().await;
        let tokens = quiet.login(&user).await;
        let token = "a-token-the-test-made-in-place-of-the-requests-own-0123456789";
        let mailer = &crate::oidc_support::auth(&quiet).mail;
        let link = mailer.link(MailKind::Reset, token);
        let hash = portcullis::auth::secrets::hash_token(token);
        let request = mailer.reset_request(&user.email, &link, &hash, Some("127.0.0.2"), false, quiet.clock.now());
        let mut conn = crate::oidc_support::conn(&quiet).await;
        portcullis::write_tx!(&mut conn, |c| c.insert_message(&request).await).expect("queued");
        drop(conn);
        let change = json!({"current_password": PASSWORD, "new_password": "changed while the request waited"});
        assert_eq!(quiet.put_authed("/users/me/password", &tokens.access, change).await.status(), Status::NoContent);
        // An instance with mail comes up: nothing is left for its sender to issue.
        let sink = SmtpSink::start().await;
        let url = sink.url();
        let sending = quiet.second_instance(|b| b.with_config("mail.smtp_url", url)).await;
        outbox_is_empty(&sending).await;
        assert!(resets(&sink, &user.email).is_empty(), "no reset mail after the change");
        assert_eq!(reset(&sending, token, "a reset that must not work").await, Status::BadRequest);
    }

    async fn a_password_change_racing_the_issue_of_a_reset_request_never_leaves_a_live_reset_link(backend) {
        // The request is answered before the change starts, so it was pending then; the sender
        // issues it at about the time the change commits (one or the other first).
        let sink = SmtpSink::start().await;
        let app = mail_app(backend, &sink).await;
        let user = app.with_user().await;
        let mut password = PASSWORD.to_owned();
        for round in 0..12 {
            let tokens = app.login_response(&user.email, &password).await.into_json::<Value>().await.unwrap();
            let access = tokens["access_token"].as_str().unwrap().to_owned();
            let next = format!("the passphrase of round {round}");
            let change = json!({"current_password": password, "new_password": next});
            forgot(&app, &user.email).await;
            assert_eq!(app.put_authed("/users/me/password", &access, change).await.status(), Status::NoContent);
            password = next;
            outbox_is_empty(&app).await;
            for mail in resets(&sink, &user.email) {
                assert_eq!(reset(&app, &mail.token(), "a reset that must not work").await, Status::BadRequest, "round {round}");
            }
        }
    }

    async fn a_ten_megabyte_email_is_refused_before_anything_is_written(backend) {
        let sink = SmtpSink::start().await;
        let app = mail_app(backend, &sink).await;
        let huge = format!("{}@example.com", "a".repeat(10 * 1024 * 1024));
        let response = app.post("/auth/password/forgot", json!({"email": huge})).await;
        assert!(response.status().code < 500, "{}", response.status());
        outbox_is_empty(&app).await;
        assert!(sink.messages().is_empty());
    }

    async fn of_two_requests_made_at_once_only_the_later_ones_link_works(backend) {
        let sink = SmtpSink::start().await;
        let app = mail_app(backend, &sink).await;
        let user = app.with_user().await;
        tokio::join!(forgot(&app, &user.email), forgot(&app, &user.email));
        link_mail(&sink, &user.email, "reset-password", 2).await;
        let mails = resets(&sink, &user.email);
        assert_eq!(reset(&app, &mails[0].token(), "the earlier link's password").await, Status::BadRequest);
        assert_eq!(reset(&app, &mails[1].token(), "the later link's password").await, Status::NoContent);
    }

    async fn the_audit_records_sent_and_limited_requests_of_accounts_and_nothing_of_unknown_addresses(backend) {
        let sink = SmtpSink::start().await;
        let app = TestApp::builder(backend)
            .with_config("mail.smtp_url", sink.url())
            // Registration's verification mail and one reset.
            .with_config("mail.per_address_per_hour", 2)
            .build()
            .await;
        let (_, admin) = with_admin(&app).await;
        let user = app.with_user().await;
        forgot(&app, &user.email).await;
        forgot(&app, &user.email).await;
        forgot(&app, "nobody@example.com").await;
        outbox_is_empty(&app).await;
        let audit = get_json(&app, "/admin/audit?event=password_reset_requested", &admin.access).await;
        let events = audit["events"].as_array().cloned().unwrap_or_default();
        let mut sent: Vec<bool> = events.iter().map(|e| e["detail"]["sent"].as_bool().unwrap()).collect();
        sent.sort();
        assert_eq!(sent, vec![false, true], "{events:?}");
        assert!(events.iter().all(|e| e["user_id"] == user.id.as_str()), "only the account's requests");
        assert!(events.iter().all(|e| e["ip"] == "127.0.0.2"), "from the requester's address");
        assert_eq!(resets(&sink, &user.email).len(), 1);
        assert!(sink.to("nobody@example.com").is_empty());
    }
}
