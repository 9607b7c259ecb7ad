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

/// The `login_failed` row that stands for every failure with an unknown email from one client
/// address in one throttle window (`window`: when it started, and the address's failures in it so
/// far). Its id is derived from the address and the window, so each such failure writes the same
/// row — inserted by the first, its count brought up to date by the others (`upsert_audit`).
///
/// Why each failure writes at all: a wrong password for a real account writes its own row, and a
/// request that commits nothing answers measurably sooner than one that commits a row (on
/// PostgreSQL about 0.7 ms of 15: docs/security.md, "Login timing"), which would tell an attacker
/// which emails have accounts. Why one row: a spray of made-up emails must not grow the log.
pub fn unknown_account_failure<'a>(client: &'a RequestOrigin, window: (i64, i32), now: i64) -> NewAuditEvent<'a> {
    use sha2::{Digest, Sha256};
    let ip = client.ip.as_deref().unwrap_or_default();
    let digest = Sha256::digest(format!("login_failed/unknown_account\0{ip}\0{}", window.0));
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    let mut event = audit_event(
        "login_failed",
        now,
        None,
        client,
        serde_json::json!({"reason": "unknown_account", "address_failures": window.1}),
    );
    event.id = Id(uuid::Uuid::new_v8(bytes));
    event
}
