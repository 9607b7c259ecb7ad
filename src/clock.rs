//! The service's notion of "now", in Unix seconds (and milliseconds where a second is too coarse:
//! the refresh-token grace interval).
//!
//! Everything that expires (tokens, sessions, throttling) asks this clock, never the system
//! directly, so tests can move time forward instead of sleeping.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// System time plus an offset that tests may advance; or, for tests, a frozen time that moves
/// only when advanced. Cloning shares the offset.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    /// Milliseconds.
    offset: Arc<AtomicI64>,
    frozen: bool,
}

fn system_now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

impl Clock {
    pub fn new() -> Self {
        Clock::default()
    }

    /// A clock stopped at the current time: `now` changes only through [`advance`](Self::advance).
    pub fn frozen() -> Self {
        Clock { offset: Arc::new(AtomicI64::new(system_now_ms())), frozen: true }
    }

    /// Seconds since the Unix epoch.
    pub fn now(&self) -> i64 {
        self.now_ms().div_euclid(1000)
    }

    /// Milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> i64 {
        let base = if self.frozen { 0 } else { system_now_ms() };
        base + self.offset.load(Ordering::Relaxed)
    }

    /// [`now_ms`](Self::now_ms) as a typed moment.
    pub fn now_millis(&self) -> UnixMillis {
        UnixMillis(self.now_ms())
    }

    /// Moves this clock (and every clone of it) forward.
    pub fn advance(&self, seconds: i64) {
        self.advance_ms(seconds * 1000);
    }

    /// Moves this clock (and every clone of it) forward by `ms` milliseconds.
    pub fn advance_ms(&self, ms: i64) {
        self.offset.fetch_add(ms, Ordering::Relaxed);
    }
}

/// A moment in whole seconds since the Unix epoch: what sessions, tokens and throttling keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnixSeconds(pub i64);

/// A moment in milliseconds since the Unix epoch: the refresh-token exchange times (a session's
/// `rotated_at` and `burst_at`), where a second is too coarse for the grace interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnixMillis(pub i64);

impl UnixMillis {
    /// The whole second this moment falls in.
    pub fn seconds(self) -> UnixSeconds {
        UnixSeconds(self.0.div_euclid(1000))
    }

    /// Whether `earlier` is at most `grace_ms` milliseconds before this moment.
    pub fn within(self, earlier: UnixMillis, grace_ms: i64) -> bool {
        self.0 - earlier.0 <= grace_ms
    }
}

impl UnixSeconds {
    /// The start of this second, in milliseconds.
    pub fn millis(self) -> UnixMillis {
        UnixMillis(self.0 * 1000)
    }
}

/// Renders Unix seconds as an RFC 3339 UTC timestamp.
pub fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}
