//! Mail delivery when the SMTP server misbehaves, and with two instances on one database: the
//! outbox loses nothing, retries what may succeed, gives up on what cannot (audited
//! `mail_failed`) without holding up the rest, and sends each message once.

use std::time::Duration;

use serde_json::Value;

use crate::admin_support::{get_json, with_admin};
use crate::helpers::*;
use crate::mail::{mail_app, nth_mail};
use crate::oidc_support::{auth, conn};
use crate::on_both_backends;
use crate::smtp_sink::SmtpSink;
use portcullis::mail::MailKind;
use portcullis::models::OutboxStore;

/// Moves the shared clock past the next retry, until `done` holds.
async fn retrying_until(app: &TestApp, what: &str, mut done: impl FnMut() -> bool) {
    eventually(what, async || {
        if done() {
            return true;
        }
        app.clock.advance(30);
        tokio::time::sleep(Duration::from_millis(100)).await;
        done()
    })
    .await;
}

async fn mail_failed_events(app: &TestApp, admin: &str) -> Vec<Value> {
    let body = get_json(app, "/admin/audit?event=mail_failed", admin).await;
    body["events"].as_array().cloned().unwrap_or_default()
}

on_both_backends! {
    async fn a_message_queued_while_the_server_is_down_goes_out_once_it_is_back(backend) {
        let sink = SmtpSink::start().await;
        sink.set_down(true);
        let app = mail_app(backend, &sink).await;
        let user = app.with_user().await;
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert!(sink.messages().is_empty());
        sink.set_down(false);
        retrying_until(&app, "delivered after the outage", || !sink.to(&user.email).is_empty()).await;
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(sink.to(&user.email).len(), 1, "once");
    }

    async fn a_451_is_retried_and_a_550_is_given_up_and_audited_without_holding_up_the_others(backend) {
        let sink = SmtpSink::start().await;
        let app = mail_app(backend, &sink).await;
        let (_, admin) = with_admin(&app).await;
        sink.answer_next(&[451, 550]);
        let mut users = vec![];
        for name in ["first", "second", "third"] {
            users.push(app.with_user_email(&format!("{name}@example.com")).await.email);
        }
        // Whichever message met the 451 is tried again; the one that met the 550 is not.
        retrying_until(&app, "two delivered", || sink.messages().len() == 2).await;
        let delivered: Vec<String> = sink.messages().iter().flat_map(|m| m.to.clone()).collect();
        assert_eq!(users.iter().filter(|u| delivered.contains(u)).count(), 2, "{delivered:?}");
        let admin = admin.access.clone();
        eventually("mail_failed audited", async || mail_failed_events(&app, &admin).await.len() == 1).await;
        app.clock.advance(3600);
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert_eq!(sink.messages().len(), 2, "the refused message is not sent again");
    }

    async fn a_kept_session_that_stopped_answering_costs_the_next_message_no_try(backend) {
        let sink = SmtpSink::start().await;
        // One try per message: a delivery that waited on the silent session would lose its message.
        let app = TestApp::builder(backend)
            .with_config("mail.smtp_url", sink.url())
            .with_config("mail.timeout", 1)
            .with_config("mail.max_attempts", 1)
            .build()
            .await;
        let first = app.with_user_email("first@example.com").await;
        nth_mail(&sink, &first.email, 1).await;
        let kept = sink.sessions();
        sink.freeze_open_sessions();
        let second = app.with_user_email("second@example.com").await;
        nth_mail(&sink, &second.email, 1).await;
        assert!(sink.sessions() > kept, "delivered over a new session");
    }

    async fn an_smtps_relay_that_never_answers_the_handshake_fails_the_try_at_the_set_up_bound(backend) {
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("smtps://127.0.0.1:{}", silent.local_addr().unwrap().port());
        let held = tokio::spawn(async move {
            let mut held = vec![];
            while let Ok((socket, _)) = silent.accept().await {
                held.push(socket);
            }
        });
        let app = TestApp::builder(backend)
            .with_config("mail.smtp_url", url)
            .with_config("mail.timeout", 1)
            .with_config("mail.max_attempts", 1)
            .build()
            .await;
        let (_, admin) = with_admin(&app).await;
        app.with_user().await;
        let admin = admin.access.clone();
        eventually("given up", async || !mail_failed_events(&app, &admin).await.is_empty()).await;
        for event in mail_failed_events(&app, &admin).await {
            let reason = event["detail"]["reason"].as_str().unwrap_or_default().to_owned();
            assert_eq!(reason, "the SMTP session set-up timed out", "bounded by mail.timeout, not the delivery's bound");
        }
        held.abort();
    }

    async fn a_message_is_given_up_after_max_attempts(backend) {
        let sink = SmtpSink::start().await;
        sink.set_down(true);
        let app = TestApp::builder(backend)
            .with_config("mail.smtp_url", sink.url())
            .with_config("mail.max_attempts", 2)
            .build()
            .await;
        let (_, admin) = with_admin(&app).await;
        let user = app.with_user().await;
        let admin = admin.access.clone();
        eventually("given up after two tries", async || {
            app.clock.advance(30);
            tokio::time::sleep(Duration::from_millis(100)).await;
            mail_failed_events(&app, &admin).await.len() == 1
        })
        .await;
        let event = &mail_failed_events(&app, &admin).await[0];
        assert_eq!(event["user_id"].as_str(), Some(user.id.as_str()));
        sink.set_down(false);
        app.clock.advance(3600);
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert!(sink.messages().is_empty(), "a message given up is gone");
    }

    async fn two_instances_on_one_database_send_each_message_once(backend) {
        let sink = SmtpSink::start().await;
        let app = mail_app(backend, &sink).await;
        let url = sink.url();
        let other = app.second_instance(|b| b.with_config("mail.smtp_url", url)).await;
        for i in 0..30 {
            let instance = if i % 2 == 0 { &app } else { &other };
            instance.with_user_email(&format!("user{i}@example.com")).await;
        }
        eventually("30 messages", async || sink.messages().len() >= 30).await;
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let mut recipients: Vec<String> = sink.messages().iter().flat_map(|m| m.to.clone()).collect();
        assert_eq!(recipients.len(), 30);
        recipients.sort();
        recipients.dedup();
        assert_eq!(recipients.len(), 30, "each once");
    }

    async fn a_message_whose_sender_died_after_claiming_it_goes_out_once_when_the_lease_ends(backend) {
        // The instance that dies: it commits a message and claims it, and never sends it.
        let dying = TestApp::new(backend).await;
        let now = dying.clock.now();
        let message = auth(&dying).mail.message(MailKind::PasswordChanged, "alice@example.com", None, None, None, now);
        let mut conn = conn(&dying).await;
        portcullis::write_tx!(&mut conn, |c| c.insert_message(&message).await).expect("queued");
        let claimed = portcullis::write_tx!(&mut conn, |c| c.claim_messages(now, now + 300, 64).await).expect("claimed");
        assert_eq!(claimed.len(), 1);
        drop(conn);
        // Two live instances leave it alone while the lease holds...
        let sink = SmtpSink::start().await;
        let url = sink.url();
        let b = dying.second_instance(|b| b.with_config("mail.smtp_url", url.clone())).await;
        let _c = dying.second_instance(|b| b.with_config("mail.smtp_url", url)).await;
        tokio::time::sleep(Duration::from_millis(1200)).await;
        assert!(sink.messages().is_empty(), "not sent while another sender may still hold it");
        // ...and when it ends, one of them sends it, once, with the Message-ID it was queued with.
        b.clock.advance(301);
        eventually("the message of the dead sender", async || !sink.messages().is_empty()).await;
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let sent = sink.to("alice@example.com");
        assert_eq!(sent.len(), 1, "once");
        assert!(sent[0].data.contains(&message.message_id), "the same Message-ID");
    }
}

/// Whether the service refuses to start with `figment` (the error inspected, as Rocket asks).
async fn refuses_to_start(figment: rocket::figment::Figment) -> bool {
    match portcullis::rocket(figment).ignite().await {
        Ok(_) => false,
        Err(error) => matches!(error.kind(), rocket::error::ErrorKind::FailedFairings(_)),
    }
}

#[tokio::test]
async fn an_invalid_smtp_url_or_verification_without_mail_stops_start_up_naming_the_key() {
    let db = TestDb::migrated(Backend::Sqlite).await;
    for bad in ["http://mail.example.com", "smtp://", "not a url", "smtp://relay.example.com:25/path"] {
        let figment = test_figment(db.url()).merge(("mail.smtp_url", bad));
        let error =
            portcullis::config::mail::MailSettings::from_figment(&figment, "http://127.0.0.1:8000").unwrap_err();
        assert_eq!(error.key, "mail.smtp_url", "{bad}");
        assert!(refuses_to_start(figment).await, "{bad}");
    }
    assert!(refuses_to_start(test_figment(db.url()).merge(("auth.require_verified_email", true))).await, "needs mail");
    let good = test_figment(db.url()).merge(("mail.smtp_url", "smtp://127.0.0.1:2525"));
    assert!(!refuses_to_start(good).await);
}

fn mail_test_command(url: &str, to: &str) -> std::process::Output {
    let cwd = tempfile::tempdir().expect("temp dir");
    std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["mail", "test", "--to", to])
        .current_dir(cwd.path())
        .env("ROCKET_CONFIG", cwd.path().join("Rocket.toml"))
        .env("ROCKET_MAIL", format!("{{smtp_url=\"{url}\"}}"))
        .env("ROCKET_LOG_LEVEL", "off")
        .env_remove("ROCKET_PROFILE")
        .output()
        .expect("the portcullis binary runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_test_sends_one_message_and_reports_what_the_server_said() {
    let sink = SmtpSink::start().await;
    let url = sink.url();
    let output = tokio::task::spawn_blocking(move || mail_test_command(&url, "ops@example.com")).await.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout} {}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("250"), "the server's reply: {stdout}");
    assert_eq!(sink.to("ops@example.com").len(), 1);
    sink.answer_next(&[550]);
    let url = sink.url();
    let output = tokio::task::spawn_blocking(move || mail_test_command(&url, "ops@example.com")).await.unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("refused"), "{}", String::from_utf8_lossy(&output.stderr));
}
