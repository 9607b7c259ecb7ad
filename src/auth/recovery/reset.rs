//! Forgotten passwords: `POST /auth/password/forgot` mails a reset link to an active account
//! (and answers every request alike), `POST /auth/password/reset` sets the new password with the
//! link's token — and the second factor when the account has one, through the per-account
//! second-factor counter (`auth::mfa::counter`). A reset ends every session of the account,
//! voids its other reset tokens, clears its password-failure counters and mails a notice.
//!
//! Order of the reset's answers (contract v3, "Password reset order"): unknown, used or expired
//! token (400 `invalid_grant`) → bad new password (422) → second factor locked (429) → missing
//! (403 `mfa_required` with `mfa_methods`) → wrong (401 `invalid_credentials`) → 204. Only
//! success spends the token. The second factor is a TOTP or recovery code, or a passkey
//! assertion for a ceremony of `POST /auth/passkeys/login` with the account's email.

use serde_json::json;

use super::limit::Allowance;
use super::{dead_link, token_kind};
use crate::auth::accounts::{check_password, normalize_email};
use crate::auth::audit::audit_event;
use crate::auth::guards::RequestOrigin;
use crate::auth::mfa::methods::{has_second_factor, mfa_required, Codes};
use crate::auth::mfa::passkey::proof::Assertion;
use crate::auth::mfa::{claim, counter, Factor, Presented};
use crate::auth::secrets::{hash_token, OpaqueToken};
use crate::auth::throttle::{self, ThrottleKeys};
use crate::auth::Auth;
use crate::db::DbPool;
use crate::error::{ApiError, ApiResult};
use crate::mail::MailKind;
use crate::models::{AuditStore, MailTokenStore, OutboxStore, SessionStore, UserStore};

/// The second factor of a reset, checked as far as it can be before the transaction.
enum Pending {
    /// What the code may be (`None`: nothing it could be).
    Code(Codes, Option<Factor>),
    Passkey(Assertion),
}

/// Why the transaction that judges a reset rolled back (the token stays unspent).
enum Rejected {
    WrongCode,
    Other(ApiError),
}

impl From<diesel::result::Error> for Rejected {
    fn from(e: diesel::result::Error) -> Self {
        Rejected::Other(e.into())
    }
}

impl Auth {
    /// `POST /auth/password/forgot`: the same answer, and the same work, whatever the email.
    /// The request writes one `reset_request` row (a token, its digest, the requester's address)
    /// within the limits — or marked limited — and the sender makes it a mail only for an active
    /// account (`mail::issue`, which says why the lookup is not done here).
    pub async fn forgot_password(&self, pool: &DbPool, email: &str, client: &RequestOrigin) -> ApiResult<()> {
        let mailer = &self.mail;
        mailer.require_on()?;
        // A malformed email is answered like an unknown one and never reaches storage.
        let normalized = normalize_email(email).ok();
        let now = self.clock.now();
        let ip = client.ip.as_deref();
        let token = OpaqueToken::generate();
        let token_hash = token.hash().to_owned();
        let link = mailer.link(MailKind::Reset, &token.into_plaintext());
        let mut conn = pool.conn().await?;
        crate::db::write_tx!(conn, |c| {
            let allowance = super::limit::decide(c, &mailer.settings.config, normalized.as_deref(), ip, now).await?;
            if let Some(recipient) = &normalized {
                let limited = allowance == Allowance::Limited;
                c.insert_message(&mailer.reset_request(recipient, &link, &token_hash, ip, limited, now)).await?;
            }
            Ok::<_, diesel::result::Error>(())
        })?;
        mailer.wake();
        Ok(())
    }

    /// `POST /auth/password/reset`: `factor` is the second factor, needed when the account
    /// has one (a TOTP or recovery code, or a passkey assertion).
    pub async fn reset_password(
        &self,
        pool: &DbPool,
        token: &str,
        new_password: &str,
        factor: Option<Presented<'_>>,
        client: &RequestOrigin,
    ) -> ApiResult<()> {
        self.mail.require_on()?;
        let hash = hash_token(token);
        let kind = token_kind(MailKind::Reset);
        let mut owned = pool.conn().await?;
        let conn = &mut owned;
        let now = self.clock.now();
        let row = crate::db::with_conn!(conn, |c| c.live_mail_token(&hash, kind, now).await)?.ok_or_else(dead_link)?;
        check_password("new_password", new_password)?;
        let user = crate::db::with_conn!(conn, |c| c.find_user(row.user_id).await)?
            .filter(|u| !u.disabled && u.email == row.email)
            .ok_or_else(dead_link)?;
        let keys = ThrottleKeys::new(&user.email, client.ip.as_deref());
        // The second factor, when the account has one: judged in the transaction that resets.
        let second = if has_second_factor(&user) {
            counter::check(conn, user.id, now).await?;
            let Some(factor) = factor.filter(|f| !matches!(f, Presented::Code(c) if c.trim().is_empty())) else {
                let methods = self.mfa_methods(conn, &user).await?;
                return Err(mfa_required(
                    "This account has a second factor: send its code as `code`, or a passkey assertion.",
                    None,
                    &methods,
                ));
            };
            let attempt = counter::reserve(conn, user.id, now).await?;
            let pending = match factor {
                Presented::Code(code) => self.codes_of(conn, &user).await.map(|codes| {
                    let factor = codes.parse(code, now);
                    Pending::Code(codes, factor)
                }),
                Presented::Passkey { ceremony_id, credential } => {
                    self.check_assertion_for(conn, &user, ceremony_id, credential).await.map(Pending::Passkey)
                }
            };
            match pending {
                Ok(pending) => Some((pending, attempt)),
                // Not judged (a dead ceremony, storage): the attempt is not a guess.
                Err(e) => {
                    attempt.give_back(conn).await?;
                    return Err(e);
                }
            }
        } else {
            None
        };
        let password_hash = self.hasher.hash(new_password).await.map_err(ApiError::internal)?;
        let ending = self.ending_at("password_reset", now);
        let audit = audit_event("password_reset", now, Some(user.id), client, json!({}));
        let recovery_used =
            audit_event("recovery_code_used", now, Some(user.id), client, json!({"for": "password_reset"}));
        let notice = self.mail.message(MailKind::PasswordChanged, &user.email, Some(user.id), None, None, now);
        let judged = crate::db::write_tx!(conn, |c| {
            if !c.spend_mail_token(&hash, kind, now).await? {
                return Err(Rejected::Other(dead_link()));
            }
            if let Some((pending, attempt)) = &second {
                let accepted = match pending {
                    Pending::Code(codes, Some(factor)) => claim(c, codes, factor, &recovery_used).await?,
                    Pending::Passkey(Assertion::Verified(used)) => used.record(c, now).await?,
                    Pending::Code(_, None) | Pending::Passkey(Assertion::Refused) => false,
                };
                if !accepted {
                    return Err(Rejected::WrongCode);
                }
                attempt.clear(c).await?;
            }
            c.set_password_hash(user.id, &password_hash, now).await?;
            super::void_reset_links(c, &user).await?;
            let ended = c.end_user_sessions(user.id, None, ending).await?;
            c.insert_message(&notice).await?;
            c.insert_audit(&audit).await?;
            Ok::<_, Rejected>(ended)
        });
        match judged {
            Ok(ended) => {
                self.revoke_locally(&ended, &ending);
                throttle::clear_account_everywhere(conn, &user.email).await?;
                self.mail.wake();
                Ok(())
            }
            // The wrong factor rolled the transaction back: the token is still unspent.
            Err(Rejected::WrongCode) => {
                Err(self.second_factor_failed(conn, &user, &keys, client, "password_reset").await?)
            }
            Err(Rejected::Other(e)) => {
                if let Some((_, attempt)) = &second {
                    attempt.give_back(conn).await?;
                }
                Err(e)
            }
        }
    }
}
