//! The one throttling decision for mail that carries a token: at most
//! `mail.per_address_per_hour` such mails to one recipient address, and
//! `mail.per_client_address_per_hour` requests that cause them from one client address, in an
//! hour. A limited request still answers 202 (so the answer says nothing about the account) and
//! sends nothing; notices ("your password was changed") are not limited.
//!
//! Counted in the database, in the login throttle's table (`models::throttle`) under keys of
//! their own, so the limits hold across instances: inside the caller's write transaction, on a
//! locked row (PostgreSQL) or the single writer (SQLite), like `auth::registration_limit`. The
//! recipient's key is a digest, so the table holds no addresses; a counter keeps its hour's end
//! in `locked_until`, so housekeeping keeps it for the whole hour.

use diesel::result::QueryResult;

use crate::auth::secrets::hash_token;
use crate::config::mail::MailConfig;
use crate::models::{Throttle, ThrottleStore};

const HOUR: i64 = 3600;

/// Whether a token mail may go out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allowance {
    Send,
    Limited,
}

/// Counts one request from `client_ip` and (when allowed so far) one mail to `recipient`, and
/// says whether the mail may go. A limit of 0 turns that limit off.
pub async fn decide<C: ThrottleStore>(
    c: &mut C,
    config: &MailConfig,
    recipient: Option<&str>,
    client_ip: Option<&str>,
    now: i64,
) -> QueryResult<Allowance> {
    if let Some(ip) = client_ip {
        let key = format!("mail_from:{}", ip.chars().take(64).collect::<String>());
        if !count(c, &key, config.per_client_address_per_hour as i32, now).await? {
            return Ok(Allowance::Limited);
        }
    }
    if let Some(recipient) = recipient {
        let key = format!("mail_to:{}", hash_token(recipient));
        if !count(c, &key, config.per_address_per_hour as i32, now).await? {
            return Ok(Allowance::Limited);
        }
    }
    Ok(Allowance::Send)
}

/// One more in the hour of `key`; `false` (counting nothing) when the hour is used up.
async fn count<C: ThrottleStore>(c: &mut C, key: &str, limit: i32, now: i64) -> QueryResult<bool> {
    if limit <= 0 {
        return Ok(true);
    }
    c.lock_throttle(key, now).await?;
    let previous = c.find_throttles(&[key.to_owned()]).await?.into_iter().next();
    let counter = match previous {
        Some(t) if t.failures > 0 && now - t.window_start < HOUR => {
            if t.failures >= limit {
                return Ok(false);
            }
            Throttle { failures: t.failures + 1, ..t }
        }
        _ => Throttle { key: key.to_owned(), failures: 1, window_start: now, locked_until: now + HOUR },
    };
    c.save_throttle(&counter).await?;
    Ok(true)
}
