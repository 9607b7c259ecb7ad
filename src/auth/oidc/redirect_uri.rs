//! Matching a request's `redirect_uri` with the registered ones (RFC 9700 §2.1: exact string
//! comparison). The one exception is RFC 8252 §7.3: a native app listening on a loopback IP
//! address gets whatever port the operating system gives it, so for `http://127.0.0.1` and
//! `http://[::1]` the port is not compared — everything else still byte for byte.

/// The loopback prefixes whose port is free (RFC 8252 §7.3; `localhost` is not one, §8.3).
const LOOPBACK: &[&str] = &["http://127.0.0.1", "http://[::1]"];

/// Whether `requested` may be used for the registered redirect URI `registered`.
pub fn matches_registered(registered: &str, requested: &str) -> bool {
    if registered == requested {
        return true;
    }
    LOOPBACK.iter().any(|prefix| match (without_port(registered, prefix), without_port(requested, prefix)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    })
}

/// What follows `prefix` and its optional `:port` in `uri`: the path, query and beyond; `None`
/// when `uri` does not start with the prefix followed by a port, a path, a query or nothing.
fn without_port<'a>(uri: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = uri.strip_prefix(prefix)?;
    let rest = match rest.strip_prefix(':') {
        Some(port) => {
            let digits = port.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 || digits > 5 {
                return None;
            }
            &port[digits..]
        }
        None => rest,
    };
    (rest.is_empty() || rest.starts_with('/') || rest.starts_with('?')).then_some(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_match_byte_for_byte() {
        assert!(matches_registered("https://app.example/cb", "https://app.example/cb"));
        assert!(!matches_registered("https://app.example/cb", "https://app.example/cb/"));
        assert!(!matches_registered("https://app.example/cb", "https://app.example/cc"));
        assert!(!matches_registered("https://app.example/cb", "https://APP.example/cb"));
        assert!(!matches_registered("https://app.example:443/cb", "https://app.example/cb"));
    }

    #[test]
    fn loopback_ip_redirects_take_any_port_and_nothing_else() {
        assert!(matches_registered("http://127.0.0.1/cb", "http://127.0.0.1:53124/cb"));
        assert!(matches_registered("http://127.0.0.1:8080/cb", "http://127.0.0.1:9/cb"));
        assert!(matches_registered("http://[::1]/cb", "http://[::1]:1234/cb"));
        assert!(!matches_registered("http://127.0.0.1/cb", "http://127.0.0.1:53124/cc"));
        assert!(!matches_registered("http://127.0.0.1/cb", "http://127.0.0.1.evil.example/cb"));
        assert!(!matches_registered("http://127.0.0.1/cb", "http://127.0.0.1:80@evil.example/cb"));
        assert!(!matches_registered("http://localhost/cb", "http://localhost:8080/cb"));
        assert!(!matches_registered("http://127.0.0.1/cb", "https://127.0.0.1:8080/cb"));
    }
}
