//! Password-reset requests become reset mails here, in the sender, not in the request.
//!
//! Why: `POST /auth/password/forgot` must take the same time whether or not the address has an
//! account (contract v3, "Mail"). Any work the request does only for a known address — a token
//! row, an audit row, another table's index — shows in its timing (bench/README.md, "Mail": the
//! decoys that imitated that work still left the known address measurably slower). So the
//! request writes one `reset_request` row whatever the address, with a token, its digest and the
//! requester's address (`auth::recovery::reset`), and the sender, when it claims the row, looks
//! the address up: an active account gets the token stored (voiding its previous one), the audit
//! row and the mail; any other address's row is deleted unsent.
//!
//! A password change or reset drops the account's pending requests (`drop_reset_requests`) while
//! holding the account's row lock, which [`issue`] takes too before it turns a request into a
//! mail: so a request is either dropped by the change or issued before it (and its token then
//! voided by it) — never issued after it.

use serde_json::json;

use super::{MailKind, Mailer};
use crate::db::{DbPool, Id};
use crate::models::{
    AuditStore, MailTokenStore, NewAuditEvent, NewMailToken, OutboxMessage, OutboxStore, SessionStore, UserStore,
};

/// `detail` of a request the mail limits refused: it is audited (`"sent": false`), never mailed.
pub const LIMITED: &str = "limited";

/// Turns the claimed request `request` into its reset mail, or deletes it. `Ok(None)`: nothing
/// to send (no active account, limited, or dropped meanwhile).
pub async fn issue(
    mailer: &Mailer,
    pool: &DbPool,
    now: i64,
    request: &OutboxMessage,
) -> Result<Option<OutboxMessage>, String> {
    let limited = request.detail.as_deref() == Some(LIMITED);
    let expires_at = now + mailer.settings.config.reset_ttl as i64;
    let mut conn = pool.conn().await.map_err(|e| e.to_string())?;
    let issued = crate::db::write_tx!(conn, |c| {
        let user = c.find_user_by_email(&request.recipient).await?.filter(|u| !u.disabled);
        let (Some(user), Some(token_hash)) = (user, request.token_hash.as_deref()) else {
            c.delete_message(request.id).await?;
            return Ok(None);
        };
        if limited {
            c.delete_message(request.id).await?;
            c.insert_audit(&requested(request, user.id, false, now)).await?;
            return Ok(None);
        }
        // The account's row lock (the one its password change holds): see the module's note.
        c.lock_user_sessions(user.id).await?;
        if c.issue_reset_request(request.id, user.id).await? == 0 {
            return Ok(None);
        }
        let token = NewMailToken {
            token_hash,
            user_id: user.id,
            kind: MailKind::Reset.as_str(),
            email: &user.email,
            created_at: now,
            expires_at,
        };
        c.replace_mail_token(&token).await?;
        c.insert_audit(&requested(request, user.id, true, now)).await?;
        Ok::<_, diesel::result::Error>(Some(user.id))
    })
    .map_err(|e| format!("cannot issue a reset request: {e}"))?;
    Ok(issued.map(|user| OutboxMessage {
        kind: MailKind::Reset.as_str().to_owned(),
        user_id: Some(user),
        token_hash: None,
        client_ip: None,
        ..request.clone()
    }))
}

/// `password_reset_requested`, from the requester's address, saying whether a mail goes out.
fn requested(request: &OutboxMessage, user: Id, sent: bool, now: i64) -> NewAuditEvent<'_> {
    NewAuditEvent {
        id: Id::new(),
        at: now,
        event: "password_reset_requested",
        user_id: Some(user),
        actor_id: Some(user),
        ip: request.client_ip.as_deref(),
        detail: json!({ "sent": sent }).to_string(),
    }
}
