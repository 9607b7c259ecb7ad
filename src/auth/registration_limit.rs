//! The registration limit: at most `auth.registrations_per_address_per_hour` attempts to register
//! from one client address in an hour (0 turns it off). Every attempt counts, refused ones (409,
//! 422) included, so probing which addresses are taken is bounded too; beyond it, 429 with
//! `Retry-After` until the hour is over.
//!
//! The counter lives in the login throttle's table (`models::throttle`), so every instance sees
//! the same count, under keys of their own (`register:<address>`) that no login reads. A counter
//! keeps its hour's end in `locked_until`, so housekeeping, which deletes only counters unlocked
//! at the time, keeps it for the whole hour. A request without a known address is not limited.

use crate::config::AuthConfig;
use crate::db::DbConn;
use crate::error::{ApiError, ApiResult};
use crate::models::{Throttle, ThrottleStore};

/// The window of the limit, in seconds.
const HOUR: i64 = 3600;

/// Counts one registration attempt from `address` at `now`: 429 (counting nothing) when the
/// address has used up its hour.
pub async fn count_registration(
    conn: &mut DbConn,
    config: &AuthConfig,
    address: Option<&str>,
    now: i64,
) -> ApiResult<()> {
    let limit = config.registrations_per_address_per_hour as i32;
    let Some(address) = address.filter(|_| limit > 0) else { return Ok(()) };
    let key = format!("register:{}", address.chars().take(64).collect::<String>());
    crate::db::write_tx!(conn, |c| {
        c.lock_throttle(&key, now).await?;
        let previous = c.find_throttles(std::slice::from_ref(&key)).await?.into_iter().next();
        let counter = match previous {
            Some(t) if t.failures > 0 && now - t.window_start < HOUR => {
                if t.failures >= limit {
                    return Err(ApiError::too_many_requests((t.window_start + HOUR - now) as u64));
                }
                Throttle { failures: t.failures + 1, ..t }
            }
            _ => Throttle { key: key.clone(), failures: 1, window_start: now, locked_until: now + HOUR },
        };
        c.save_throttle(&counter).await?;
        Ok::<_, ApiError>(())
    })
}
