//! The resource server's source of trust: Portcullis's metadata and JWKS (refetched on an unknown
//! `kid`, rate-limited, keeping the last good keys when a fetch fails) and the change feed client
//! (long-poll with a cursor; a reconnect resumes where it left off).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::changes::{Changes, FeedAnswer};
use crate::core::{self, AccessClaims, Expected, KeySet, VerifyError};
use crate::settings::Settings;

/// Verified tokens kept at most.
const VERIFIED_CAPACITY: usize = 4096;

/// Seconds since the epoch.
pub fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// What the fairing manages: `&State<Trust>` in handlers, e.g. for [`Trust::readiness`].
#[derive(Clone)]
pub struct Trust(pub(crate) Arc<Inner>);

pub(crate) struct Inner {
    pub(crate) settings: Settings,
    pub(crate) expected: Expected,
    http: reqwest::Client,
    jwks_uri: String,
    token_endpoint: String,
    feed_url: String,
    keys: RwLock<Arc<KeySet>>,
    /// Tokens whose signature and claims verified with the current keys (see [`Trust::verify`]).
    verified: RwLock<HashMap<Box<str>, AccessClaims>>,
    last_jwks_fetch: tokio::sync::Mutex<Instant>,
    pub(crate) changes: Changes,
    last_feed_answer: Mutex<Instant>,
    feed_up: AtomicBool,
    /// Whether the last JWKS fetch failed: a token with an unknown `kid` cannot be judged then.
    keys_unreachable: AtomicBool,
    token: Mutex<Option<(String, Instant)>>,
}

/// Why [`Trust::connect`] failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectError {
    /// Portcullis could not be reached or answered with an error that may pass: worth retrying.
    Unreachable(String),
    /// Portcullis refused this service's client credentials: retrying would only get the client
    /// throttled (and its correctly configured replicas with it).
    Refused(String),
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectError::Unreachable(e) | ConnectError::Refused(e) => f.write_str(e),
        }
    }
}

impl From<String> for ConnectError {
    fn from(e: String) -> Self {
        ConnectError::Unreachable(e)
    }
}

/// Extra seconds a long poll may take beyond its `wait` before the feed counts as not answering.
const POLL_SLACK: u64 = 3;

impl std::fmt::Debug for Trust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trust").field("url", &self.0.settings.url).finish_non_exhaustive()
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
    /// Loads the metadata, the JWKS and the feed's snapshot; errors name what failed.
    pub async fn connect(settings: Settings) -> Result<(Trust, i64), ConnectError> {
        let base = settings.url.trim_end_matches('/').to_owned();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| format!("portcullis: HTTP client: {e}"))?;
        let metadata: Value = get_json(&http, &format!("{base}/.well-known/oauth-authorization-server")).await?;
        let field = |name: &str| {
            metadata[name].as_str().map(str::to_owned).ok_or(format!("portcullis: the metadata has no {name}"))
        };
        let expected =
            Expected { issuer: field("issuer")?, audience: settings.audience.clone(), leeway: settings.leeway };
        let inner = Inner {
            expected,
            jwks_uri: field("jwks_uri")?,
            token_endpoint: field("token_endpoint")?,
            feed_url: format!("{base}/feed/changes"),
            http,
            keys: RwLock::new(Arc::new(KeySet::new())),
            verified: RwLock::default(),
            last_jwks_fetch: tokio::sync::Mutex::new(Instant::now()),
            changes: Changes::default(),
            last_feed_answer: Mutex::new(Instant::now()),
            feed_up: AtomicBool::new(false),
            keys_unreachable: AtomicBool::new(false),
            token: Mutex::new(None),
            settings,
        };
        let trust = Trust(Arc::new(inner));
        trust.fetch_keys().await?;
        trust.client_token().await?;
        let answer = trust.fetch_changes(None, 0).await?;
        let cursor = answer.cursor;
        trust.took(answer);
        Ok((trust, cursor))
    }

    /// Verifies a token's signature and claims, refetching the JWKS once on an unknown `kid`.
    ///
    /// A client presents the same token on every request for its lifetime, and the Ed25519 check
    /// is most of a guard's cost; so a verified token's claims are kept (bounded, emptied when the
    /// keys change) and only its time is checked again. The feed's checks run on every request.
    pub async fn verify(&self, token: &str) -> Result<AccessClaims, VerifyError> {
        let cached = self.0.verified.read().ok().and_then(|v| v.get(token).cloned());
        if let Some(claims) = cached {
            core::check_time(&claims, None, &self.0.expected, now())?;
            return Ok(claims);
        }
        let keys = self.keys();
        let claims = match core::verify(token, &*keys, &self.0.expected, now()) {
            Err(VerifyError::UnknownKey) => {
                self.refresh_keys(&keys).await;
                core::verify(token, &*self.keys(), &self.0.expected, now())
            }
            outcome => outcome,
        }?;
        if let Ok(mut verified) = self.0.verified.write() {
            if verified.len() >= VERIFIED_CAPACITY {
                verified.clear();
            }
            verified.insert(token.into(), claims.clone());
        }
        Ok(claims)
    }

    fn keys(&self) -> Arc<KeySet> {
        self.0.keys.read().map(|k| k.clone()).unwrap_or_default()
    }

    /// Refetches the JWKS, at most once per `jwks_min_interval_ms`: a request that finds the
    /// last fetch too recent waits for the next one rather than being refused (a rotation right
    /// after a fetch must not fail requests). Concurrent callers share one fetch: once the keys
    /// changed from those the caller `saw`, it returns. A failed fetch keeps the keys known.
    async fn refresh_keys(&self, saw: &Arc<KeySet>) {
        let mut last = self.0.last_jwks_fetch.lock().await;
        if !Arc::ptr_eq(&self.keys(), saw) {
            return;
        }
        let interval = Duration::from_millis(self.0.settings.jwks_min_interval_ms);
        if let Some(early) = interval.checked_sub(last.elapsed()) {
            tokio::time::sleep(early).await;
        }
        *last = Instant::now();
        let fetched = self.fetch_keys().await;
        self.0.keys_unreachable.store(fetched.is_err(), Ordering::Relaxed);
        if let Err(e) = fetched {
            rocket::warn!("portcullis: JWKS refresh failed, keeping the last good keys: {e}");
        }
    }

    async fn fetch_keys(&self) -> Result<(), String> {
        let document = get_json(&self.0.http, &self.0.jwks_uri).await?;
        let keys = core::parse_jwks(&document);
        if let Ok(mut current) = self.0.keys.write() {
            *current = Arc::new(keys);
        }
        // A key may have left the set: verify every token again.
        if let Ok(mut verified) = self.0.verified.write() {
            verified.clear();
        }
        Ok(())
    }

    /// Whether the last JWKS refetch failed, so that a token signed with a key not seen yet
    /// cannot be judged (rather than be called invalid).
    pub fn keys_unreachable(&self) -> bool {
        self.0.keys_unreachable.load(Ordering::Relaxed)
    }

    /// The seconds a feed request waits for changes: a third of `max_staleness` (so a healthy
    /// feed never looks stale), 1 to 25.
    fn poll_wait(&self) -> u64 {
        (self.0.settings.max_staleness / 3).clamp(1, 25)
    }

    /// Whether tokens may be trusted now: the feed answered within `max_staleness`.
    pub fn fresh_enough(&self) -> bool {
        self.staleness() <= Duration::from_secs(self.0.settings.max_staleness)
    }

    fn staleness(&self) -> Duration {
        self.0.last_feed_answer.lock().map(|t| t.elapsed()).unwrap_or(Duration::MAX)
    }

    /// The feed's state now. The feed counts as connected while its last request succeeded and a
    /// long poll has answered within its wait (plus a little): a Portcullis that hangs shows as
    /// `degraded` once its poll is overdue, not only when the request finally fails.
    pub fn readiness(&self) -> Readiness {
        let staleness = self.staleness();
        let overdue = staleness > Duration::from_secs(self.poll_wait() + POLL_SLACK);
        let feed_connected = self.0.feed_up.load(Ordering::Relaxed) && !overdue;
        let status = match (feed_connected, self.fresh_enough()) {
            (_, false) => "unavailable",
            (false, true) => "degraded",
            (true, true) => "ok",
        };
        Readiness { status, feed_connected, staleness_ms: staleness.as_millis() as u64 }
    }

    /// The in-memory view of the feed.
    pub fn changes(&self) -> &Changes {
        &self.0.changes
    }

    fn took(&self, answer: FeedAnswer) {
        self.0.changes.apply(answer, now());
        if let Ok(mut last) = self.0.last_feed_answer.lock() {
            *last = Instant::now();
        }
        self.0.feed_up.store(true, Ordering::Relaxed);
    }

    /// A client-credentials token for the feed, reused until a minute before it expires. A
    /// 400 or 401 answer (unknown client, wrong secret) is [`ConnectError::Refused`].
    async fn client_token(&self) -> Result<String, ConnectError> {
        let cached = self.0.token.lock().ok().and_then(|t| t.clone());
        if let Some((token, _)) = cached.filter(|(_, until)| Instant::now() < *until) {
            return Ok(token);
        }
        let settings = &self.0.settings;
        let response = self
            .0
            .http
            .post(&self.0.token_endpoint)
            .basic_auth(&settings.client_id, Some(&settings.client_secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .map_err(|e| format!("portcullis: token endpoint: {e}"))?;
        if !response.status().is_success() {
            let e = format!("portcullis: the client-credentials grant answered {}", response.status());
            let refused = matches!(response.status().as_u16(), 400 | 401);
            return Err(if refused { ConnectError::Refused(e) } else { ConnectError::Unreachable(e) });
        }
        let body: Value = response.json().await.map_err(|e| format!("portcullis: token endpoint: {e}"))?;
        let token = body["access_token"].as_str().ok_or_else(|| "portcullis: no access_token".to_owned())?.to_owned();
        let lifetime = body["expires_in"].as_u64().unwrap_or(60).saturating_sub(60).max(1);
        if let Ok(mut slot) = self.0.token.lock() {
            *slot = Some((token.clone(), Instant::now() + Duration::from_secs(lifetime)));
        }
        Ok(token)
    }

    async fn fetch_changes(&self, cursor: Option<i64>, wait: u64) -> Result<FeedAnswer, ConnectError> {
        let token = self.client_token().await?;
        // A Portcullis that hangs fails the request soon after the poll should have answered.
        let timeout = Duration::from_secs(wait + POLL_SLACK);
        let mut request =
            self.0.http.get(&self.0.feed_url).bearer_auth(token).query(&[("wait", wait)]).timeout(timeout);
        if let Some(cursor) = cursor {
            request = request.query(&[("cursor", cursor)]);
        }
        let response = request.send().await.map_err(|e| format!("portcullis: change feed: {e}"))?;
        if response.status() == reqwest::StatusCode::UNAUTHORIZED {
            if let Ok(mut slot) = self.0.token.lock() {
                *slot = None;
            }
        }
        if !response.status().is_success() {
            return Err(format!("portcullis: the change feed answered {}", response.status()).into());
        }
        Ok(response.json().await.map_err(|e| format!("portcullis: change feed: {e}"))?)
    }

    /// Follows the feed from `cursor` until `shutdown`, with long polls of [`poll_wait`]
    /// seconds. After a failure the next request asks for an immediate answer, so the feed is up
    /// again as soon as Portcullis answers (not at the end of a long poll); failures are retried
    /// after 250 ms, and a refused client secret backs off to 5 s (it must not get the client
    /// throttled).
    ///
    /// [`poll_wait`]: Self::poll_wait
    pub async fn follow(self, mut cursor: i64, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut wait = self.poll_wait();
        let mut pause = Duration::from_millis(250);
        loop {
            let outcome = tokio::select! {
                _ = &mut shutdown => return,
                outcome = self.fetch_changes(Some(cursor), wait) => outcome,
            };
            match outcome {
                Ok(answer) => {
                    cursor = answer.cursor;
                    self.took(answer);
                    (wait, pause) = (self.poll_wait(), Duration::from_millis(250));
                }
                Err(e) => {
                    if self.0.feed_up.swap(false, Ordering::Relaxed) {
                        rocket::warn!("{e}; serving from what is known");
                    }
                    tokio::select! {
                        _ = &mut shutdown => return,
                        _ = tokio::time::sleep(pause) => {}
                    }
                    // A refused secret backs off; an unreachable Portcullis is tried again soon, so
                    // the feed is back within 250 ms of Portcullis.
                    pause = match e {
                        ConnectError::Refused(_) => (pause * 2).min(Duration::from_secs(5)),
                        ConnectError::Unreachable(_) => Duration::from_millis(250),
                    };
                    wait = 0;
                }
            }
        }
    }
}

async fn get_json(http: &reqwest::Client, url: &str) -> Result<Value, String> {
    let response = http.get(url).send().await.map_err(|e| format!("portcullis: GET {url}: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("portcullis: GET {url} answered {}", response.status()));
    }
    response.json().await.map_err(|e| format!("portcullis: GET {url}: {e}"))
}
