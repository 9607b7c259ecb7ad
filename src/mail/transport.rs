//! The SMTP transport (lettre, tokio, rustls, pooled connections) and one delivery through it,
//! with its outcome classified: RFC 5321 §4.2.1 — a 5yz reply is permanent, a 4yz reply or a
//! connection that failed or timed out is worth another try.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

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

/// The pooled transport of `server`; each SMTP command may take `timeout_secs`.
pub fn build(server: &SmtpServer, timeout_secs: u64) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
    let mut tls = TlsParameters::builder(server.host.clone());
    if let Some(pem) = &server.extra_root_pem {
        let cert = Certificate::from_pem(pem).map_err(|e| format!("mail.tls_ca_file: {e}"))?;
        tls = tls.add_root_certificate(cert);
    }
    let tls = tls.build_rustls().map_err(|e| format!("mail.smtp_url: {e}"))?;
    let tls = if server.implicit_tls {
        Tls::Wrapper(tls)
    } else if server.tls_off {
        Tls::None
    } else if server.starttls_required {
        Tls::Required(tls)
    } else {
        Tls::Opportunistic(tls)
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(server.host.clone())
        .port(server.port)
        .tls(tls)
        .timeout(Some(Duration::from_secs(timeout_secs)))
        .pool_config(PoolConfig::new().max_size(8).idle_timeout(Duration::from_secs(60)));
    if let Some((user, password)) = &server.credentials {
        builder = builder.credentials(Credentials::new(user.clone(), password.expose().to_owned()));
    }
    Ok(builder.build())
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
pub async fn deliver(transport: &AsyncSmtpTransport<Tokio1Executor>, message: Message, bound: Duration) -> Delivery {
    match tokio::time::timeout(bound, transport.send(message)).await {
        Err(_) => Delivery::Transient("the SMTP server did not answer in time".into()),
        Ok(Ok(reply)) => {
            Delivery::Accepted(format!("{} {}", reply.code(), reply.message().collect::<Vec<_>>().join(" ")))
        }
        Ok(Err(e)) if e.is_permanent() => Delivery::Permanent(e.to_string()),
        Ok(Err(e)) => Delivery::Transient(e.to_string()),
    }
}
