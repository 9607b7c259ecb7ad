//! The cookies of the hosted sign-in: the browser session's (`HttpOnly`, `SameSite=Lax` so a
//! client's top-level redirect to `/oauth/authorize` carries it — single sign-on — and, with an
//! `https` issuer, `Secure` and `__Host-` prefixed: RFC 6265bis §4.1.3.2 pins it to this host and
//! path) and the pending second step's `mfa_token` (`SameSite=Strict`, five minutes).

use rocket::http::{Cookie, CookieJar, SameSite};
use rocket::time::Duration;

use crate::auth::browser::BrowserSession;
use crate::auth::Auth;
use crate::config::Secret;
use crate::db::Db;
use crate::error::ApiResult;

fn secure(auth: &Auth) -> bool {
    auth.config.issuer.starts_with("https://")
}

fn session_name(auth: &Auth) -> &'static str {
    if secure(auth) {
        "__Host-portcullis_session"
    } else {
        "portcullis_session"
    }
}

fn mfa_name(auth: &Auth) -> &'static str {
    if secure(auth) {
        "__Host-portcullis_mfa"
    } else {
        "portcullis_mfa"
    }
}

fn cookie(auth: &Auth, name: &'static str, value: String, same_site: SameSite, max_age: i64) -> Cookie<'static> {
    Cookie::build((name, value))
        .http_only(true)
        .same_site(same_site)
        .path("/")
        .secure(secure(auth))
        .max_age(Duration::seconds(max_age))
        .build()
}

/// The live browser session this browser's cookie names, if any.
pub async fn current(auth: &Auth, db: &Db, jar: &CookieJar<'_>) -> ApiResult<Option<BrowserSession>> {
    let Some(token) = jar.get(session_name(auth)).map(|c| c.value().to_owned()) else { return Ok(None) };
    let mut conn = db.conn().await?;
    auth.browser_session(&mut conn, &token).await
}

/// Gives the browser the cookie of its new session.
pub fn set_session(auth: &Auth, jar: &CookieJar<'_>, token: &Secret) {
    let ttl = auth.browser_session_ttl();
    jar.add(cookie(auth, session_name(auth), token.expose().to_owned(), SameSite::Lax, ttl));
}

/// Keeps the password step's `mfa_token` for the code page (it lives five minutes).
pub fn set_mfa(auth: &Auth, jar: &CookieJar<'_>, mfa_token: &Secret) {
    jar.add(cookie(auth, mfa_name(auth), mfa_token.expose().to_owned(), SameSite::Strict, 300));
}

/// The pending `mfa_token`, if any.
pub fn mfa(auth: &Auth, jar: &CookieJar<'_>) -> Option<String> {
    jar.get(mfa_name(auth)).map(|c| c.value().to_owned())
}

/// Removes the browser-session cookie (after logout, or the account page's End on this browser). A `__Host-` cookie is only replaced by
/// one with the same prefix rules (`Secure`, `Path=/`).
pub fn clear_session(auth: &Auth, jar: &CookieJar<'_>) {
    jar.remove(Cookie::build(session_name(auth)).path("/").secure(secure(auth)).http_only(true).build());
}

pub fn clear_mfa(auth: &Auth, jar: &CookieJar<'_>) {
    jar.remove(Cookie::build(mfa_name(auth)).path("/").build());
}
