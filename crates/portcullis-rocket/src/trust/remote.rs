//! Trust in a running Portcullis: its metadata and JWKS (refetched on an unknown `kid` and every
//! `jwks_refresh_interval`, rate-limited, keeping the last good keys when a fetch fails) and the
//! change feed client (long-poll with a cursor; a reconnect resumes where it left off).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{now, Trust};
use crate::changes::FeedAnswer;
use crate::core::{self, Expected, KeySet};
use crate::settings::Settings;

/// Extra seconds a long poll may take beyond its `wait` before the feed counts as not answering.
const POLL_SLACK: u64 = 3;

/// Portcullis's endpoints, this service's client token and the feed's health.
pub(crate) struct Remote {
    pub(crate) settings: Settings,
    http: reqwest::Client,
    jwks_uri: String,
    token_endpoint: String,
    feed_url: String,
    last_jwks_fetch: tokio::sync::Mutex<Instant>,
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

impl Remote {
    pub(super) fn keys_unreachable(&self) -> bool {
        self.keys_unreachable.load(Ordering::Relaxed)
    }

    /// The seconds a feed request waits for changes: a third of `max_staleness` (so a healthy
    /// feed never looks stale), 1 to 25.
    fn poll_wait(&self) -> u64 {
        (self.settings.max_staleness / 3).clamp(1, 25)
    }

    pub(super) fn fresh_enough(&self) -> bool {
        self.staleness() <= Duration::from_secs(self.settings.max_staleness)
    }

    fn staleness(&self) -> Duration {
        self.last_feed_answer.lock().map(|t| t.elapsed()).unwrap_or(Duration::MAX)
    }

    pub(super) fn readiness(&self) -> super::Readiness {
        let staleness = self.staleness();
        let overdue = staleness > Duration::from_secs(self.poll_wait() + POLL_SLACK);
        let feed_connected = self.feed_up.load(Ordering::Relaxed) && !overdue;
        let status = match (feed_connected, self.fresh_enough()) {
            (_, false) => "unavailable",
            (false, true) => "degraded",
            (true, true) => "ok",
        };
        super::Readiness { status, feed_connected, staleness_ms: staleness.as_millis() as u64 }
    }
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
        let issuer = field("issuer")?;
        // The metadata names its endpoints under the issuer, the URL clients use; this service
        // may reach Portcullis at another (`url`, e.g. an internal address), so endpoints are
        // reached under `url`. An endpoint elsewhere is refused: the client secret goes only to
        // the configured `url`, whatever a metadata document says.
        let reachable = |name: &str| -> Result<String, ConnectError> {
            let endpoint = field(name)?;
            match endpoint.strip_prefix(issuer.as_str()) {
                Some(path) if path.starts_with('/') => Ok(format!("{base}{path}")),
                _ => Err(ConnectError::Refused(format!(
                    "portcullis: the metadata's {name} ({endpoint}) is not under its issuer ({issuer}); \
                     only the configured url is used"
                ))),
            }
        };
        let (jwks_uri, token_endpoint) = (reachable("jwks_uri")?, reachable("token_endpoint")?);
        let expected = Expected { issuer, audience: settings.audience.clone(), leeway: settings.leeway };
        let remote = Remote {
            jwks_uri,
            token_endpoint,
            feed_url: format!("{base}/feed/changes"),
            http,
            last_jwks_fetch: tokio::sync::Mutex::new(Instant::now()),
            last_feed_answer: Mutex::new(Instant::now()),
            feed_up: AtomicBool::new(false),
            keys_unreachable: AtomicBool::new(false),
            token: Mutex::new(None),
            settings,
        };
        let trust = Trust::new(expected, Some(remote));
        trust.fetch_keys().await?;
        trust.client_token().await?;
        let answer = trust.fetch_changes(None, 0).await?;
        let cursor = answer.cursor;
        trust.took(answer);
        Ok((trust, cursor))
    }

    /// The remote part; only a trust built by [`Trust::connect`] calls what needs it.
    fn remote(&self) -> &Remote {
        self.0.remote.as_ref().expect("a trust that follows Portcullis has its endpoints")
    }

    /// Refetches the JWKS, at most once per `jwks_min_interval_ms`: a request that finds the
    /// last fetch too recent waits for the next one rather than being refused (a rotation right
    /// after a fetch must not fail requests). Concurrent callers share one fetch: once the keys
    /// changed from those the caller `saw`, it returns. A failed fetch keeps the keys known.
    pub(super) async fn refresh_keys(&self, saw: &Arc<KeySet>) {
        let remote = self.remote();
        let mut last = remote.last_jwks_fetch.lock().await;
        if !Arc::ptr_eq(&self.keys(), saw) {
            return;
        }
        let interval = Duration::from_millis(remote.settings.jwks_min_interval_ms);
        if let Some(early) = interval.checked_sub(last.elapsed()) {
            tokio::time::sleep(early).await;
        }
        *last = Instant::now();
        let fetched = self.fetch_keys().await;
        remote.keys_unreachable.store(fetched.is_err(), Ordering::Relaxed);
        if let Err(e) = fetched {
            rocket::warn!("portcullis: JWKS refresh failed, keeping the last good keys: {e}");
        }
    }

    async fn fetch_keys(&self) -> Result<(), String> {
        let remote = self.remote();
        let document = get_json(&remote.http, &remote.jwks_uri).await?;
        self.set_keys(core::parse_jwks(&document));
        Ok(())
    }

    fn took(&self, answer: FeedAnswer) {
        self.0.changes.apply(answer, now());
        let remote = self.remote();
        if let Ok(mut last) = remote.last_feed_answer.lock() {
            *last = Instant::now();
        }
        remote.feed_up.store(true, Ordering::Relaxed);
    }

    /// A client-credentials token for the feed, reused until a minute before it expires. A
    /// 400 or 401 answer (unknown client, wrong secret) is [`ConnectError::Refused`].
    async fn client_token(&self) -> Result<String, ConnectError> {
        let remote = self.remote();
        let cached = remote.token.lock().ok().and_then(|t| t.clone());
        if let Some((token, _)) = cached.filter(|(_, until)| Instant::now() < *until) {
            return Ok(token);
        }
        let settings = &remote.settings;
        let response = remote
            .http
            .post(&remote.token_endpoint)
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
        if let Ok(mut slot) = remote.token.lock() {
            *slot = Some((token.clone(), Instant::now() + Duration::from_secs(lifetime)));
        }
        Ok(token)
    }

    async fn fetch_changes(&self, cursor: Option<i64>, wait: u64) -> Result<FeedAnswer, ConnectError> {
        let token = self.client_token().await?;
        let remote = self.remote();
        // A Portcullis that hangs fails the request soon after the poll should have answered.
        let timeout = Duration::from_secs(wait + POLL_SLACK);
        let mut request =
            remote.http.get(&remote.feed_url).bearer_auth(token).query(&[("wait", wait)]).timeout(timeout);
        if let Some(cursor) = cursor {
            request = request.query(&[("cursor", cursor)]);
        }
        let response = request.send().await.map_err(|e| format!("portcullis: change feed: {e}"))?;
        if response.status() == reqwest::StatusCode::UNAUTHORIZED {
            if let Ok(mut slot) = remote.token.lock() {
                *slot = None;
            }
        }
        if !response.status().is_success() {
            return Err(format!("portcullis: the change feed answered {}", response.status()).into());
        }
        Ok(response.json().await.map_err(|e| format!("portcullis: change feed: {e}"))?)
    }

    /// Follows the feed from `cursor` until `shutdown`, and refetches the JWKS every
    /// `jwks_refresh_interval` seconds meanwhile ([`Trust::refresh_keys_periodically`]). A trust
    /// fed in process has neither: it returns at once.
    pub async fn follow(self, cursor: i64, shutdown: impl std::future::Future<Output = ()>) {
        if self.0.remote.is_none() {
            return;
        }
        tokio::select! {
            _ = shutdown => {}
            _ = self.follow_feed(cursor) => {}
            _ = self.refresh_keys_periodically() => {}
        }
    }

    /// The feed, with long polls of a third of `max_staleness` (1 to 25 s). After a failure the
    /// next request asks for an immediate answer, so the feed is up again as soon as Portcullis
    /// answers (not at the end of a long poll); failures are retried after 250 ms, and a refused
    /// client secret backs off to 5 s (it must not get the client throttled).
    async fn follow_feed(&self, mut cursor: i64) {
        let remote = self.remote();
        let mut wait = remote.poll_wait();
        let mut pause = Duration::from_millis(250);
        loop {
            match self.fetch_changes(Some(cursor), wait).await {
                Ok(answer) => {
                    cursor = answer.cursor;
                    self.took(answer);
                    (wait, pause) = (remote.poll_wait(), Duration::from_millis(250));
                }
                Err(e) => {
                    if remote.feed_up.swap(false, Ordering::Relaxed) {
                        rocket::warn!("{e}; serving from what is known");
                    }
                    tokio::time::sleep(pause).await;
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

    /// Refetches the JWKS every `jwks_refresh_interval` seconds, as an unknown `kid` would (same
    /// rate limit). Without it a key Portcullis stopped publishing — a retired key, once every
    /// token it signed has expired — would keep verifying here, and a token it signed that is
    /// still cached would keep passing; the refetch drops the key and, the set having changed,
    /// empties the cache, so such a token is refused from then on.
    async fn refresh_keys_periodically(&self) {
        let period = Duration::from_secs(self.remote().settings.jwks_refresh_interval.max(1));
        loop {
            tokio::time::sleep(period).await;
            self.refresh_keys(&self.keys()).await;
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
