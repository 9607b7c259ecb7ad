//! Wakes the storage poller ([`super::poller`]) early, and every long poll of the change feed
//! ([`super::feed`]): on this instance when it ends a session or changes a role, and on
//! PostgreSQL when a `NOTIFY` from the tables' triggers arrives ([`crate::db::notify`]).

use std::sync::atomic::{AtomicU64, Ordering};

/// Wakes the feed poller early. A signal carries no data: the poller reads every feed table as
/// on a tick, so a new feed table needs nothing here. Signals while a poll runs coalesce into
/// one more poll.
#[derive(Debug)]
pub struct SyncWake {
    pub(crate) notify: tokio::sync::Notify,
    signals: AtomicU64,
    /// Bumped with every signal, for any number of waiters (the change feed's long polls).
    changes: tokio::sync::watch::Sender<u64>,
}

impl Default for SyncWake {
    fn default() -> Self {
        SyncWake { notify: Default::default(), signals: Default::default(), changes: tokio::sync::watch::channel(0).0 }
    }
}

impl SyncWake {
    /// Asks the poller to read the feed now, and wakes every long poll of the change feed.
    pub fn wake(&self) {
        self.signals.fetch_add(1, Ordering::Relaxed);
        self.notify.notify_one();
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A receiver that sees every later [`wake`](Self::wake).
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// How many change-feed long polls are waiting now (for tests and diagnostics).
    pub fn waiting(&self) -> usize {
        self.changes.receiver_count()
    }

    /// How many times the poller was woken early (for tests and diagnostics).
    pub fn signals(&self) -> u64 {
        self.signals.load(Ordering::Relaxed)
    }
}
