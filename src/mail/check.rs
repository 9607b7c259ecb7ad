//! `portcullis mail test --to ADDRESS`: one message straight through the configured SMTP server
//! (not the outbox), and what the server answered — the first thing to run after configuring
//! mail (docs/mail.md).

use std::time::Duration;

use rocket::figment::Figment;

use super::templates::{render, Context};
use super::transport::{self, Delivery};
use super::MailKind;
use crate::config::mail::MailSettings;
use crate::config::AuthConfig;

/// Sends the test message to `to`: the server's reply, or why it failed.
pub async fn send_test(figment: &Figment, to: &str) -> Result<String, String> {
    let auth = AuthConfig::from_figment(figment).map_err(|e| e.to_string())?;
    let settings = MailSettings::from_figment(figment, &auth.issuer).map_err(|e| e.to_string())?;
    let server = settings.smtp.as_ref().ok_or("mail is not configured: set mail.smtp_url (docs/mail.md)")?;
    let smtp = transport::build(server, settings.config.timeout)?;
    let name = auth.display_name();
    let cx = Context { display_name: &name, link: None, detail: None, ttl_secs: 0 };
    let host = crate::config::issuer::host(&auth.issuer);
    let message_id = format!("<{}@{}>", crate::db::Id::new(), host.trim_matches(['[', ']']));
    let message = transport::message(&settings.from, to, &message_id, &render(MailKind::Test, &cx))?;
    let target = format!("{}:{}", server.host, server.port);
    match transport::deliver(&smtp, message, Duration::from_secs(settings.config.timeout * 6)).await {
        Delivery::Accepted(reply) => Ok(format!("{target} accepted the message to {to}: {reply}")),
        Delivery::Transient(e) => Err(format!("{target}: temporary failure (would be retried): {e}")),
        Delivery::Permanent(e) => Err(format!("{target}: refused: {e}")),
    }
}
