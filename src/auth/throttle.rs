//! Brute-force throttling of logins, per account and per client address, kept in the database
//! so every instance sees the same counters.
//!
//! Each key counts failures in a fixed window. Once a key reaches its threshold, every further
//! failure locks it for a backoff that doubles (1 s, 2 s, 4 s, ...) up to `throttle_max_backoff`;
//! attempts while locked get 429 without touching the password, so they neither count nor extend
//! the lock. The cap bounds how long an attacker can keep a real user out. A success clears the
//! account's counter (not the address's, or an attacker could reset it with their own account).

use crate::config::AuthConfig;
use crate::db::DbConn;
use crate::error::{ApiError, ApiResult};
use crate::models::{Throttle, ThrottleStore};

/// The counters one login attempt touches.
#[derive(Debug, Clone)]
pub struct ThrottleKeys {
    account: String,
    address: Option<String>,
}

impl ThrottleKeys {
    /// `email` normalised; `address` the client IP when known.
    pub fn new(email: &str, address: Option<&str>) -> Self {
        ThrottleKeys { account: format!("account:{email}"), address: address.map(|a| format!("address:{a}")) }
    }

    fn all(&self) -> Vec<String> {
        std::iter::once(self.account.clone()).chain(self.address.clone()).collect()
    }

    fn limits(&self, key: &str, config: &AuthConfig) -> (i32, i64) {
        if key == self.account {
            (config.throttle_account_failures as i32, config.throttle_account_window as i64)
        } else {
            (config.throttle_address_failures as i32, config.throttle_address_window as i64)
        }
    }
}

/// 429 with `Retry-After` when any of the keys is locked at `now`; otherwise whether the
/// account has a failure counter (which a successful login then clears).
pub async fn check(conn: &mut DbConn, keys: &ThrottleKeys, now: i64) -> ApiResult<bool> {
    let all = keys.all();
    let rows = crate::with_conn!(conn, |c| c.find_throttles(&all).await)?;
    match rows.iter().map(|t| t.locked_until).max() {
        Some(until) if until > now => Err(ApiError::too_many_requests((until - now) as u64)),
        _ => Ok(rows.iter().any(|t| t.key == keys.account)),
    }
}

/// The counter after one more failure at `now`.
fn next(previous: Option<&Throttle>, key: &str, threshold: i32, window: i64, max_backoff: i64, now: i64) -> Throttle {
    let (failures, window_start) = match previous {
        Some(t) if now - t.window_start < window => (t.failures.saturating_add(1), t.window_start),
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

/// Counts a failed login against every key. Returns whether this failure opened a new window
/// for the client address (used to audit unknown-account failures once per address and window).
pub async fn record_failure(conn: &mut DbConn, keys: &ThrottleKeys, config: &AuthConfig, now: i64) -> ApiResult<bool> {
    let all = keys.all();
    let max_backoff = config.throttle_max_backoff as i64;
    crate::write_tx!(conn, |c| {
        let rows = c.find_throttles(&all).await?;
        let mut new_address_window = false;
        for key in &all {
            let (threshold, window) = keys.limits(key, config);
            let updated = next(rows.iter().find(|t| &t.key == key), key, threshold, window, max_backoff, now);
            new_address_window |= Some(key) == keys.address.as_ref() && updated.failures == 1;
            c.save_throttle(&updated).await?;
        }
        Ok::<_, ApiError>(new_address_window)
    })
}

/// Clears the account's counter after a successful login.
pub async fn record_success(conn: &mut DbConn, keys: &ThrottleKeys) -> ApiResult<()> {
    Ok(crate::write_tx!(conn, |c| c.clear_throttle(&keys.account).await)?)
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
}
