//! The sender task every instance runs: it claims due messages from the outbox under a lease
//! (PostgreSQL `FOR UPDATE SKIP LOCKED`, SQLite's single writer), so of several instances on one
//! database exactly one sends each message, and delivers them concurrently over the transport's
//! pooled connections. A transient failure (4yz, connection, timeout) is tried again after a
//! growing delay; a permanent one (5yz) or the `mail.max_attempts`-th failure gives the message
//! up, audited `mail_failed`. Each message is judged on its own, so one that cannot be delivered
//! never holds up the others. A message whose sender died holding it is claimed again when the
//! lease ends.
//!
//! Throughput (bench/README.md, "Mail"): one claim per batch of [`BATCH`], and the batch's
//! delivered messages deleted in one statement once every delivery of the batch has ended. A
//! message is deleted only after the SMTP server accepted it, so only a crash between that
//! acceptance and the batch's record sends a message twice (after the lease ends).
//!
//! Logs name the message's id and kind, never its link or body.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use rocket::Shutdown;
use serde_json::json;

use super::issue;
use super::templates::{render, Context};
use super::transport::{self, Delivery};
use super::{MailKind, Mailer};
use crate::clock::Clock;
use crate::db::{DbPool, Id};
use crate::models::{AuditStore, NewAuditEvent, OutboxMessage, OutboxStore};

/// Messages claimed per pass.
const BATCH: i64 = 128;
/// Deliveries in flight at once (the transport's pool holds as many connections).
pub const IN_FLIGHT: usize = super::connection::CONNECTIONS;
/// How long a claim holds, in seconds: longer than any delivery (bounded by the timeouts).
const LEASE: i64 = 300;
/// How often the outbox is read when nothing wakes the sender earlier.
const POLL: Duration = Duration::from_millis(500);

/// Seconds before try `attempt + 1`, after `attempt` failures: 5 s, 10 s, 20 s, ... up to an hour.
pub fn retry_delay(attempt: i32) -> i64 {
    (5i64 << (attempt.clamp(1, 20) - 1)).min(3600)
}

/// Runs until shutdown, then ends the kept SMTP sessions.
pub async fn run(mailer: Arc<Mailer>, pool: DbPool, clock: Clock, mut shutdown: Shutdown) {
    loop {
        let claimed = match pass(&mailer, &pool, &clock).await {
            Ok(claimed) => claimed,
            Err(e) => {
                rocket::warn!("mail sender: {e}");
                0
            }
        };
        // A full batch means more are due: claim the next at once, unless the service is
        // shutting down (what is unclaimed waits for the next start or another instance).
        let more = claimed as i64 == BATCH;
        tokio::select! {
            biased;
            _ = &mut shutdown => break,
            _ = std::future::ready(()), if more => {}
            _ = mailer.woken() => {}
            _ = tokio::time::sleep(POLL) => {}
        }
    }
    mailer.close().await;
}

/// One pass: claims a batch, delivers it, records the outcomes. Returns how many messages it
/// claimed.
pub async fn pass(mailer: &Mailer, pool: &DbPool, clock: &Clock) -> Result<usize, String> {
    let now = clock.now();
    let mut conn = pool.conn().await.map_err(|e| e.to_string())?;
    let claimed = crate::db::write_tx!(conn, |c| c.claim_messages(now, now + LEASE, BATCH).await)
        .map_err(|e| format!("cannot claim messages: {e}"))?;
    drop(conn);
    let count = claimed.len();
    if count == 0 {
        return Ok(0);
    }
    let (ready, mut outcomes) = issue_requests(mailer, pool, now, claimed).await;
    let delivered: Vec<(OutboxMessage, Option<Delivery>)> = futures_util::stream::iter(ready)
        .map(|message| async move {
            // A decoy (written by earlier versions) is deleted unsent.
            let delivery = match MailKind::parse(&message.kind) {
                Some(MailKind::Decoy) => None,
                _ => Some(attempt(mailer, &message).await),
            };
            (message, delivery)
        })
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    outcomes.extend(delivered);
    record(mailer, pool, clock, outcomes).await?;
    let mut conn = pool.conn().await.map_err(|e| e.to_string())?;
    if let Ok(depth) = crate::db::with_conn!(conn, |c| c.outbox_depth().await) {
        crate::ops::metrics::mail_outbox_depth(depth);
    }
    Ok(count)
}

/// The batch with its password-reset requests issued ([`issue`]), oldest first, so that of two
/// requests for one account the later one's token is the one that lives; requests that came to
/// nothing are gone. A request that could not be issued (storage) is a failed try, tried again.
async fn issue_requests(
    mailer: &Mailer,
    pool: &DbPool,
    now: i64,
    mut claimed: Vec<OutboxMessage>,
) -> (Vec<OutboxMessage>, Vec<(OutboxMessage, Option<Delivery>)>) {
    claimed.sort_by_key(|m| m.id);
    let (mut ready, mut failed) = (Vec::with_capacity(claimed.len()), Vec::new());
    for message in claimed {
        if MailKind::parse(&message.kind) != Some(MailKind::ResetRequest) {
            ready.push(message);
            continue;
        }
        match issue::issue(mailer, pool, now, &message).await {
            Ok(Some(mail)) => ready.push(mail),
            Ok(None) => {}
            Err(e) => failed.push((message, Some(Delivery::Transient(e)))),
        }
    }
    (ready, failed)
}

/// Records a batch's outcomes: the delivered messages (and decoys) deleted in one transaction,
/// the failed ones rescheduled or given up one by one.
async fn record(
    mailer: &Mailer,
    pool: &DbPool,
    clock: &Clock,
    outcomes: Vec<(OutboxMessage, Option<Delivery>)>,
) -> Result<(), String> {
    let now = clock.now();
    let mut conn = pool.conn().await.map_err(|e| e.to_string())?;
    let (mut done, mut sent): (Vec<Id>, usize) = (Vec::new(), 0);
    let mut failed = Vec::new();
    for (message, delivery) in outcomes {
        match delivery {
            None => done.push(message.id),
            Some(Delivery::Accepted(_)) => {
                done.push(message.id);
                sent += 1;
            }
            Some(other) => failed.push((message, other)),
        }
    }
    crate::db::write_tx!(conn, |c| c.delete_messages(&done).await).map_err(|e| e.to_string())?;
    for _ in 0..sent {
        crate::ops::metrics::mail("sent");
    }
    for (message, delivery) in failed {
        if let Err(e) = record_failure(mailer, &mut conn, &message, delivery, now).await {
            rocket::warn!("mail sender: {e}");
        }
    }
    Ok(())
}

/// A failed try: another one later, or the message given up.
async fn record_failure(
    mailer: &Mailer,
    conn: &mut crate::db::DbConn,
    message: &OutboxMessage,
    delivery: Delivery,
    now: i64,
) -> Result<(), String> {
    let attempts = message.attempts.saturating_add(1);
    let reason = match delivery {
        Delivery::Accepted(_) => return Ok(()),
        Delivery::Transient(reason) if attempts < mailer.settings.config.max_attempts as i32 => {
            let next = now + retry_delay(attempts);
            crate::db::write_tx!(conn, |c| c.reschedule_message(message.id, attempts, next).await)
                .map_err(|e| e.to_string())?;
            crate::ops::metrics::mail("retried");
            rocket::info!("mail {} ({}) try {attempts} failed, retrying: {reason}", message.id, message.kind);
            return Ok(());
        }
        Delivery::Transient(reason) | Delivery::Permanent(reason) => reason,
    };
    give_up(conn, message, attempts, &reason, now).await?;
    crate::ops::metrics::mail("failed");
    rocket::warn!("mail {} ({}) given up after {attempts} tries: {reason}", message.id, message.kind);
    Ok(())
}

/// Deletes the message (and its link) and audits `mail_failed`, in one transaction.
async fn give_up(
    conn: &mut crate::db::DbConn,
    message: &OutboxMessage,
    attempts: i32,
    reason: &str,
    now: i64,
) -> Result<(), String> {
    let detail =
        json!({"kind": message.kind, "attempts": attempts, "message_id": message.message_id, "reason": reason});
    let event = NewAuditEvent {
        id: Id::new(),
        at: now,
        event: "mail_failed",
        user_id: message.user_id,
        actor_id: None,
        ip: None,
        detail: detail.to_string(),
    };
    crate::db::write_tx!(conn, |c| {
        c.delete_message(message.id).await?;
        c.insert_audit(&event).await
    })
    .map_err(|e| e.to_string())
}

/// One try at the SMTP server. A message that cannot even be built fails permanently.
async fn attempt(mailer: &Mailer, message: &OutboxMessage) -> Delivery {
    let Some(transport) = mailer.transport() else { return Delivery::Transient("mail is not configured".into()) };
    let Some(kind) = MailKind::parse(&message.kind) else { return Delivery::Permanent("unknown kind".into()) };
    let link = match message.link.as_deref().map(|l| mailer.open_link(l)).transpose() {
        Ok(link) => link,
        Err(e) => return Delivery::Permanent(e),
    };
    let settings = &mailer.settings.config;
    let ttl_secs = if kind == MailKind::Reset { settings.reset_ttl } else { settings.verify_ttl };
    let cx = Context {
        display_name: &mailer.display_name,
        link: link.as_deref(),
        detail: message.detail.as_deref(),
        ttl_secs,
    };
    let rendered = render(kind, &cx);
    let built = transport::message(&mailer.settings.from, &message.recipient, &message.message_id, &rendered);
    match built {
        Ok(mime) => transport::deliver(transport, mime, Duration::from_secs(settings.timeout * 6)).await,
        Err(e) => Delivery::Permanent(e),
    }
}
