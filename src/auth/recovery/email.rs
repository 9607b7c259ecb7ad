//! Proving and changing the account's address: a verification mail (at registration, on
//! request, and when `auth.require_verified_email` refuses a login) whose token marks the address
//! verified; and an address change, confirmed by a token mailed to the new address, with a notice
//! to the old one. The address changes only at confirmation, which also voids pending reset
//! tokens (they were mailed to the old address).

use serde_json::json;

use super::{dead_link, send_token_mail, token_kind};
use crate::auth::accounts::{is_unique_violation, normalize_email, Account};
use crate::auth::audit::audit_event;
use crate::auth::guards::{self, RequestOrigin};
use crate::auth::secrets::hash_token;
use crate::auth::Auth;
use crate::db::DbPool;
use crate::error::{ApiError, ApiResult};
use crate::mail::MailKind;
use crate::models::{AuditStore, MailTokenStore, OutboxStore, UserStore};

fn gone() -> ApiError {
    ApiError::invalid_token("The account of this access token no longer exists.")
}

impl Auth {
    /// `POST /auth/email/verify/send`: a verification mail to the caller's address, within the
    /// limits; nothing when it is verified already.
    pub async fn send_verification(&self, pool: &DbPool, me: &guards::User, client: &RequestOrigin) -> ApiResult<()> {
        self.mail.require_on()?;
        let mut conn = pool.conn().await?;
        let user = crate::db::with_conn!(conn, |c| c.find_user(me.user_id).await)?.ok_or_else(gone)?;
        if user.email_verified {
            return Ok(());
        }
        let (mailer, now, ip) = (&self.mail, self.clock.now(), client.ip.as_deref());
        crate::db::write_tx!(conn, |c| send_token_mail(c, mailer, MailKind::Verify, user.id, &user.email, ip, now)
            .await)?;
        self.mail.wake();
        Ok(())
    }

    /// `POST /auth/email/verify`: the token's address becomes verified, if it is still the
    /// account's.
    pub async fn verify_email(&self, pool: &DbPool, token: &str, client: &RequestOrigin) -> ApiResult<()> {
        self.mail.require_on()?;
        let (hash, kind, now) = (hash_token(token), token_kind(MailKind::Verify), self.clock.now());
        let mut conn = pool.conn().await?;
        let row = crate::db::with_conn!(conn, |c| c.live_mail_token(&hash, kind, now).await)?.ok_or_else(dead_link)?;
        let audit = audit_event("email_verified", now, Some(row.user_id), client, json!({}));
        crate::db::write_tx!(conn, |c| {
            if !c.spend_mail_token(&hash, kind, now).await?
                || !c.set_email_verified(row.user_id, &row.email, now).await?
            {
                return Err(dead_link());
            }
            c.insert_audit(&audit).await?;
            Ok::<_, ApiError>(())
        })
    }

    /// `POST /users/me/email`: with the caller's password, a confirmation mail to `new_email`
    /// (within the limits) and a notice to the current address.
    pub async fn request_email_change(
        &self,
        pool: &DbPool,
        me: &guards::User,
        password: &str,
        new_email: &str,
        client: &RequestOrigin,
    ) -> ApiResult<()> {
        self.mail.require_on()?;
        let new_email = normalize_email(new_email)
            .map_err(|_| ApiError::invalid_field("new_email: must be a valid email address"))?;
        let (user, _) = self.reauthenticate(pool, me.user_id, password, client).await?;
        let mut conn = pool.conn().await?;
        if crate::db::with_conn!(conn, |c| c.find_user_by_email(&new_email).await)?.is_some() {
            return Err(ApiError::conflict("new_email: already registered"));
        }
        let (mailer, now, ip) = (&self.mail, self.clock.now(), client.ip.as_deref());
        let notice = mailer.message(MailKind::EmailChanging, &user.email, Some(user.id), None, Some(&new_email), now);
        crate::db::write_tx!(conn, |c| {
            let sent = send_token_mail(c, mailer, MailKind::Change, user.id, &new_email, ip, now).await?;
            if sent == super::limit::Allowance::Send {
                c.insert_message(&notice).await?;
            }
            Ok::<_, diesel::result::Error>(())
        })?;
        self.mail.wake();
        Ok(())
    }

    /// `POST /auth/email/confirm`: the account moves to the token's address, verified; 409 when
    /// another account took it meanwhile.
    pub async fn confirm_email_change(&self, pool: &DbPool, token: &str, client: &RequestOrigin) -> ApiResult<Account> {
        self.mail.require_on()?;
        let (hash, kind, now) = (hash_token(token), token_kind(MailKind::Change), self.clock.now());
        let mut conn = pool.conn().await?;
        let row = crate::db::with_conn!(conn, |c| c.live_mail_token(&hash, kind, now).await)?.ok_or_else(dead_link)?;
        let old = crate::db::with_conn!(conn, |c| c.find_user(row.user_id).await)?.ok_or_else(dead_link)?;
        let audit = audit_event("email_changed", now, Some(old.id), client, json!({}));
        let changed = crate::db::write_tx!(conn, |c| {
            if !c.spend_mail_token(&hash, kind, now).await? {
                return Err(dead_link());
            }
            match c.set_email(row.user_id, &row.email, now).await {
                Ok(_) => {}
                Err(e) if is_unique_violation(&e) => return Err(ApiError::conflict("email: already registered")),
                Err(e) => return Err(e.into()),
            }
            // The old address's reset links and pending requests die with it.
            super::void_reset_links(c, &old).await?;
            c.void_mail_tokens(row.user_id, token_kind(MailKind::Verify)).await?;
            c.insert_audit(&audit).await?;
            Ok::<_, ApiError>(c.find_user_with_roles(row.user_id).await?)
        })?;
        let (user, roles) = changed.ok_or_else(dead_link)?;
        Ok(Account::new(&user, roles))
    }
}
