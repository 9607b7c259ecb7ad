//! Forgotten passwords: `POST /auth/password/forgot` mails a reset link to an active account
//! (and answers every request alike), `POST /auth/password/reset` sets the new password with the
//! link's token — and the second factor when the account has one, through the per-account
//! second-factor counter (`auth::mfa::counter`). A reset ends every session of the account,
//! voids its other reset tokens, clears its password-failure counters and mails a notice.
//!
//! Order of the reset's answers: unknown, used or expired token (400 `invalid_grant`) → bad new
//! password (422) → second factor locked (429) → missing (403 `mfa_required`) → wrong (401
//! `invalid_credentials`) → 204. Only success spends the token.

use serde_json::json;

use super::limit::Allowance;
use super::{dead_link, send_token_mail, token_kind};
use crate::auth::accounts::{check_password, normalize_email};
use crate::auth::audit::audit_event;
use crate::auth::guards::RequestOrigin;
use crate::auth::mfa::{claim, counter, Factor};
use crate::auth::secrets::hash_token;
use crate::auth::throttle::{self, ThrottleKeys};
use crate::auth::Auth;
use crate::db::DbPool;
use crate::error::{ApiError, ApiResult};
use crate::mail::MailKind;
use crate::models::{AuditStore, MailTokenStore, OutboxStore, SessionStore, UserStore};

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
    /// `POST /auth/password/forgot`: the same answer (and about the same work) whatever the
    /// email; a reset mail goes only to an active account, within the limits.
    pub async fn forgot_password(&self, pool: &DbPool, email: &str, client: &RequestOrigin) -> ApiResult<()> {
        self.mail.require_on()?;
        // A malformed email is answered like an unknown one and never reaches storage.
        let normalized = normalize_email(email).ok();
        let mut conn = pool.conn().await?;
        let user = match &normalized {
            Some(email) => crate::db::with_conn!(conn, |c| c.find_user_by_email(email).await)?,
            None => None,
        };
        let active = user.filter(|u| !u.disabled);
        let now = self.clock.now();
        let ip = client.ip.as_deref();
        let requested =
            active.as_ref().map(|u| audit_event("password_reset_requested", now, Some(u.id), client, json!({})));
        let mailer = &self.mail;
        crate::db::write_tx!(conn, |c| {
            match (&active, &requested) {
                (Some(user), Some(event)) => {
                    let sent = send_token_mail(c, mailer, MailKind::Reset, user.id, &user.email, ip, now).await?;
                    c.insert_audit(&audit_event(
                        event.event,
                        now,
                        Some(user.id),
                        client,
                        json!({"sent": sent == super::limit::Allowance::Send}),
                    ))
                    .await?;
                }
                // Counted like a real request, so a limited address cannot tell accounts apart,
                // and the same work done when a mail would go.
                _ => {
                    let config = &mailer.settings.config;
                    if super::limit::decide(c, config, normalized.as_deref(), ip, now).await? == Allowance::Send {
                        super::decoy_token_mail(c, mailer, MailKind::Reset, now).await?;
                    }
                }
            }
            Ok::<_, diesel::result::Error>(())
        })?;
        self.mail.wake();
        Ok(())
    }

    /// `POST /auth/password/reset`.
    pub async fn reset_password(
        &self,
        pool: &DbPool,
        token: &str,
        new_password: &str,
        code: Option<&str>,
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
        let second = if user.mfa_enabled {
            counter::check(conn, user.id, now).await?;
            let code = code.filter(|c| !c.trim().is_empty()).ok_or_else(|| {
                ApiError::mfa_required("This account has a second factor: send its code as `code`.", None)
            })?;
            let (totp, raw) = self.active_totp(conn, &user).await?;
            let attempt = counter::reserve(conn, user.id, now).await?;
            Some((totp, Factor::parse(&raw, code, now), attempt))
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
            if let Some((totp, factor, attempt)) = &second {
                let Some(factor) = factor else { return Err(Rejected::WrongCode) };
                if !claim(c, totp, factor, &recovery_used).await? {
                    return Err(Rejected::WrongCode);
                }
                attempt.clear(c).await?;
            }
            c.set_password_hash(user.id, &password_hash, now).await?;
            c.void_mail_tokens(user.id, kind).await?;
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
            // The wrong code rolled the transaction back: the token is still unspent.
            Err(Rejected::WrongCode) => {
                Err(self.second_factor_failed(conn, &user, &keys, client, "password_reset").await?)
            }
            Err(Rejected::Other(e)) => {
                if let Some((_, _, attempt)) = &second {
                    attempt.give_back(conn).await?;
                }
                Err(e)
            }
        }
    }
}
