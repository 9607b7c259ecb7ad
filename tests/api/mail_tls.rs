//! Mail over STARTTLS (RFC 3207), and over implicit TLS (`smtps://`, RFC 8314 §3.3), to a relay whose certificate is self-signed and trusted
//! through `mail.tls_ca_file` (docs/mail.md): the message goes over the upgraded session.

use serde_json::json;

use crate::helpers::*;
use crate::mail::link_mail;
use crate::on_both_backends;
use crate::smtp_sink::{Received, SmtpSink};

/// The service with mail through `sink`, trusting its self-signed certificate through
/// `mail.tls_ca_file` (in the returned directory, which must live as long as the app).
async fn app_trusting(backend: Backend, sink: &SmtpSink) -> (TestApp, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let ca_file = dir.path().join("relay.pem");
    std::fs::write(&ca_file, sink.certificate_pem.as_deref().unwrap()).unwrap();
    let app = TestApp::builder(backend)
        .with_config("mail.smtp_url", sink.url())
        .with_config("mail.tls_ca_file", ca_file.to_str().unwrap())
        .build()
        .await;
    (app, dir)
}

/// A user's password-reset request (answered 202) and the reset mail it sent through `sink`.
async fn reset_mail_through(backend: Backend, sink: &SmtpSink) -> Received {
    let (app, _dir) = app_trusting(backend, sink).await;
    let user = app.with_user().await;
    let response = app.post("/auth/password/forgot", json!({"email": user.email})).await;
    assert_eq!(response.status(), rocket::http::Status::Accepted);
    link_mail(sink, &user.email, "reset-password", 1).await
}

on_both_backends! {
    async fn a_reset_mail_goes_through_starttls_to_a_relay_trusted_by_its_ca_file(backend) {
        let sink = SmtpSink::start_tls().await;
        let mail = reset_mail_through(backend, &sink).await;
        assert!(mail.tls, "the message came over the STARTTLS session");
        assert!(sink.messages().iter().all(|m| m.tls), "nothing went in clear");
    }

    async fn a_reset_mail_goes_over_implicit_tls_to_an_smtps_relay(backend) {
        let sink = SmtpSink::start_implicit_tls().await;
        assert!(sink.url().starts_with("smtps://"));
        let mail = reset_mail_through(backend, &sink).await;
        assert!(mail.tls, "the message came over TLS");
        assert!(mail.text().contains("/reset-password?token="));
    }
}
