//! The resource server's configuration, `[default.portcullis]` in `Rocket.toml` (or any figment
//! source), read by the fairing at ignite.

use serde::Deserialize;

/// `[default.portcullis]`.
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    /// Portcullis's base URL, e.g. `http://127.0.0.1:8000`.
    pub url: String,
    /// The `aud` tokens must carry: this service's own resource identifier, an absolute URI such
    /// as `https://reports.example`, one per service. List it in Portcullis's `auth.resources`
    /// and have clients request tokens with `resource=<it>` (RFC 8707); Portcullis then refuses
    /// those tokens, so this service cannot replay what it receives. The default, `portcullis`
    /// (Portcullis's `auth.audience`), accepts the very tokens Portcullis accepts: any service
    /// configured so can replay them against Portcullis and every other such service.
    #[serde(default = "default_audience")]
    pub audience: String,
    /// This service's client credentials (a Portcullis service client holding `feed:read`).
    pub client_id: String,
    pub client_secret: String,
    /// Seconds of clock skew tolerated on `exp`.
    #[serde(default)]
    pub leeway: i64,
    /// Seconds the guards keep serving from what they know while the feed is unreachable; then
    /// they answer 503 `unavailable`.
    #[serde(default = "default_max_staleness")]
    pub max_staleness: u64,
    /// Least milliseconds between two JWKS fetches caused by unknown `kid`s (a request with an
    /// unknown `kid` waits at most this long for the next fetch).
    #[serde(default = "default_jwks_interval")]
    pub jwks_min_interval_ms: u64,
    /// Seconds between two JWKS fetches when no unknown `kid` asks for one, at least 1: a key
    /// that left Portcullis's JWKS (a retired key whose tokens have all expired) stops verifying
    /// here within this time (Portcullis's docs/services.md, "Keys at rest").
    #[serde(default = "default_jwks_refresh_interval")]
    pub jwks_refresh_interval: u64,
    /// Seconds to keep trying to reach Portcullis at start-up before the app gives up.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout: u64,
}

fn default_connect_timeout() -> u64 {
    30
}

fn default_audience() -> String {
    "portcullis".into()
}
fn default_max_staleness() -> u64 {
    60
}
fn default_jwks_interval() -> u64 {
    1000
}
fn default_jwks_refresh_interval() -> u64 {
    300
}
