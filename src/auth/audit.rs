//! Audit rows as the auth and admin functions write them: who did what to whom, from where.

use crate::auth::guards::RequestOrigin;
use crate::db::Id;
use crate::models::NewAuditEvent;

/// An audit row at `now` about `user`, done by `user` themselves, from `client`.
pub fn audit_event<'a>(
    event: &'a str,
    now: i64,
    user: Option<Id>,
    client: &'a RequestOrigin,
    detail: serde_json::Value,
) -> NewAuditEvent<'a> {
    audit_by(event, now, user, user, client, detail)
}

/// An audit row at `now` about `user`, done by `actor`, from `client`.
pub fn audit_by<'a>(
    event: &'a str,
    now: i64,
    user: Option<Id>,
    actor: Option<Id>,
    client: &'a RequestOrigin,
    detail: serde_json::Value,
) -> NewAuditEvent<'a> {
    NewAuditEvent {
        id: Id::new(),
        at: now,
        event,
        user_id: user,
        actor_id: actor,
        ip: client.ip.as_deref(),
        detail: detail.to_string(),
    }
}
