//! Mail (docs/mail.md): messages are rows of the outbox ([`crate::models::OutboxMessage`]),
//! written by the flows in `auth::recovery` in the transaction that causes them, and delivered
//! by a sender task in every instance ([`sender`]) through a pooled SMTP transport
//! ([`transport`]). What a message says is in [`templates`]; it is rendered at send time, so the
//! outbox keeps only the recipient, the kind and the link, sealed under the key-encryption key.

pub mod check;
pub mod connection;
pub mod issue;
pub mod sender;
pub mod templates;
mod tls_stream;
pub mod transport;

use std::sync::Arc;

use rocket::http::Status;
use tokio::sync::Notify;

use crate::at_rest::AtRest;
use crate::config::mail::MailSettings;
use crate::db::Id;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::models::OutboxMessage;

/// What a message is; its name is stored in `outbox.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailKind {
    /// A password-reset link.
    Reset,
    /// A link that proves the account's address.
    Verify,
    /// A link, sent to the new address, that confirms an address change.
    Change,
    /// Notice: the password was changed by a reset.
    PasswordChanged,
    /// Notice to the old address: a change to another address was requested.
    EmailChanging,
    /// `portcullis mail test`.
    Test,
    /// A password-reset request, written alike whatever the address ([`issue`]): the sender
    /// makes it a [`MailKind::Reset`] when the address has an active account, else deletes it.
    ResetRequest,
    /// Written by earlier versions for requests naming no account; deleted unsent.
    Decoy,
}

impl MailKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            MailKind::Reset => "reset",
            MailKind::Verify => "verify",
            MailKind::Change => "change",
            MailKind::PasswordChanged => "password_changed",
            MailKind::EmailChanging => "email_changing",
            MailKind::Test => "test",
            MailKind::ResetRequest => "reset_request",
            MailKind::Decoy => "decoy",
        }
    }

    pub fn parse(name: &str) -> Option<MailKind> {
        [
            Self::Reset,
            Self::Verify,
            Self::Change,
            Self::PasswordChanged,
            Self::EmailChanging,
            Self::Test,
            Self::ResetRequest,
            Self::Decoy,
        ]
        .into_iter()
        .find(|k| k.as_str() == name)
    }

    /// The hosted page a link of this kind leads to.
    pub const fn page(self) -> &'static str {
        match self {
            MailKind::Reset | MailKind::ResetRequest | MailKind::Decoy => "reset-password",
            MailKind::Verify => "verify-email",
            _ => "confirm-email",
        }
    }
}

/// The mail state every instance shares: settings, the transport, and the sender's wake-up.
pub struct Mailer {
    pub settings: MailSettings,
    /// The name people see in the mail (`auth.display_name`).
    pub display_name: String,
    at_rest: AtRest,
    transport: Option<connection::SmtpPool>,
    /// Host part of the `Message-ID`s.
    id_host: String,
    wake: Notify,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer").field("on", &self.is_on()).finish_non_exhaustive()
    }
}

/// 503 `unavailable` of the mail endpoints while `mail.smtp_url` is not set.
pub fn not_configured() -> ApiError {
    ApiError::new(Status::ServiceUnavailable, ErrorCode::Unavailable, "Mail is not configured (mail.smtp_url).")
}

impl Mailer {
    /// Builds the transport (nothing connects yet).
    pub fn new(settings: MailSettings, display_name: String, at_rest: AtRest, issuer: &str) -> Result<Mailer, String> {
        let transport = settings.smtp.as_ref().map(|s| transport::build(s, settings.config.timeout)).transpose()?;
        let id_host = crate::config::issuer::host(issuer).trim_matches(['[', ']']).to_owned();
        Ok(Mailer { settings, display_name, at_rest, transport, id_host, wake: Notify::new() })
    }

    /// Mail off: no `mail.smtp_url`.
    pub fn off(config: &crate::config::AuthConfig, at_rest: AtRest) -> Mailer {
        let settings = MailSettings::from_figment(&rocket::figment::Figment::new(), &config.issuer)
            .expect("the defaults of [mail] are valid for a valid issuer");
        Mailer::new(settings, config.display_name(), at_rest, &config.issuer).expect("no transport to build")
    }

    /// Ends the kept SMTP sessions politely (`QUIT`); at shutdown.
    pub async fn close(&self) {
        if let Some(transport) = &self.transport {
            transport.close().await;
        }
    }

    pub fn is_on(&self) -> bool {
        self.transport.is_some()
    }

    /// Ok when mail is configured; 503 otherwise.
    pub fn require_on(&self) -> ApiResult<()> {
        if self.is_on() {
            Ok(())
        } else {
            Err(not_configured())
        }
    }

    pub(crate) fn transport(&self) -> Option<&connection::SmtpPool> {
        self.transport.as_ref()
    }

    /// `<link_base>/<page>?token=...`.
    pub fn link(&self, kind: MailKind, token: &str) -> String {
        format!("{}/{}?token={token}", self.settings.link_base, kind.page())
    }

    /// The outbox row of a message to `recipient`, due at once; its link sealed.
    pub fn message(
        &self,
        kind: MailKind,
        recipient: &str,
        user: Option<Id>,
        link: Option<&str>,
        detail: Option<&str>,
        now: i64,
    ) -> OutboxMessage {
        let id = Id::new();
        OutboxMessage {
            id,
            message_id: format!("<{id}@{}>", self.id_host),
            recipient: recipient.to_owned(),
            kind: kind.as_str().to_owned(),
            link: link.map(|l| self.at_rest.encrypt_at_rest(l.as_bytes())),
            detail: detail.map(str::to_owned),
            user_id: user,
            attempts: 0,
            next_attempt_at: now,
            lease_until: 0,
            created_at: now,
            token_hash: None,
            client_ip: None,
        }
    }

    /// The outbox row of a password-reset request for `recipient` (see [`MailKind::ResetRequest`]):
    /// `link` carries the token whose digest is `token_hash`; a `limited` request is only audited.
    pub fn reset_request(
        &self,
        recipient: &str,
        link: &str,
        token_hash: &str,
        client_ip: Option<&str>,
        limited: bool,
        now: i64,
    ) -> OutboxMessage {
        let detail = limited.then_some(issue::LIMITED);
        let mut row = self.message(MailKind::ResetRequest, recipient, None, Some(link), detail, now);
        row.token_hash = Some(token_hash.to_owned());
        row.client_ip = client_ip.map(str::to_owned);
        row
    }

    /// The link of a stored message, opened.
    pub(crate) fn open_link(&self, sealed: &str) -> Result<String, String> {
        let bytes = self.at_rest.decrypt_at_rest(sealed)?;
        String::from_utf8(bytes).map_err(|_| "a stored link is corrupt".to_string())
    }

    /// Tells this instance's sender that a message is waiting (after the commit).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    pub(crate) async fn woken(&self) {
        self.wake.notified().await
    }
}

/// Shared handle.
pub type SharedMailer = Arc<Mailer>;
