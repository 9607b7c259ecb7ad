//! Brute-force throttling of password checks, kept in the database so every instance sees the
//! same counters. [`reserve`] is the one entry point: every login, and every password change's
//! check of the current password, passes through it before the password is looked at.
//!
//! Three counters a check: the account from this client address (`pair`), the account from
//! everywhere (`account`), and the address across accounts (`address`). Each counts within a
//! fixed window; once a counter reaches its threshold it locks for a backoff that doubles (1 s,
//! 2 s, 4 s, ...) up to `throttle_max_backoff`, and attempts while any counter is locked get 429
//! without touching the password.
//!
//! Atomic: an attempt is counted as a failure *before* the password check, in a write
//! transaction that holds the counters' rows (PostgreSQL row locks; SQLite's single writer), so
//! of N simultaneous wrong attempts no more than the threshold reach the check. A success gives
//! its reservation back ([`release`], inside the login's own transaction): it clears the pair and
//! account counters (the owner proved the password) but only returns its own count to the
//! address counter, or an attacker could reset it with an account of their own. A request that
//! dies mid-check stays counted: failing closed, within the window.
//!
//! Scoped: the pair threshold is low (5 by default), so a guessing address locks only itself
//! out of the account, and the owner elsewhere still logs in until the account-wide threshold
//! (50 by default) bounds guessing spread over many addresses. Keys are digests of the email,
//! so their length is bounded whatever the input, and no email is stored here.
//!
//! Client authentication ([`ThrottleKeys::client`]) has counters of its own, under prefixes no
//! login key has: per (address, client) and per address, and none per client alone, since a
//! `client_id` is no secret and a client-wide counter would let anyone lock the client out.
//! Guessing spread over many addresses needs no such bound: a client secret has 256 bits.

use sha2::{Digest, Sha256};

use crate::config::AuthConfig;
use crate::db::DbConn;
use crate::error::{ApiError, ApiResult};
use crate::models::{Throttle, ThrottleStore};

/// The counters one password check touches.
#[derive(Debug, Clone)]
pub struct ThrottleKeys {
    pair: String,
    account: Option<String>,
    address: Option<String>,
}

/// The first 128 bits of the SHA-256 of `name`, in hex: bounded whatever the input.
fn digest(name: &str) -> String {
    Sha256::digest(name.as_bytes())[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// An address as a key part, bounded.
fn bounded(address: Option<&str>) -> Option<String> {
    address.map(|a| a.chars().take(64).collect())
}

impl ThrottleKeys {
    /// `email` as presented (normalised when it is valid); `address` the client IP when known.
    pub fn new(email: &str, address: Option<&str>) -> Self {
        let account = digest(email);
        let address = bounded(address);
        ThrottleKeys {
            pair: format!("pair:{account}@{}", address.as_deref().unwrap_or("-")),
            account: Some(format!("account:{account}")),
            address: address.map(|a| format!("address:{a}")),
        }
    }

    /// The counters of a client authentication: `client_id` as presented, from `address`.
    pub fn client(client_id: &str, address: Option<&str>) -> Self {
        let address = bounded(address);
        ThrottleKeys {
            pair: format!("client-pair:{}@{}", digest(client_id), address.as_deref().unwrap_or("-")),
            account: None,
            address: address.map(|a| format!("client-address:{a}")),
        }
    }

    /// Every key, sorted: rows are locked in this order, so concurrent checks cannot deadlock.
    fn all(&self) -> Vec<String> {
        let mut all: Vec<String> =
            std::iter::once(self.pair.clone()).chain(self.account.clone()).chain(self.address.clone()).collect();
        all.sort();
        all
    }

    fn limits(&self, key: &str, config: &AuthConfig) -> (i32, i64) {
        if key == self.pair {
            (config.throttle_pair_failures as i32, config.throttle_account_window as i64)
        } else if Some(key) == self.account.as_deref() {
            (config.throttle_account_total_failures as i32, config.throttle_account_window as i64)
        } else {
            (config.throttle_address_failures as i32, config.throttle_address_window as i64)
        }
    }
}

/// A counted attempt, to [`release`] if the password turns out right.
#[derive(Debug, Clone)]
pub struct Reservation {
    keys: ThrottleKeys,
    /// Locks this reservation set, `(key, lock before, lock set, backoff)`: lifted when it is
    /// given back, settled by [`failed`]. The lock stored while the check runs is the backoff
    /// plus [`IN_FLIGHT_HOLD`].
    locks_set: Vec<(String, i64, i64, i64)>,
    /// The client address's window after this attempt: when it started, and its failures (the
    /// audit row of unknown-email failures is one per address and window:
    /// `auth::audit::unknown_account_failure`).
    pub address_window: Option<(i64, i32)>,
    /// When the attempt was counted, in milliseconds.
    reserved_ms: i64,
}

/// How much longer than its backoff a lock set by an attempt holds while that attempt's check
/// runs. Counting is atomic (contract v2, "Login throttling": of N simultaneous attempts no more
/// than the threshold reach the check), but the threshold's backoff of one second could run out
/// while the attempts admitted before it are still being hashed on a busy machine, and later
/// ones of the same burst would be admitted as if after the lock. So the lock holds until the
/// check answers: [`failed`] then sets it to the backoff counted from the answer, a success
/// lifts it; only an attempt that dies in between leaves the hold to run out. A 429 meanwhile
/// says `Retry-After` up to this much longer than the backoff: the honest bound at that moment.
const IN_FLIGHT_HOLD: i64 = 30;

/// The counter after one more attempt at `now`.
fn next(previous: Option<&Throttle>, key: &str, threshold: i32, window: i64, max_backoff: i64, now: i64) -> Throttle {
    let (failures, window_start) = match previous {
        Some(t) if t.failures > 0 && now - t.window_start < window => (t.failures.saturating_add(1), t.window_start),
        _ => (1, now),
    };
    let locked_until = if failures >= threshold {
        let doublings = (failures - threshold).min(30) as u32;
        now + (1i64 << doublings).min(max_backoff)
    } else {
        0
    };
    Throttle { key: key.to_owned(), failures, window_start, locked_until }
}

/// Counts one attempt against every key before its password is checked: 429 with `Retry-After`
/// (and nothing counted) while any key is locked at `now_ms` (milliseconds: see [`failed`]).
pub async fn reserve(
    conn: &mut DbConn,
    keys: &ThrottleKeys,
    config: &AuthConfig,
    now_ms: i64,
) -> ApiResult<Reservation> {
    count(conn, keys, config, now_ms, true).await
}

/// Counts a failure that had no reservation (a wrong second factor), locked or not.
pub async fn record_failure(conn: &mut DbConn, keys: &ThrottleKeys, config: &AuthConfig, now: i64) -> ApiResult<()> {
    count(conn, keys, config, now * 1000, false).await.map(|_| ())
}

async fn count(
    conn: &mut DbConn,
    keys: &ThrottleKeys,
    config: &AuthConfig,
    now_ms: i64,
    refuse_locked: bool,
) -> ApiResult<Reservation> {
    let now = now_ms.div_euclid(1000);
    let all = keys.all();
    let max_backoff = config.throttle_max_backoff as i64;
    crate::db::write_tx!(conn, |c| {
        for key in &all {
            c.lock_throttle(key, now).await?;
        }
        let rows = c.find_throttles(&all).await?;
        if refuse_locked {
            if let Some(until) = rows.iter().map(|t| t.locked_until).max().filter(|until| *until > now) {
                return Err(ApiError::too_many_requests((until - now) as u64));
            }
        }
        let mut address_window = None;
        let mut locks_set = vec![];
        for key in &all {
            let (threshold, window) = keys.limits(key, config);
            let previous = rows.iter().find(|t| &t.key == key);
            let updated = next(previous, key, threshold, window, max_backoff, now);
            if Some(key) == keys.address.as_ref() {
                address_window = Some((updated.window_start, updated.failures));
            }
            let before = previous.map_or(0, |t| t.locked_until);
            let mut updated = updated;
            if updated.locked_until != before {
                let backoff = updated.locked_until - now;
                if refuse_locked && backoff > 0 {
                    updated.locked_until += IN_FLIGHT_HOLD;
                }
                locks_set.push((key.clone(), before, updated.locked_until, backoff));
            }
            c.save_throttle(&updated).await?;
        }
        Ok::<_, ApiError>(Reservation { keys: keys.clone(), locks_set, address_window, reserved_ms: now_ms })
    })
}

/// 429 with `Retry-After` while any of the keys is locked at `now`; counts nothing. For a second
/// factor, whose attempts are bounded by its `mfa_token` and counted by [`record_failure`].
pub async fn check(conn: &mut DbConn, keys: &ThrottleKeys, now: i64) -> ApiResult<()> {
    let rows = crate::db::with_conn!(conn, |c| c.find_throttles(&keys.all()).await)?;
    match rows.iter().map(|t| t.locked_until).max() {
        Some(until) if until > now => Err(ApiError::too_many_requests((until - now) as u64)),
        _ => Ok(()),
    }
}

/// Clears the account's counters after a completed second factor: the owner proved both.
pub async fn clear_account(conn: &mut DbConn, keys: &ThrottleKeys) -> ApiResult<()> {
    // `account:` sorts before `pair:`: the order reservations lock them in.
    Ok(crate::db::write_tx!(conn, |c| {
        if let Some(account) = &keys.account {
            c.clear_throttle(account).await?;
        }
        c.clear_throttle(&keys.pair).await
    })?)
}

/// Clears every password-failure counter of the account of `email` — its own and those of every
/// (account, address) pair — after a password reset: the owner proved the mailbox, and the new
/// password must work at once from wherever the old one was guessed at (contract v3, "Password
/// reset order"). Address counters stay: they belong to the address, not to the account.
pub async fn clear_account_everywhere(conn: &mut DbConn, email: &str) -> ApiResult<()> {
    let account = digest(email);
    Ok(crate::db::write_tx!(conn, |c| {
        c.clear_throttle(&format!("account:{account}")).await?;
        c.clear_throttles_starting(&format!("pair:{account}@")).await
    })?)
}

/// Gives a reservation back after the right password; call inside the success's transaction.
/// Rows are touched in the sorted order [`reserve`] locks them in, so a release and a concurrent
/// reservation cannot deadlock on PostgreSQL.
pub async fn release<C: ThrottleStore>(c: &mut C, reservation: &Reservation) -> diesel::QueryResult<()> {
    for key in reservation.keys.all() {
        if Some(&key) == reservation.keys.address.as_ref() {
            reservation.take_back(c, &key).await?;
        } else {
            c.clear_throttle(&key).await?;
        }
    }
    Ok(())
}

impl Reservation {
    /// Uncounts this attempt on `key` and lifts a lock it set (unless a later attempt changed it).
    async fn take_back<C: ThrottleStore>(&self, c: &mut C, key: &str) -> diesel::QueryResult<()> {
        if let Some((_, before, set, _)) = self.locks_set.iter().find(|(k, ..)| k == key) {
            c.restore_throttle_lock(key, *set, *before).await?;
        }
        c.uncount_throttle(key).await
    }
}

/// The check of a reservation turned out wrong at `now_ms`: each lock it set (held while the
/// check ran, [`IN_FLIGHT_HOLD`]) becomes its backoff counted from this answer, the time the
/// check took rounded up to whole seconds (the counters' resolution). So `Retry-After` counts
/// from the answer the client saw, and the attempt right after the threshold's 401 meets the
/// 429 however slow the check was. Only while no later attempt changed that lock. Every path
/// that reserves calls this on a wrong credential.
pub async fn failed(conn: &mut DbConn, reservation: &Reservation, now_ms: i64) -> ApiResult<()> {
    if reservation.locks_set.is_empty() {
        return Ok(());
    }
    let took = ((now_ms - reservation.reserved_ms).max(0) + 999) / 1000;
    let counted = reservation.reserved_ms.div_euclid(1000);
    Ok(crate::db::write_tx!(conn, |c| {
        for (key, _, set, backoff) in &reservation.locks_set {
            c.restore_throttle_lock(key, *set, counted + took + backoff).await?;
        }
        Ok::<_, diesel::result::Error>(())
    })?)
}

/// Takes a reservation back without clearing anything: the password was right but the login is
/// not complete (a second factor follows), so earlier failures still stand.
pub async fn give_back<C: ThrottleStore>(c: &mut C, reservation: &Reservation) -> diesel::QueryResult<()> {
    for key in reservation.keys.all() {
        reservation.take_back(c, &key).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_threshold_and_is_capped() {
        let mut t: Option<Throttle> = None;
        let mut locks = vec![];
        for _ in 0..10 {
            let n = next(t.as_ref(), "k", 3, 900, 60, 1000);
            locks.push(if n.locked_until > 0 { n.locked_until - 1000 } else { 0 });
            t = Some(n);
        }
        assert_eq!(locks, vec![0, 0, 1, 2, 4, 8, 16, 32, 60, 60]);
    }

    #[test]
    fn a_new_window_starts_the_count_again() {
        let old = Throttle { key: "k".into(), failures: 9, window_start: 0, locked_until: 5 };
        let n = next(Some(&old), "k", 3, 900, 60, 1000);
        assert_eq!((n.failures, n.window_start, n.locked_until), (1, 1000, 0));
    }

    #[test]
    fn keys_are_bounded_and_hold_no_email() {
        let keys = ThrottleKeys::new(&"a".repeat(10_000), Some("192.0.2.1"));
        assert!(keys.all().iter().all(|k| k.len() < 100 && !k.contains("aaaa")));
    }

    #[test]
    fn no_login_shares_a_counter_with_a_client_authentication() {
        let id = "9b2d4c1e-0000-4000-8000-000000000000";
        let client = ThrottleKeys::client(id, Some("192.0.2.1")).all();
        for email in [id.to_owned(), format!("client:{id}")] {
            let login = ThrottleKeys::new(&email, Some("192.0.2.1")).all();
            assert!(login.iter().all(|k| !client.contains(k)), "{login:?} and {client:?}");
        }
        assert!(client.iter().all(|k| k.starts_with("client-")));
    }
}
