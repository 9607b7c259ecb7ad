//! The issuer (`auth.issuer`): the base URL clients reach the service at. It is the `iss` of every
//! token and the `issuer` of the metadata documents, which strict OAuth 2.0 and OpenID Connect
//! clients compare with the URL they discovered character for character (RFC 8414 §3.3, OpenID
//! Connect Discovery §4.3). Hence the rules below: one spelling only (the URL's normal form, no
//! trailing slash), no query or fragment (RFC 8414 §2), and `https` except on loopback hosts,
//! where plain `http` cannot leave the machine (docs/configuration.md, "The issuer").

use std::net::{IpAddr, Ipv4Addr};

use rocket::figment::Figment;
use url::{Host, Url};

use super::AuthConfig;

/// Rocket's own defaults, for a figment that names no address or port.
const DEFAULT_PORT: u16 = 8000;

/// The issuer when none is configured: `http://<address>:<port>` from Rocket's configuration,
/// with `127.0.0.1` standing for an unspecified address (`0.0.0.0`, `::`) and IPv6 addresses in
/// brackets (RFC 3986 §3.2.2).
pub fn default_for(figment: &Figment) -> String {
    let address = figment.extract_inner::<IpAddr>("address").unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let port = figment.extract_inner::<u16>("port").unwrap_or(DEFAULT_PORT);
    match address {
        address if address.is_unspecified() => format!("http://127.0.0.1:{port}"),
        IpAddr::V4(v4) => format!("http://{v4}:{port}"),
        IpAddr::V6(v6) => format!("http://[{v6}]:{port}"),
    }
}

/// Why `issuer` cannot be the issuer, as a sentence for the start-up error; `Ok` when it can.
pub fn check(issuer: &str) -> Result<(), String> {
    let url = Url::parse(issuer).map_err(|e| format!("{issuer:?} is not an absolute URL ({e})"))?;
    if url.scheme() != "https" && url.scheme() != "http" {
        return Err(format!("{issuer:?} must be an https URL (http only on a loopback host)"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("{issuer:?} must have no query and no fragment (RFC 8414 §2)"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("{issuer:?} must not carry user information"));
    }
    if issuer.ends_with('/') {
        return Err(format!("{issuer:?} must not end with a slash: write {:?}", issuer.trim_end_matches('/')));
    }
    let normal = normal_form(&url);
    if issuer != normal {
        // Clients compare issuers as strings; a second spelling of the same URL would fail there.
        return Err(format!("{issuer:?} must be written in its normal form: {normal:?}"));
    }
    if url.path() != "/" && !url.path()[1..].split('/').all(is_plain_segment) {
        return Err(format!(
            "{issuer:?}: the path may hold only letters, digits, '-', '.', '_', '~' and percent escapes, \
             in non-empty segments"
        ));
    }
    if url.scheme() == "http" && !is_loopback(&url) {
        return Err(format!(
            "{issuer:?} uses http on a host other than loopback (127.0.0.0/8, [::1], localhost): \
             use https, the URL clients reach the service at"
        ));
    }
    Ok(())
}

impl AuthConfig {
    /// The name people see: `display_name`, else the issuer's host.
    pub fn display_name(&self) -> String {
        self.display_name.clone().unwrap_or_else(|| host(&self.issuer))
    }

    /// The issuer's path (`""` or e.g. `/tenant`): metadata is also served under it.
    pub fn issuer_path(&self) -> String {
        path(&self.issuer)
    }
}

/// The host of a valid issuer (IPv6 in brackets), e.g. `auth.example.com` or `127.0.0.1`.
pub fn host(issuer: &str) -> String {
    Url::parse(issuer).ok().and_then(|url| url.host_str().map(str::to_owned)).unwrap_or_else(|| issuer.to_owned())
}

/// The path of a valid issuer: `""` for none, else e.g. `/tenant/a` (no trailing slash).
pub fn path(issuer: &str) -> String {
    Url::parse(issuer).map(|url| url.path().trim_end_matches('/').to_owned()).unwrap_or_default()
}

/// The URL as the `url` crate writes it, without the slash it adds for an empty path.
fn normal_form(url: &Url) -> String {
    let written = url.as_str();
    if url.path() == "/" {
        written.trim_end_matches('/').to_owned()
    } else {
        written.to_owned()
    }
}

/// A path segment that Rocket can mount under and no client reads differently (RFC 3986 §2.3
/// unreserved characters and percent escapes).
fn is_plain_segment(segment: &str) -> bool {
    !segment.is_empty()
        && segment != "."
        && segment != ".."
        && segment.chars().all(|c| c.is_ascii_alphanumeric() || "-._~%".contains(c))
}

pub(crate) fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(domain)) => domain == "localhost",
        Some(Host::Ipv4(address)) => address.is_loopback(),
        Some(Host::Ipv6(address)) => address.is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figment(address: &str, port: u16) -> Figment {
        Figment::new().merge(("address", address)).merge(("port", port))
    }

    #[test]
    fn the_default_names_rocket_s_address_and_port() {
        assert_eq!(default_for(&Figment::new()), "http://127.0.0.1:8000");
        assert_eq!(default_for(&figment("0.0.0.0", 9000)), "http://127.0.0.1:9000");
        assert_eq!(default_for(&figment("::", 9000)), "http://127.0.0.1:9000");
        assert_eq!(default_for(&figment("::1", 9000)), "http://[::1]:9000");
        assert_eq!(default_for(&figment("127.0.0.2", 80)), "http://127.0.0.2:80");
    }

    #[test]
    fn loopback_http_and_any_https_are_issuers() {
        for ok in [
            "http://127.0.0.1:8000",
            "http://127.5.6.7",
            "http://[::1]:8000",
            "http://localhost:8000",
            "https://auth.example.com",
            "https://auth.example.com:8443/tenant-a",
            "https://203.0.113.9",
        ] {
            assert_eq!(check(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn other_urls_are_refused_with_the_reason() {
        for (refused, reason) in [
            ("portcullis", "absolute URL"),
            ("ftp://auth.example.com", "https"),
            ("http://auth.example.com", "loopback"),
            ("http://10.0.0.1:8000", "loopback"),
            ("http://0.0.0.0:8000", "loopback"),
            ("https://auth.example.com?tenant=a", "query"),
            ("https://auth.example.com#top", "fragment"),
            ("https://auth.example.com/", "slash"),
            ("https://auth.example.com/tenant/", "slash"),
            ("https://Auth.Example.com", "normal form"),
            ("https://auth.example.com:443", "normal form"),
            ("https://auth.example.com/a/../b", "normal form"),
            ("https://user:pw@auth.example.com", "user information"),
            ("https://auth.example.com/a;b", "path"),
        ] {
            let e = check(refused).expect_err(refused);
            assert!(e.contains(reason), "{refused}: {e}");
        }
    }

    #[test]
    fn host_and_path_come_from_the_url() {
        assert_eq!(host("https://auth.example.com:8443/tenant"), "auth.example.com");
        assert_eq!(host("http://[::1]:8000"), "[::1]");
        assert_eq!(path("https://auth.example.com"), "");
        assert_eq!(path("https://auth.example.com/tenant/a"), "/tenant/a");
    }
}
