//! `X-Request-Id`: every response carries one, so a request can be followed through the logs.
//!
//! A client's (or proxy's) id is echoed when it is sane — at most [`MAX_LEN`] characters from a
//! small safe set, so it cannot forge log lines or carry a token-sized payload; otherwise the
//! service makes a random UUID. The id and the request's start time live in request-local state
//! ([`meta`]), read by the access log and the metrics fairing.

use std::time::Instant;

use rand::RngCore;
use rocket::Request;

/// The header, on requests and responses.
pub const HEADER: &str = "X-Request-Id";
/// The longest incoming id echoed.
pub const MAX_LEN: usize = 128;

/// What the operations fairings know about one request.
pub struct RequestMeta {
    pub id: String,
    pub started: Instant,
}

/// Whether an incoming id may be echoed: 1 to [`MAX_LEN`] characters of `A-Z a-z 0-9 - _ . : @`.
pub fn is_sane(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_LEN
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':' | b'@'))
}

/// A random (version 4) UUID from the thread's generator: no system call per request.
fn generate() -> String {
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    uuid::Builder::from_random_bytes(bytes).into_uuid().hyphenated().to_string()
}

/// This request's id and start time, made on first use (the first fairing to ask).
pub fn meta<'r>(req: &'r Request<'_>) -> &'r RequestMeta {
    req.local_cache(|| {
        let id = match req.headers().get_one(HEADER) {
            Some(incoming) if is_sane(incoming) => incoming.to_owned(),
            _ => generate(),
        };
        RequestMeta { id, started: Instant::now() }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_short_ids_of_safe_characters_are_sane() {
        assert!(is_sane("abc-123_x.y:z@w"));
        assert!(is_sane(&"a".repeat(MAX_LEN)));
        assert!(!is_sane(&"a".repeat(MAX_LEN + 1)));
        assert!(!is_sane(""));
        assert!(!is_sane("a b"));
        assert!(!is_sane("a\nb"));
        assert!(!is_sane("a\"b"));
        assert!(!is_sane("é"));
    }

    #[test]
    fn generated_ids_are_version_4_uuids() {
        let id = generate();
        let parsed = uuid::Uuid::parse_str(&id).expect("a UUID");
        assert_eq!(parsed.get_version_num(), 4);
        assert_ne!(generate(), id);
    }
}
