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
    // `get_pending`: a page with two forms asks twice, and the second must see the first's cookie.
    if let Some(value) = jar.get_pending(COOKIE).map(|c| c.value().to_owned()).filter(|v| v.len() == 43) {
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

/// The sign-in, code and consent forms' token: a MAC (under the server's key, so any instance
/// checks it) of this browser's double-submit cookie, the browser session it has (none before
/// sign-in), the form and the authorization request the form carries. A token is thus refused
/// from another browser (other cookie), from another browser session of the same browser (a
/// sign-in in between), for another form, or with another request (a swapped client or
/// redirect URI).
pub fn bound_token(
    auth: &crate::auth::Auth,
    jar: &CookieJar<'_>,
    session: Option<crate::db::Id>,
    form: &str,
    request: &str,
) -> String {
    let cookie = token(jar, auth.config.issuer.starts_with("https://"));
    bound_tag(auth, &cookie, session, form, request)
}

/// Whether `field` is the [`bound_token`] of this browser, session, form and request.
pub fn bound_matches(
    auth: &crate::auth::Auth,
    jar: &CookieJar<'_>,
    session: Option<crate::db::Id>,
    form: &str,
    request: &str,
    field: &str,
) -> bool {
    let Some(cookie) = jar.get(COOKIE).map(|c| c.value().to_owned()).filter(|v| v.len() == 43) else {
        return false;
    };
    let expected = bound_tag(auth, &cookie, session, form, request);
    bool::from(expected.as_bytes().ct_eq(field.as_bytes()))
}

fn bound_tag(
    auth: &crate::auth::Auth,
    cookie: &str,
    session: Option<crate::db::Id>,
    form: &str,
    request: &str,
) -> String {
    let session = session.map(|s| s.to_string()).unwrap_or_default();
    auth.page_tag("csrf", &[cookie.as_bytes(), session.as_bytes(), form.as_bytes(), request.as_bytes()])
}
