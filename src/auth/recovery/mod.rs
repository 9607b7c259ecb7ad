//! Account recovery and address proof by mail: password reset ([`reset`]), email verification
//! and email change ([`email`]). Each flow writes its messages to the outbox in the transaction
//! that makes its change (`crate::mail`); the tokens in the links are 256 random bits stored as
//! SHA-256 digests (`models::mail_token`), spent by one conditional update, and a new token of a
//! kind voids the user's previous one. Token mails pass the limits of [`limit`].

pub mod email;
pub mod limit;
pub mod reset;

use diesel::result::QueryResult;
use rocket::http::Status;

use crate::auth::guards::RequestOrigin;
use crate::auth::secrets::OpaqueToken;
use crate::auth::throttle::{self, Reservation};
use crate::auth::Auth;
use crate::db::{DbConn, Id};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::mail::{MailKind, Mailer};
use crate::models::{MailTokenStore, NewMailToken, OutboxStore, ThrottleStore, User};
use limit::Allowance;

/// The stored kind of the tokens of a mail kind.
pub fn token_kind(kind: MailKind) -> &'static str {
    kind.as_str()
}

/// 400 `invalid_grant`: the token of a mail link is unknown, used or expired.
pub fn dead_link() -> ApiError {
    ApiError::new(
        Status::BadRequest,
        ErrorCode::InvalidGrant,
        "The link is unknown, used or expired; ask for a new one.",
    )
}

/// Inside a write transaction: when the limits allow, a new token of `kind` for `user` (voiding
/// the previous one) and its mail to `recipient`. `Limited`: nothing is written but the counts.
pub(crate) async fn send_token_mail<C: ThrottleStore + MailTokenStore + OutboxStore>(
    c: &mut C,
    mailer: &Mailer,
    kind: MailKind,
    user: Id,
    recipient: &str,
    client_ip: Option<&str>,
    now: i64,
) -> QueryResult<Allowance> {
    let config = &mailer.settings.config;
    if limit::decide(c, config, Some(recipient), client_ip, now).await? == Allowance::Limited {
        return Ok(Allowance::Limited);
    }
    let ttl = if kind == MailKind::Reset { config.reset_ttl } else { config.verify_ttl };
    let token = OpaqueToken::generate();
    let row = NewMailToken {
        token_hash: token.hash(),
        user_id: user,
        kind: token_kind(kind),
        email: recipient,
        created_at: now,
        expires_at: now + ttl as i64,
    };
    c.replace_mail_token(&row).await?;
    let link = mailer.link(kind, &token.into_plaintext());
    c.insert_message(&mailer.message(kind, recipient, Some(user), Some(&link), None, now)).await?;
    Ok(Allowance::Send)
}

/// Inside a password change's or reset's write transaction, which holds `user`'s row: the reset
/// links mailed before die, and the reset requests not yet issued are dropped (`mail::issue`
/// says why the row lock makes this airtight).
pub(crate) async fn void_reset_links<C: MailTokenStore + OutboxStore>(c: &mut C, user: &User) -> QueryResult<()> {
    c.void_mail_tokens(user.id, token_kind(MailKind::Reset)).await?;
    c.drop_reset_requests(&user.email).await?;
    Ok(())
}

impl Auth {
    /// The login's answer for an account whose address is not verified while
    /// `auth.require_verified_email` is on (the password was right): a new verification mail
    /// within the limits, and 403 `email_unverified`.
    pub(crate) async fn refuse_unverified(
        &self,
        conn: &mut DbConn,
        user: &User,
        reservation: &Reservation,
        client: &RequestOrigin,
        now: i64,
    ) -> ApiResult<ApiError> {
        let mailer = &self.mail;
        crate::db::write_tx!(conn, |c| {
            throttle::release(c, reservation).await?;
            if mailer.is_on() {
                send_token_mail(c, mailer, MailKind::Verify, user.id, &user.email, client.ip.as_deref(), now).await?;
            }
            Ok::<_, diesel::result::Error>(())
        })?;
        self.mail.wake();
        Ok(ApiError::new(
            Status::Forbidden,
            ErrorCode::EmailUnverified,
            "The email address of this account is not verified; a verification mail was sent.",
        ))
    }
}
