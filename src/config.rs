//! Typed, validated configuration: the `[auth]` table of Rocket's figment.
//!
//! Read once at ignite ([`AuthConfig::from_figment`]) and handed down as managed state. Every
//! error names the key it is about, and a weak HS256 secret stops start-up.

pub mod issuer;
pub mod mail;
mod placeholders;
pub mod webauthn;

use placeholders::is_placeholder;

use std::fmt;

use rocket::figment::Figment;
use serde::Deserialize;

/// Whether anyone may create an account through `POST /auth/register`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Registration {
    Open,
    Closed,
}

/// A secret string that never shows in `Debug` output or logs.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself; call only where it is used as key material.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// One entry of `auth.eddsa_keys`: a private key (signs and verifies) or a public key
/// (verifies only), each a PEM file. Declared here, not in `auth::keys` which loads it, so that
/// configuration depends on nothing above it.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct EdKeyConfig {
    pub kid: String,
    pub private_key: Option<String>,
    pub public_key: Option<String>,
}

/// The `[auth]` table. Durations are whole seconds unless the name says otherwise.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// The base URL clients reach the service at (see [`issuer`]); by default
    /// `http://<address>:<port>` from Rocket's configuration.
    pub issuer: String,
    /// The name people see (authenticator apps); the issuer's host when absent.
    pub display_name: Option<String>,
    pub audience: String,
    /// Identifiers (absolute URIs) of resource servers a token may be requested for with
    /// `resource` (RFC 8707); such a token's `aud` is the resource, never `audience`.
    pub resources: Vec<String>,
    pub access_ttl: u64,
    pub refresh_ttl: u64,
    pub session_max_age: u64,
    /// How long a browser session of the hosted sign-in lives, in seconds (single sign-on;
    /// docs/browser-sign-in.md); never past `session_max_age`.
    pub browser_session_ttl: u64,
    pub reuse_grace: u64,
    pub registration: Registration,
    /// HS256 key; when absent a random key is generated once and kept in the database.
    pub secret: Option<Secret>,
    /// Ed25519 key files; when set, access tokens are signed with EdDSA (see `auth::keys`).
    pub eddsa_keys: Vec<EdKeyConfig>,
    /// Key-encryption key: generated private keys, the refresh-token key and TOTP secrets are
    /// sealed under it (`auth::keys::kek`). At least 32 bytes. Without it, SQLite uses a key
    /// generated into a file beside the database (`auth::keys::kek_file`); PostgreSQL stores
    /// them in clear and warns at start-up.
    pub key_encryption_key: Option<Secret>,
    /// Application permissions (`resource:action`) roles and clients may hold beyond the
    /// built-in catalogue.
    pub permissions: Vec<String>,
    /// The `kid` of the EdDSA key that signs; the first key when absent.
    pub active_kid: Option<String>,
    /// Whether `POST /oauth/token` accepts `grant_type=password` (RFC 9700 §2.4 discourages it).
    pub password_grant: bool,
    /// Version 2's base URL for the metadata document, replaced by `issuer`: accepted only to
    /// refuse it with a message saying so.
    pub public_url: Option<String>,
    /// Clock-skew tolerance when checking `exp` and `iat` of access tokens.
    pub leeway: u64,
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    pub argon2_parallelism: u32,
    /// Password hashes computed at once; more wait their turn. 0 means the number of cores.
    pub hash_concurrency: usize,
    /// Failed logins for one account from one client address within `throttle_account_window`
    /// before backoff starts for that address.
    #[serde(alias = "throttle_account_failures")]
    pub throttle_pair_failures: u32,
    /// Failed logins for one account from all addresses together within `throttle_account_window`
    /// before backoff starts for the account everywhere.
    pub throttle_account_total_failures: u32,
    pub throttle_account_window: u64,
    /// Failed logins from one client address within `throttle_address_window` before backoff.
    pub throttle_address_failures: u32,
    pub throttle_address_window: u64,
    /// The longest a throttled account or address has to wait (backoff doubles up to it).
    pub throttle_max_backoff: u64,
    /// Registration attempts accepted from one client address in an hour (429 beyond); 0 turns
    /// the limit off (see `auth::registration_limit`).
    pub registrations_per_address_per_hour: u32,
    /// How often other instances' revocations are read from the database, in milliseconds.
    pub revocation_poll_ms: u64,
    /// How often housekeeping deletes dead tokens and old sessions.
    pub housekeeping_interval: u64,
    /// How long ended sessions and their tokens are kept before housekeeping deletes them.
    pub retention: u64,
    /// Roles whose holders must have logged in with MFA (`otp` in `amr`) to use `/admin`.
    pub mfa_required_roles: Vec<String>,
    /// How long audit events are kept before housekeeping deletes them.
    pub audit_retention: u64,
    /// The most rows housekeeping deletes per write transaction (fewer while batches run long);
    /// it yields the writer between batches.
    pub housekeeping_batch: u64,
    /// Live sessions one user may hold; a login beyond it ends the least recently used one.
    pub max_sessions_per_user: u64,
    /// Login of an account whose address is not verified is 403 `email_unverified` (needs mail).
    pub require_verified_email: bool,
    /// Passkeys' relying party id and allowed origins; from the issuer when absent ([`webauthn`]).
    pub webauthn_rp_id: Option<String>,
    pub webauthn_origins: Vec<String>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            // What `issuer::default_for` gives for Rocket's default address and port.
            issuer: "http://127.0.0.1:8000".into(),
            display_name: None,
            audience: "portcullis".into(),
            resources: vec![],
            access_ttl: 900,
            refresh_ttl: 1_209_600,
            session_max_age: 2_592_000,
            browser_session_ttl: 86_400,
            reuse_grace: 10,
            registration: Registration::Open,
            secret: None,
            eddsa_keys: vec![],
            key_encryption_key: None,
            permissions: vec![],
            active_kid: None,
            password_grant: true,
            public_url: None,
            leeway: 0,
            argon2_memory_kib: 19_456,
            argon2_iterations: 2,
            argon2_parallelism: 1,
            hash_concurrency: 0,
            throttle_pair_failures: 5,
            throttle_account_total_failures: 50,
            throttle_account_window: 900,
            throttle_address_failures: 100,
            throttle_address_window: 60,
            throttle_max_backoff: 60,
            registrations_per_address_per_hour: 10,
            revocation_poll_ms: 250,
            housekeeping_interval: 3600,
            retention: 604_800,
            mfa_required_roles: vec![],
            audit_retention: 7_776_000,
            housekeeping_batch: 2000,
            max_sessions_per_user: 100,
            require_verified_email: false,
            webauthn_rp_id: None,
            webauthn_origins: vec![],
        }
    }
}

/// A configuration problem: the key and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub key: String,
    pub problem: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid configuration: {}: {}", self.key, self.problem)
    }
}

impl std::error::Error for ConfigError {}

fn problem(key: &str, problem: impl Into<String>) -> ConfigError {
    ConfigError { key: key.into(), problem: problem.into() }
}

/// Whether `name` has the form of a permission: `resource:action`, each part non-empty and made
/// of lower-case ASCII letters, digits, `_`, `-` and `.`.
pub fn is_permission_name(name: &str) -> bool {
    let part = |p: &str| {
        !p.is_empty()
            && p.len() <= 64
            && p.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_-.".contains(c))
    };
    name.split_once(':').is_some_and(|(resource, action)| part(resource) && part(action))
}

impl AuthConfig {
    /// Extracts `auth` from Rocket's figment (defaults for absent keys) and validates it.
    pub fn from_figment(figment: &Figment) -> Result<AuthConfig, ConfigError> {
        let mut config: AuthConfig = figment.focus("auth").extract().map_err(|e| {
            let key = std::iter::once("auth".to_string()).chain(e.path.iter().cloned());
            problem(&key.collect::<Vec<_>>().join("."), e.kind.to_string())
        })?;
        if figment.find_value("auth.issuer").is_err() {
            config.issuer = issuer::default_for(figment);
        }
        config.validate()?;
        Ok(config)
    }

    /// Checks ranges and the secret's strength.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let nonzero = [
            ("auth.access_ttl", self.access_ttl),
            ("auth.refresh_ttl", self.refresh_ttl),
            ("auth.session_max_age", self.session_max_age),
            ("auth.browser_session_ttl", self.browser_session_ttl),
            ("auth.throttle_pair_failures", self.throttle_pair_failures.into()),
            ("auth.throttle_account_total_failures", self.throttle_account_total_failures.into()),
            ("auth.throttle_account_window", self.throttle_account_window),
            ("auth.throttle_address_failures", self.throttle_address_failures.into()),
            ("auth.throttle_address_window", self.throttle_address_window),
            ("auth.throttle_max_backoff", self.throttle_max_backoff),
            ("auth.housekeeping_interval", self.housekeeping_interval),
            ("auth.audit_retention", self.audit_retention),
            ("auth.housekeeping_batch", self.housekeeping_batch),
            ("auth.max_sessions_per_user", self.max_sessions_per_user),
        ];
        if let Some((key, _)) = nonzero.iter().find(|(_, v)| *v == 0) {
            return Err(problem(key, "must be at least 1"));
        }
        issuer::check(&self.issuer).map_err(|e| problem("auth.issuer", e))?;
        webauthn::check(self).map_err(|(key, e)| problem(key, e))?;
        if self.display_name.as_ref().is_some_and(|n| n.trim().is_empty() || n.chars().any(char::is_control)) {
            return Err(problem("auth.display_name", "must be a non-empty name without control characters"));
        }
        if self.audience.trim().is_empty() {
            return Err(problem("auth.audience", "must not be empty"));
        }
        for (i, resource) in self.resources.iter().enumerate() {
            // RFC 8707 §2: an absolute URI (RFC 3986 §4.3, so no fragment) naming the resource.
            if rocket::http::uri::Absolute::parse(resource).is_err() || *resource == self.audience {
                return Err(problem(
                    &format!("auth.resources[{i}]"),
                    format!("{resource:?} must be an absolute URI without a fragment, other than auth.audience"),
                ));
            }
        }
        if !(10..=1000).contains(&self.revocation_poll_ms) {
            return Err(problem("auth.revocation_poll_ms", "must be between 10 and 1000"));
        }
        if self.mfa_required_roles.iter().any(|r| r.trim().is_empty()) {
            return Err(problem("auth.mfa_required_roles", "role names must not be empty"));
        }
        if self.reuse_grace > self.refresh_ttl {
            return Err(problem("auth.reuse_grace", "must not exceed auth.refresh_ttl"));
        }
        argon2::Params::new(self.argon2_memory_kib, self.argon2_iterations, self.argon2_parallelism, None)
            .map_err(|e| problem("auth.argon2_memory_kib", format!("invalid argon2 parameters: {e}")))?;
        let mut kids = std::collections::HashSet::new();
        for (i, key) in self.eddsa_keys.iter().enumerate() {
            if key.kid.trim().is_empty() || !kids.insert(key.kid.as_str()) {
                return Err(problem(&format!("auth.eddsa_keys[{i}].kid"), "must be non-empty and unique"));
            }
        }
        if let Some(kid) = &self.active_kid {
            if !kids.contains(kid.as_str()) {
                return Err(problem("auth.active_kid", format!("no key with kid {kid:?} in auth.eddsa_keys")));
            }
        }
        if self.public_url.is_some() {
            return Err(problem(
                "auth.public_url",
                "was replaced by auth.issuer in version 3: set auth.issuer to this URL, without a trailing slash",
            ));
        }
        if let Some(kek) = &self.key_encryption_key {
            if kek.expose().len() < 32 {
                return Err(problem("auth.key_encryption_key", "must be at least 32 bytes"));
            }
            if is_placeholder(kek.expose()) {
                return Err(problem("auth.key_encryption_key", "is a well-known placeholder; use a random key"));
            }
        }
        for (i, name) in self.permissions.iter().enumerate() {
            if !is_permission_name(name) {
                return Err(problem(
                    &format!("auth.permissions[{i}]"),
                    format!("{name:?} is not of the form resource:action (lower-case letters, digits, '_', '-', '.')"),
                ));
            }
        }
        if let Some(secret) = &self.secret {
            if secret.expose().len() < 32 {
                return Err(problem("auth.secret", "must be at least 32 bytes"));
            }
            if is_placeholder(secret.expose()) {
                return Err(problem("auth.secret", "is a well-known placeholder; use a random key"));
            }
        }
        Ok(())
    }

    /// Password hashes allowed in flight at once.
    pub fn hash_permits(&self) -> usize {
        match self.hash_concurrency {
            0 => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2),
            n => n,
        }
    }
}
