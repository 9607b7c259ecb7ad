//! The per-account second-factor counter: every endpoint that checks a TOTP or recovery code
//! (the login's second step, enrolment's confirmation, and the re-authentications that turn MFA
//! off or issue new recovery codes) passes through [`reserve`] before it looks at the code.
//!
//! One counter per account, whatever the client address or `mfa_token`: a six-digit code has
//! only a million values, so guesses are bounded per account, not per request path. After
//! [`LIMIT`] wrong codes within [`WINDOW`] seconds the account's second-factor endpoints answer
//! 429 for [`WINDOW`] seconds from the last counted failure. Only a correct code clears it
//! ([`Attempt::clear`]); a correct password does not, so re-entering the password buys no new
//! guesses (the password throttle in `auth::throttle` clears on a correct password and is a
//! separate row).
//!
//! Atomic like the password throttle: the attempt is counted in a write transaction that holds
//! the counter's row (PostgreSQL row lock; SQLite's single writer) before the code is checked,
//! so of N simultaneous wrong codes no more than [`LIMIT`] reach the check. The counter is a row
//! of `login_throttle` under its own key prefix, so it shares that table's storage and cleanup.

use crate::db::{DbConn, Id};
use crate::error::{ApiError, ApiResult};
use crate::models::{Throttle, ThrottleStore};

/// Wrong codes within [`WINDOW`] that lock an account's second factor.
pub const LIMIT: i32 = 5;
/// Seconds over which wrong codes are counted, and how long the lock lasts after the last one.
pub const WINDOW: i64 = 900;

/// What the counters' keys in `login_throttle` start with (housekeeping gives them [`WINDOW`]).
pub const KEY_PREFIX: &str = "second_factor:";

fn key(user_id: Id) -> String {
    format!("{KEY_PREFIX}{user_id}")
}

/// 429 with `Retry-After` when `row` is locked at `now`.
fn refuse_if_locked(row: Option<&Throttle>, now: i64) -> ApiResult<()> {
    match row.map(|t| t.locked_until) {
        Some(until) if until > now => Err(ApiError::too_many_requests((until - now) as u64)),
        _ => Ok(()),
    }
}

/// The counter after one more wrong code at `now`.
fn next(previous: Option<&Throttle>, key: String, now: i64) -> Throttle {
    let (failures, window_start) = match previous {
        Some(t) if t.failures > 0 && now - t.window_start < WINDOW => (t.failures.saturating_add(1), t.window_start),
        _ => (1, now),
    };
    let locked_until = if failures >= LIMIT { now + WINDOW } else { 0 };
    Throttle { key, failures, window_start, locked_until }
}

/// 429 while the account's second factor is locked; counts nothing. Lets an endpoint answer
/// 429 before its other answers, which must not count as a guess.
pub async fn check(conn: &mut DbConn, user_id: Id, now: i64) -> ApiResult<()> {
    let keys = [key(user_id)];
    let rows = crate::db::with_conn!(conn, |c| c.find_throttles(&keys).await)?;
    refuse_if_locked(rows.first(), now)
}

/// A code counted as wrong until it proves right.
#[derive(Debug)]
#[must_use = "a correct code clears the counter with Attempt::clear"]
pub struct Attempt {
    key: String,
    /// The lock this attempt set, `(before, set)`, to lift if the attempt is given back.
    lock_set: Option<(i64, i64)>,
}

/// Counts one attempt for `user_id` before its code is checked: 429 with `Retry-After` (and
/// nothing counted) while the account is locked.
pub async fn reserve(conn: &mut DbConn, user_id: Id, now: i64) -> ApiResult<Attempt> {
    let key = key(user_id);
    crate::db::write_tx!(conn, |c| {
        c.lock_throttle(&key, now).await?;
        let rows = c.find_throttles(std::slice::from_ref(&key)).await?;
        let previous = rows.first();
        refuse_if_locked(previous, now)?;
        let updated = next(previous, key.clone(), now);
        let before = previous.map_or(0, |t| t.locked_until);
        let lock_set = (updated.locked_until != before).then_some((before, updated.locked_until));
        c.save_throttle(&updated).await?;
        Ok::<_, ApiError>(Attempt { key: key.clone(), lock_set })
    })
}

impl Attempt {
    /// The code was right: the counter starts again. Call inside the transaction that accepts
    /// the code, so that the acceptance and the clearing commit together.
    pub async fn clear<C: ThrottleStore>(&self, c: &mut C) -> diesel::QueryResult<()> {
        c.clear_throttle(&self.key).await
    }

    /// No code was judged after all (the request failed for another reason after reserving):
    /// uncounts the attempt and lifts a lock it set, unless a later attempt changed it.
    pub async fn give_back(&self, conn: &mut DbConn) -> ApiResult<()> {
        Ok(crate::db::write_tx!(conn, |c| {
            if let Some((before, set)) = self.lock_set {
                c.restore_throttle_lock(&self.key, set, before).await?;
            }
            c.uncount_throttle(&self.key).await
        })?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fifth_wrong_code_locks_for_the_window_after_it() {
        let mut row: Option<Throttle> = None;
        let mut locks = vec![];
        for i in 0..LIMIT as i64 {
            let n = next(row.as_ref(), "k".into(), 1000 + i);
            locks.push(n.locked_until);
            row = Some(n);
        }
        assert_eq!(locks, vec![0, 0, 0, 0, 1004 + WINDOW]);
    }

    #[test]
    fn a_window_that_ended_counts_from_one_again() {
        let old = Throttle { key: "k".into(), failures: 4, window_start: 0, locked_until: 0 };
        let n = next(Some(&old), "k".into(), WINDOW);
        assert_eq!((n.failures, n.window_start, n.locked_until), (1, WINDOW, 0));
    }
}
