//! Password-reset requests are issued by the sender, not the request (`mail::issue`, docs/mail.md
//! "Timing"): the request writes one row whatever the address; what stays behind is right in
//! every order — a password change racing a request never leaves a live reset link, of two
//! requests the later one's link is the one that works, and the audit says what happened.

use rocket::http::Status;
use serde_json::{json, Value};

use crate::admin_support::{get_json, with_admin};
use crate::helpers::*;
use crate::mail::{link_mail, mail_app};
use crate::on_both_backends;
use crate::smtp_sink::{Received, SmtpSink};

async fn forgot(app: &TestApp, email: &str) {
    let response = app.post("/auth/password/forgot", json!({"email": email})).await;
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
    mails.sort_by_key(|m| message_id(m));
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
    async fn a_password_change_racing_a_reset_request_never_leaves_a_live_reset_link(backend) {
        let sink = SmtpSink::start().await;
        let app = mail_app(backend, &sink).await;
        let user = app.with_user().await;
        let mut password = PASSWORD.to_owned();
        for round in 0..8 {
            let tokens = app.login_response(&user.email, &password).await.into_json::<Value>().await.unwrap();
            let access = tokens["access_token"].as_str().unwrap().to_owned();
            let next = format!("the passphrase of round {round}");
            let change = json!({"current_password": password, "new_password": next});
            let (_, changed) =
                tokio::join!(forgot(&app, &user.email), app.put_authed("/users/me/password", &access, change));
            assert_eq!(changed.status(), Status::NoContent);
            password = next;
            outbox_is_empty(&app).await;
            for mail in resets(&sink, &user.email) {
                assert_eq!(reset(&app, &mail.token(), "a reset that must not work").await, Status::BadRequest, "round {round}");
            }
        }
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
            .with_config("mail.per_address_per_hour", 1)
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
        assert!(events.iter().all(|e| e["ip"].is_string()), "from the requester's address");
        assert_eq!(resets(&sink, &user.email).len(), 1);
        assert!(sink.to("nobody@example.com").is_empty());
    }
}
