//! The per-client-address limit of requests that cause token mails
//! (`mail.per_client_address_per_hour`, docs/mail.md): counted in the database, so it holds
//! across instances; unknown addresses count like known ones; a limited request still answers
//! 202 and sends nothing; other client addresses are not affected.

use std::time::Duration;

use rocket::http::Status;
use serde_json::json;

use crate::helpers::*;
use crate::on_both_backends;
use crate::smtp_sink::SmtpSink;

/// `POST /auth/password/forgot` as sent from `ip`.
async fn forgot_from(app: &TestApp, email: &str, ip: &str) -> Status {
    app.json_request(app.client.post("/auth/password/forgot"), json!({"email": email}))
        .remote(format!("{ip}:5000").parse().unwrap())
        .dispatch()
        .await
        .status()
}

/// Reset mails sent so far.
fn resets(sink: &SmtpSink) -> Vec<String> {
    let mails = sink.messages().into_iter().filter(|m| m.text().contains("/reset-password?token="));
    mails.flat_map(|m| m.to).collect()
}

on_both_backends! {
    async fn requests_from_one_client_address_beyond_its_hourly_limit_answer_202_and_mail_nothing(backend) {
        let sink = SmtpSink::start().await;
        let app = TestApp::builder(backend)
            .with_config("mail.smtp_url", sink.url())
            .with_config("mail.per_client_address_per_hour", 3)
            .build()
            .await;
        let url = sink.url();
        let other = app
            .second_instance(|b| b.with_config("mail.smtp_url", url).with_config("mail.per_client_address_per_hour", 3))
            .await;
        for n in 0..5 {
            app.with_user_email(&format!("user{n}@example.com")).await;
        }
        // Three requests from 127.0.0.2 on two instances, one for an unknown address: two mails.
        assert_eq!(forgot_from(&app, "nobody@example.com", "127.0.0.2").await, Status::Accepted);
        assert_eq!(forgot_from(&other, "user0@example.com", "127.0.0.2").await, Status::Accepted);
        assert_eq!(forgot_from(&app, "user1@example.com", "127.0.0.2").await, Status::Accepted);
        eventually("two reset mails", async || resets(&sink).len() >= 2).await;
        // The fourth and fifth, on either instance: 202, and nothing goes out.
        assert_eq!(forgot_from(&other, "user2@example.com", "127.0.0.2").await, Status::Accepted);
        assert_eq!(forgot_from(&app, "user3@example.com", "127.0.0.2").await, Status::Accepted);
        // Another client address is not affected.
        assert_eq!(forgot_from(&app, "user4@example.com", "127.0.0.3").await, Status::Accepted);
        eventually("the reset mail of 127.0.0.3", async || resets(&sink).contains(&"user4@example.com".into())).await;
        tokio::time::sleep(Duration::from_millis(800)).await;
        let mut sent = resets(&sink);
        sent.sort();
        assert_eq!(sent, ["user0@example.com", "user1@example.com", "user4@example.com"]);
        // The hour over, 127.0.0.2 is heard again.
        app.clock.advance(3601);
        assert_eq!(forgot_from(&app, "user2@example.com", "127.0.0.2").await, Status::Accepted);
        eventually("a reset mail to user2 after the hour", async || resets(&sink).contains(&"user2@example.com".into()))
            .await;
    }

    async fn the_per_client_address_limit_defaults_to_twenty_requests_an_hour(backend) {
        assert_eq!(portcullis::config::mail::MailConfig::default().per_client_address_per_hour, 20);
        let sink = SmtpSink::start().await;
        let app = crate::mail::mail_app(backend, &sink).await;
        for n in 0..22 {
            assert_eq!(forgot_from(&app, &format!("nobody{n}@example.com"), "127.0.0.2").await, Status::Accepted);
        }
        let user = app.with_user().await;
        assert_eq!(forgot_from(&app, &user.email, "127.0.0.2").await, Status::Accepted);
        assert_eq!(forgot_from(&app, &user.email, "127.0.0.3").await, Status::Accepted);
        eventually("the reset mail of 127.0.0.3", async || !resets(&sink).is_empty()).await;
        tokio::time::sleep(Duration::from_millis(800)).await;
        assert_eq!(resets(&sink).len(), 1, "only the request from 127.0.0.3 was mailed");
    }
}
