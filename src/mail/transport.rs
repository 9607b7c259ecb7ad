//! The SMTP transport (lettre's client over the connections of [`super::connection`], rustls)
//! and one delivery through it, with its outcome classified: RFC 5321 §4.2.1 — a 5yz reply is
//! permanent, a 4yz reply or a connection that failed or timed out is worth another try.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, TlsParameters};
use lettre::Message;

use super::connection::{Endpoint, Failed, Security, SmtpPool};
use super::templates::Rendered;
use crate::config::mail::SmtpServer;

/// How a delivery ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// The server accepted it; its reply.
    Accepted(String),
    /// Try again later (4yz, connection failure, timeout).
    Transient(String),
    /// Never again (5yz, or a message that cannot be built).
    Permanent(String),
}

/// The connection pool for `server`; connecting and each step of the session set-up may take
/// `timeout_secs`. Nothing connects yet.
pub fn build(server: &SmtpServer, timeout_secs: u64) -> Result<SmtpPool, String> {
    let mut tls = TlsParameters::builder(server.host.clone());
    if let Some(pem) = &server.extra_root_pem {
        let cert = Certificate::from_pem(pem).map_err(|e| format!("mail.tls_ca_file: {e}"))?;
        tls = tls.add_root_certificate(cert);
    }
    let tls = tls.build_rustls().map_err(|e| format!("mail.smtp_url: {e}"))?;
    let security = if server.implicit_tls {
        Security::Implicit(tls)
    } else if server.tls_off {
        Security::None
    } else if server.starttls_required {
        Security::Required(tls)
    } else {
        Security::Opportunistic(tls)
    };
    Ok(SmtpPool::new(Endpoint {
        host: server.host.clone(),
        port: server.port,
        security,
        credentials: server
            .credentials
            .as_ref()
            .map(|(user, password)| Credentials::new(user.clone(), password.expose().to_owned())),
        timeout: Duration::from_secs(timeout_secs),
    }))
}

/// The MIME message: plain text and HTML alternatives, the recipient alone in `To`.
pub fn message(from: &str, to: &str, message_id: &str, mail: &Rendered) -> Result<Message, String> {
    let from: Mailbox = from.parse().map_err(|e| format!("mail.from: {e}"))?;
    let to: Mailbox = to.parse().map_err(|e| format!("the recipient is not a mail address: {e}"))?;
    Message::builder()
        .from(from)
        .to(to)
        .subject(mail.subject.clone())
        .message_id(Some(message_id.to_owned()))
        .multipart(
            MultiPart::alternative()
                .singlepart(SinglePart::builder().header(ContentType::TEXT_PLAIN).body(mail.text.clone()))
                .singlepart(SinglePart::builder().header(ContentType::TEXT_HTML).body(mail.html.clone())),
        )
        .map_err(|e| format!("the message cannot be built: {e}"))
}

/// Sends `message`, bounded by `bound` in all.
pub async fn deliver(pool: &SmtpPool, message: Message, bound: Duration) -> Delivery {
    let sent = tokio::time::timeout(bound, pool.send(message.envelope(), &message.formatted())).await;
    match sent {
        Err(_) => Delivery::Transient("the SMTP server did not answer in time".into()),
        Ok(Ok(reply)) => {
            Delivery::Accepted(format!("{} {}", reply.code(), reply.message().collect::<Vec<_>>().join(" ")))
        }
        Ok(Err(Failed::Smtp(e))) if e.is_permanent() => Delivery::Permanent(e.to_string()),
        Ok(Err(Failed::Smtp(e))) => Delivery::Transient(e.to_string()),
        Ok(Err(Failed::Connect(reason))) => Delivery::Transient(reason),
    }
}
