//! CSRF protection of the hosted forms: the double-submit cookie of the OWASP CSRF Prevention
//! Cheat Sheet. A page with a form sets a random value in an `HttpOnly`, `SameSite=Strict` cookie
//! (kept while it lasts) and writes the same value into the form; a POST is accepted only when the
//! two match (compared in constant time). Another site can make a browser post the form but can
//! neither read nor set the cookie.

use rocket::http::{Cookie, CookieJar, SameSite};
use subtle::ConstantTimeEq;

use crate::auth::secrets::random_mac_key;

const COOKIE: &str = "portcullis_csrf";

/// The token of this browser, set in its cookie when it has none; `secure` on `https` issuers.
pub fn token(jar: &CookieJar<'_>, secure: bool) -> String {
    if let Some(value) = jar.get(COOKIE).map(|c| c.value().to_owned()).filter(|v| v.len() == 43) {
        return value;
    }
    let value = random_mac_key();
    let cookie =
        Cookie::build((COOKIE, value.clone())).http_only(true).same_site(SameSite::Strict).path("/").secure(secure);
    jar.add(cookie);
    value
}

/// Whether a form's `csrf` field matches the cookie.
pub fn matches(jar: &CookieJar<'_>, field: &str) -> bool {
    jar.get(COOKIE).is_some_and(|c| !field.is_empty() && bool::from(c.value().as_bytes().ct_eq(field.as_bytes())))
}
