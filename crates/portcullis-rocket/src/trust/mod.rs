//! The resource server's source of trust: the keys tokens are verified with, a cache of verified
//! tokens, and what the change feed has said. Keys and changes come from a running Portcullis (its
//! JWKS and change feed, followed over HTTP: [`Trust::connect`], [`Trust::follow`]) — or, for
//! tests, from an in-process issuer that pushes them in (`testing::Issuer`, with the `testing`
//! feature).

use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::changes::Changes;
use crate::core::{self, AccessClaims, Expected, KeySet, VerifiedTokens, VerifyError};

mod remote;

pub use remote::ConnectError;
use remote::Remote;

/// Seconds since the epoch.
pub fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// What the fairing manages: `&State<Trust>` in handlers, e.g. for [`Trust::readiness`].
#[derive(Clone)]
pub struct Trust(pub(crate) Arc<Inner>);

pub(crate) struct Inner {
    pub(crate) expected: Expected,
    keys: RwLock<Arc<KeySet>>,
    /// Tokens whose signature and claims verified with the current keys (see [`Trust::verify`]).
    verified: VerifiedTokens<String>,
    pub(crate) changes: Changes,
    /// Portcullis's endpoints and the feed's health; `None` for an in-process issuer, which
    /// pushes its keys and changes in and is never stale.
    remote: Option<Remote>,
}

impl std::fmt::Debug for Trust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let url = self.0.remote.as_ref().map_or("(in process)", |remote| &remote.settings.url);
        f.debug_struct("Trust").field("url", &url).finish_non_exhaustive()
    }
}

/// The feed's state, for a readiness route.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Readiness {
    /// `ok`, `degraded` (the feed is down; serving from what is known) or `unavailable` (down for
    /// longer than `max_staleness`: tokens are refused).
    pub status: &'static str,
    /// Whether the feed answers: its last request succeeded and no long poll is overdue.
    pub feed_connected: bool,
    /// Milliseconds since the feed last answered.
    pub staleness_ms: u64,
}

impl Trust {
    fn new(expected: Expected, remote: Option<Remote>) -> Trust {
        Trust(Arc::new(Inner {
            expected,
            keys: RwLock::new(Arc::new(KeySet::new())),
            verified: VerifiedTokens::default(),
            changes: Changes::default(),
            remote,
        }))
    }

    /// A trust fed in process by the test kit: `keys` verify, and changes arrive through
    /// [`Trust::changes`] rather than the feed.
    #[cfg(feature = "testing")]
    pub(crate) fn in_process(expected: Expected, keys: KeySet) -> Trust {
        let trust = Trust::new(expected, None);
        trust.set_keys(keys);
        trust
    }

    /// Verifies a token's signature and claims, refetching the JWKS once on an unknown `kid`.
    ///
    /// A client presents the same token on every request for its lifetime, and the Ed25519 check
    /// is most of a guard's cost; so a verified token's claims are kept ([`VerifiedTokens`],
    /// emptied when the key set changes) and only its time is checked again. The feed's checks
    /// run on every request.
    pub async fn verify(&self, token: &str) -> Result<AccessClaims, VerifyError> {
        if let Some((claims, until)) = self.0.verified.get(token) {
            core::check_time(&claims, until, &self.0.expected, now())?;
            return Ok(claims);
        }
        let mut keys = self.keys();
        let mut outcome = core::verify_signed(token, &*keys, &self.0.expected);
        if matches!(outcome, Err(VerifyError::UnknownKey)) && self.0.remote.is_some() {
            self.refresh_keys(&keys).await;
            keys = self.keys();
            outcome = core::verify_signed(token, &*keys, &self.0.expected);
        }
        let (claims, until) = outcome?;
        core::check_time(&claims, until, &self.0.expected, now())?;
        self.0.verified.insert(token, claims.clone(), until, || Arc::ptr_eq(&self.keys(), &keys));
        Ok(claims)
    }

    fn keys(&self) -> Arc<KeySet> {
        self.0.keys.read().map(|k| k.clone()).unwrap_or_default()
    }

    /// Puts `keys` in force. When the set differs from the one in force (a key came or left),
    /// every token is verified again: one whose key left the JWKS is refused from now on.
    fn set_keys(&self, keys: KeySet) {
        let changed = {
            let Ok(mut current) = self.0.keys.write() else { return };
            let changed = **current != keys;
            // A new `Arc` even for the same keys: callers waiting on a refetch see that it happened.
            *current = Arc::new(keys);
            changed
        };
        if changed {
            self.0.verified.clear();
        }
    }

    /// Whether the last JWKS refetch failed, so that a token signed with a key not seen yet
    /// cannot be judged (rather than be called invalid).
    pub fn keys_unreachable(&self) -> bool {
        self.0.remote.as_ref().is_some_and(Remote::keys_unreachable)
    }

    /// Whether tokens may be trusted now: the feed answered within `max_staleness` (always, for
    /// an in-process issuer).
    pub fn fresh_enough(&self) -> bool {
        self.0.remote.as_ref().is_none_or(Remote::fresh_enough)
    }

    /// The feed's state now. The feed counts as connected while its last request succeeded and a
    /// long poll has answered within its wait (plus a little): a Portcullis that hangs shows as
    /// `degraded` once its poll is overdue, not only when the request finally fails. An
    /// in-process issuer is always `ok`.
    pub fn readiness(&self) -> Readiness {
        match &self.0.remote {
            Some(remote) => remote.readiness(),
            None => Readiness { status: "ok", feed_connected: true, staleness_ms: 0 },
        }
    }

    /// The in-memory view of the feed.
    pub fn changes(&self) -> &Changes {
        &self.0.changes
    }
}
