//! The WebAuthn relying party (`auth.webauthn_rp_id`, `auth.webauthn_origins`): the id passkeys
//! are bound to and the origins whose pages may use them (WebAuthn Level 2 §5.1.3, §7.1 step 9).
//!
//! By default both come from the issuer: its host is the relying party id and its origin the one
//! allowed origin. Browsers refuse an IP address as relying party id (§5.1.3, "the RP ID must be
//! a valid domain string"), so a service whose issuer is an IP address starts, and its passkey
//! endpoints answer 503 naming `auth.webauthn_rp_id` (docs/passkeys.md).

use std::net::IpAddr;

use url::Url;

use super::AuthConfig;

/// The relying party: its id and the origins allowed to use it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelyingParty {
    pub id: String,
    pub origins: Vec<Url>,
}

/// Why the relying party cannot be used: the configuration key and the problem.
pub type Problem = (&'static str, String);

/// `https://host[:port]` of `url`, without a path: what a browser's `origin` says.
fn origin_of(url: &Url) -> Option<Url> {
    Url::parse(&url.origin().ascii_serialization()).ok()
}

/// Whether `host` is `rp_id` or a subdomain of it (WebAuthn §5.1.3: a registrable domain suffix).
fn within(host: &str, rp_id: &str) -> bool {
    host == rp_id || host.ends_with(&format!(".{rp_id}"))
}

impl AuthConfig {
    /// The relying party of this configuration: `Err` names the key that is wrong. Start-up
    /// checks it ([`check`]); an IP address as id is the one problem it tolerates.
    pub fn relying_party(&self) -> Result<RelyingParty, Problem> {
        let issuer = Url::parse(&self.issuer).map_err(|e| ("auth.issuer", e.to_string()))?;
        let (id, id_key) = match &self.webauthn_rp_id {
            Some(id) => (id.trim().to_ascii_lowercase(), "auth.webauthn_rp_id"),
            None => (issuer.host_str().unwrap_or_default().to_owned(), "auth.issuer"),
        };
        let bare = id.trim_start_matches('[').trim_end_matches(']');
        if bare.parse::<IpAddr>().is_ok() {
            return Err((
                "auth.webauthn_rp_id",
                format!(
                    "{id:?} (from {id_key}) is an IP address, which browsers refuse as relying party id: \
                    set auth.webauthn_rp_id to a domain (for local use, run with the issuer http://localhost:<port>)"
                ),
            ));
        }
        if id.is_empty() || id.contains(['/', ':', ' ']) {
            return Err(("auth.webauthn_rp_id", format!("{id:?} is not a domain name")));
        }
        let mut origins = vec![];
        if self.webauthn_origins.is_empty() {
            origins.extend(origin_of(&issuer));
        }
        for (i, origin) in self.webauthn_origins.iter().enumerate() {
            let parsed = Url::parse(origin).ok().filter(|u| matches!(u.scheme(), "https" | "http") && u.path() == "/");
            let parsed = parsed.and_then(|u| origin_of(&u)).ok_or((
                "auth.webauthn_origins",
                format!("[{i}] {origin:?} must be an origin: https://host[:port], without a path"),
            ))?;
            origins.push(parsed);
        }
        for origin in &origins {
            let host = origin.host_str().unwrap_or_default();
            if !within(host, &id) {
                let key =
                    if self.webauthn_origins.is_empty() { "auth.webauthn_rp_id" } else { "auth.webauthn_origins" };
                return Err((key, format!("the origin {} is not within the relying party id {id:?}", origin.as_str())));
            }
            if origin.scheme() == "http" && host != "localhost" && !host.ends_with(".localhost") {
                return Err((
                    "auth.webauthn_origins",
                    format!("{}: browsers allow passkeys over http only on localhost", origin.as_str()),
                ));
            }
        }
        Ok(RelyingParty { id, origins })
    }
}

/// Start-up check: any problem but an IP-address id (the default of an IP issuer) is fatal.
pub fn check(config: &AuthConfig) -> Result<(), Problem> {
    match config.relying_party() {
        Err(problem) if config.webauthn_rp_id.is_none() && config.webauthn_origins.is_empty() => {
            // Derived from a valid issuer: only an IP host can be wrong, and that only turns
            // passkeys off.
            let _ = problem;
            Ok(())
        }
        Err(problem) => Err(problem),
        Ok(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(issuer: &str, rp_id: Option<&str>, origins: &[&str]) -> AuthConfig {
        AuthConfig {
            issuer: issuer.into(),
            webauthn_rp_id: rp_id.map(Into::into),
            webauthn_origins: origins.iter().map(|o| o.to_string()).collect(),
            ..AuthConfig::default()
        }
    }

    #[test]
    fn the_issuer_gives_the_id_and_the_origin() {
        let rp = config("https://auth.example.com/tenant", None, &[]).relying_party().unwrap();
        assert_eq!(rp.id, "auth.example.com");
        assert_eq!(rp.origins[0].as_str(), "https://auth.example.com/");
    }

    #[test]
    fn an_ip_address_turns_passkeys_off_but_starts() {
        let c = config("http://127.0.0.1:8000", None, &[]);
        assert_eq!(c.relying_party().unwrap_err().0, "auth.webauthn_rp_id");
        assert!(check(&c).is_ok());
    }

    #[test]
    fn overrides_are_checked_naming_their_key() {
        let c = config("https://auth.example.com", Some("example.com"), &["https://app.example.com"]);
        assert_eq!(c.relying_party().unwrap().id, "example.com");
        let c = config("https://auth.example.com", Some("example.com"), &["https://evil.test"]);
        assert_eq!(check(&c).unwrap_err().0, "auth.webauthn_origins");
        let c = config("https://auth.example.com", Some("other.org"), &[]);
        assert_eq!(check(&c).unwrap_err().0, "auth.webauthn_rp_id");
        let c = config("https://auth.example.com", None, &["not a url"]);
        assert_eq!(check(&c).unwrap_err().0, "auth.webauthn_origins");
    }
}
