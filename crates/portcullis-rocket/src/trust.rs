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
    token: Mutex<Option<(String, Instant)>>,
}

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
    /// Whether the last feed request succeeded.
    pub feed_connected: bool,
    /// Milliseconds since the feed last answered.
    pub staleness_ms: u64,
}

impl Trust {
    /// Loads the metadata, the JWKS and the feed's snapshot; errors name what failed.
    pub async fn connect(settings: Settings) -> Result<(Trust, i64), String> {
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
            token: Mutex::new(None),
            settings,
        };
        let trust = Trust(Arc::new(inner));
        trust.fetch_keys().await?;
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
        if let Err(e) = self.fetch_keys().await {
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

    /// Whether tokens may be trusted now: the feed answered within `max_staleness`.
    pub fn fresh_enough(&self) -> bool {
        self.staleness() <= Duration::from_secs(self.0.settings.max_staleness)
    }

    fn staleness(&self) -> Duration {
        self.0.last_feed_answer.lock().map(|t| t.elapsed()).unwrap_or(Duration::MAX)
    }

    /// The feed's state now.
    pub fn readiness(&self) -> Readiness {
        let feed_connected = self.0.feed_up.load(Ordering::Relaxed);
        let status = match (feed_connected, self.fresh_enough()) {
            (_, false) => "unavailable",
            (false, true) => "degraded",
            (true, true) => "ok",
        };
        Readiness { status, feed_connected, staleness_ms: self.staleness().as_millis() as u64 }
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

    /// A client-credentials token for the feed, reused until a minute before it expires.
    async fn client_token(&self) -> Result<String, String> {
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
            return Err(format!("portcullis: the client-credentials grant answered {}", response.status()));
        }
        let body: Value = response.json().await.map_err(|e| format!("portcullis: token endpoint: {e}"))?;
        let token = body["access_token"].as_str().ok_or("portcullis: no access_token")?.to_owned();
        let lifetime = body["expires_in"].as_u64().unwrap_or(60).saturating_sub(60).max(1);
        if let Ok(mut slot) = self.0.token.lock() {
            *slot = Some((token.clone(), Instant::now() + Duration::from_secs(lifetime)));
        }
        Ok(token)
    }

    async fn fetch_changes(&self, cursor: Option<i64>, wait: u64) -> Result<FeedAnswer, String> {
        let token = self.client_token().await?;
        let mut request = self.0.http.get(&self.0.feed_url).bearer_auth(token).query(&[("wait", wait)]);
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
            return Err(format!("portcullis: the change feed answered {}", response.status()));
        }
        response.json().await.map_err(|e| format!("portcullis: change feed: {e}"))
    }

    /// Follows the feed from `cursor` until `shutdown`: long-polls of at most a third of
    /// `max_staleness` (so a healthy feed never looks stale), retrying every 250 ms when down.
    pub async fn follow(self, mut cursor: i64, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let wait = (self.0.settings.max_staleness / 3).clamp(1, 25);
        loop {
            let outcome = tokio::select! {
                _ = &mut shutdown => return,
                outcome = self.fetch_changes(Some(cursor), wait) => outcome,
            };
            match outcome {
                Ok(answer) => {
                    cursor = answer.cursor;
                    self.took(answer);
                }
                Err(e) => {
                    if self.0.feed_up.swap(false, Ordering::Relaxed) {
                        rocket::warn!("{e}; serving from what is known");
                    }
                    tokio::select! {
                        _ = &mut shutdown => return,
                        _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                    }
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
