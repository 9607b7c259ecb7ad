//! Which web origins may call the token, revocation, userinfo and introspection endpoints from
//! a browser (contract, "Cross-origin"; the Fetch standard's CORS protocol): the origins of the
//! redirect URIs registered for enabled clients — the pages a code can be sent to are the pages
//! that exchange it. A loopback `http` redirect URI admits its host on any port, as the
//! authorization endpoint does (RFC 8252 §7.3); private-use schemes of native apps have no web
//! origin. Read from the clients' rows at each cross-origin request, so a new or changed client
//! applies at once.

use url::Url;

use crate::auth::Auth;
use crate::config::issuer::is_loopback;
use crate::db::DbConn;
use crate::error::ApiResult;
use crate::models::ClientStore;

/// Whether the redirect URI `registered` admits the web origin `origin` (as browsers send it:
/// scheme, host and a non-default port).
fn admits(registered: &Url, origin: &Url) -> bool {
    if !matches!(registered.scheme(), "https" | "http") {
        return false;
    }
    if registered.scheme() == "http" && is_loopback(registered) {
        return origin.scheme() == "http" && origin.host() == registered.host();
    }
    registered.origin() == origin.origin()
}

impl Auth {
    /// Whether `origin` (an `Origin` header) is the origin of a registered redirect URI.
    pub async fn cors_allows(&self, conn: &mut DbConn, origin: &str) -> ApiResult<bool> {
        let Ok(parsed) = Url::parse(origin) else { return Ok(false) };
        // An origin is serialized as scheme, host and non-default port only (RFC 6454 §6.2):
        // anything else (a path, `null`, a default port spelled out) is no origin of ours.
        if parsed.origin().ascii_serialization() != origin {
            return Ok(false);
        }
        let lists = crate::db::with_conn!(conn, |c| c.enabled_redirect_uris().await)?;
        Ok(lists
            .iter()
            .flat_map(|list| serde_json::from_str::<Vec<String>>(list).unwrap_or_default())
            .filter_map(|uri| Url::parse(&uri).ok())
            .any(|registered| admits(&registered, &parsed)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn a_redirect_uri_admits_its_own_origin_and_loopback_http_any_port() {
        let app = url("https://app.example.com/callback");
        assert!(admits(&app, &url("https://app.example.com")));
        assert!(!admits(&app, &url("https://app.example.com:8443")));
        assert!(!admits(&app, &url("http://app.example.com")));
        assert!(!admits(&app, &url("https://evil.example.com")));
        let native = url("http://127.0.0.1/cb");
        assert!(admits(&native, &url("http://127.0.0.1:53211")));
        assert!(!admits(&native, &url("http://localhost:53211")));
        assert!(!admits(&url("com.example.app:/cb"), &url("https://app.example.com")));
    }
}
