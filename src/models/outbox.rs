//! `outbox`: messages waiting for the SMTP server. A row is written in the transaction that
//! causes the message, claimed by one sender at a time through a lease (`lease_until`), and
//! deleted once delivered or given up; `next_attempt_at` spaces the retries.

use diesel::prelude::*;
use diesel::result::QueryResult;
use diesel_async::RunQueryDsl;

use crate::db::schema::outbox;
use crate::db::Id;

/// A queued message. `link` is the sealed form of the mail's link; `Debug` leaves it out.
#[derive(Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = outbox, check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct OutboxMessage {
    pub id: Id,
    /// The `Message-ID` header, fixed at enqueue so that every try sends the same one.
    pub message_id: String,
    pub recipient: String,
    pub kind: String,
    pub link: Option<String>,
    /// What a notice mentions besides the link (the new address of an address change).
    pub detail: Option<String>,
    pub user_id: Option<Id>,
    pub attempts: i32,
    pub next_attempt_at: i64,
    pub lease_until: i64,
    pub created_at: i64,
    /// A `reset_request`'s token digest, stored as its `mail_tokens` row when the sender issues
    /// it (`mail::issue`); `None` on every other message.
    pub token_hash: Option<String>,
    /// A `reset_request`'s client address, for the audit row written when it is issued.
    pub client_ip: Option<String>,
}

impl std::fmt::Debug for OutboxMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboxMessage")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

#[allow(async_fn_in_trait)]
pub trait OutboxStore {
    async fn insert_message(&mut self, message: &OutboxMessage) -> QueryResult<()>;
    /// Leases up to `limit` due messages (due, and not leased at `now`) until `lease_until`.
    /// Call inside a write transaction: PostgreSQL skips rows another sender has locked
    /// (`FOR UPDATE SKIP LOCKED`); SQLite's single writer serialises the claims.
    async fn claim_messages(&mut self, now: i64, lease_until: i64, limit: i64) -> QueryResult<Vec<OutboxMessage>>;
    /// Delivered or given up: the message (and its link) is gone.
    async fn delete_message(&mut self, id: Id) -> QueryResult<usize>;
    /// [`delete_message`](Self::delete_message) for many: the sender records a pass's deliveries
    /// in one statement.
    async fn delete_messages(&mut self, ids: &[Id]) -> QueryResult<usize>;
    /// Another try at `next_attempt_at`, the lease released.
    async fn reschedule_message(&mut self, id: Id, attempts: i32, next_attempt_at: i64) -> QueryResult<usize>;
    /// Messages waiting (the metrics' outbox depth).
    async fn outbox_depth(&mut self) -> QueryResult<i64>;
    /// Turns the `reset_request` `id` into the reset mail of `user` (its token and client address
    /// dropped); 0 when it is no longer a pending request (a password change dropped it).
    async fn issue_reset_request(&mut self, id: Id, user: Id) -> QueryResult<usize>;
    /// Drops the `reset_request`s not yet issued for `recipient` (a password change or reset).
    async fn drop_reset_requests(&mut self, recipient: &str) -> QueryResult<usize>;
}

/// The stored kinds of `crate::mail::MailKind::{ResetRequest, Reset}` (models know no mail).
const RESET_REQUEST: &str = "reset_request";
const RESET: &str = "reset";

macro_rules! common {
    () => {
        async fn insert_message(&mut self, message: &OutboxMessage) -> QueryResult<()> {
            diesel::insert_into(outbox::table).values(message).execute(self).await.map(|_| ())
        }

        async fn delete_message(&mut self, id: Id) -> QueryResult<usize> {
            diesel::delete(outbox::table.find(id)).execute(self).await
        }

        async fn delete_messages(&mut self, ids: &[Id]) -> QueryResult<usize> {
            if ids.is_empty() {
                return Ok(0);
            }
            diesel::delete(outbox::table.filter(outbox::id.eq_any(ids))).execute(self).await
        }

        async fn reschedule_message(&mut self, id: Id, attempts: i32, next_attempt_at: i64) -> QueryResult<usize> {
            diesel::update(outbox::table.find(id))
                .set((
                    outbox::attempts.eq(attempts),
                    outbox::next_attempt_at.eq(next_attempt_at),
                    outbox::lease_until.eq(0i64),
                ))
                .execute(self)
                .await
        }

        async fn outbox_depth(&mut self) -> QueryResult<i64> {
            outbox::table.count().get_result(self).await
        }

        async fn issue_reset_request(&mut self, id: Id, user: Id) -> QueryResult<usize> {
            diesel::update(outbox::table.find(id).filter(outbox::kind.eq(RESET_REQUEST)))
                .set((
                    outbox::kind.eq(RESET),
                    outbox::user_id.eq(Some(user)),
                    outbox::token_hash.eq(None::<String>),
                    outbox::client_ip.eq(None::<String>),
                ))
                .execute(self)
                .await
        }

        async fn drop_reset_requests(&mut self, recipient: &str) -> QueryResult<usize> {
            diesel::delete(outbox::table.filter(outbox::kind.eq(RESET_REQUEST)).filter(outbox::recipient.eq(recipient)))
                .execute(self)
                .await
        }
    };
}

/// The due messages' ids, oldest due first.
macro_rules! due {
    ($now:expr, $limit:expr) => {
        outbox::table
            .filter(outbox::next_attempt_at.le($now))
            .filter(outbox::lease_until.le($now))
            .order(outbox::next_attempt_at)
            .select(outbox::id)
            .limit($limit)
    };
}

impl OutboxStore for super::SqliteConn {
    common!();

    async fn claim_messages(&mut self, now: i64, lease_until: i64, limit: i64) -> QueryResult<Vec<OutboxMessage>> {
        let ids: Vec<Id> = due!(now, limit).load(self).await?;
        if ids.is_empty() {
            return Ok(vec![]);
        }
        diesel::update(outbox::table.filter(outbox::id.eq_any(&ids)))
            .set(outbox::lease_until.eq(lease_until))
            .execute(self)
            .await?;
        outbox::table.filter(outbox::id.eq_any(&ids)).select(OutboxMessage::as_select()).load(self).await
    }
}

impl OutboxStore for super::PgConn {
    common!();

    async fn claim_messages(&mut self, now: i64, lease_until: i64, limit: i64) -> QueryResult<Vec<OutboxMessage>> {
        let ids: Vec<Id> = due!(now, limit).for_update().skip_locked().load(self).await?;
        if ids.is_empty() {
            return Ok(vec![]);
        }
        diesel::update(outbox::table.filter(outbox::id.eq_any(&ids)))
            .set(outbox::lease_until.eq(lease_until))
            .execute(self)
            .await?;
        outbox::table.filter(outbox::id.eq_any(&ids)).select(OutboxMessage::as_select()).load(self).await
    }
}
