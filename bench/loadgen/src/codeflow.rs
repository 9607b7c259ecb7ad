//! The code-flow scenarios (issue 24): one sign-in is what a browser and a registered
//! first-party public client do together in the authorization-code flow with PKCE (RFC 6749
//! §4.1, RFC 7636, S256):
//!
//! - `code-password`, a browser without a session: `GET /oauth/authorize` answers the hosted
//!   sign-in page (its CSRF cookie and the form's `csrf` and `request` fields,
//!   `src/pages/signin.rs`), `POST /signin` with the email and password answers 303 to the
//!   redirect URI with a `code` (a first-party client needs no consent), then
//!   `POST /oauth/token grant_type=authorization_code` (code, redirect_uri, code_verifier,
//!   client_id). The browser forgets its session cookie before the next sign-in, so each one
//!   verifies the password (argon2).
//! - `code-session`, a browser with a session: signed in once through the form before the clock
//!   starts; then each sign-in is `GET /oauth/authorize` answering 303 with a code at once, and
//!   the token request.
//!
//! A sign-in counts only when the token response is 200 with an `access_token`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use bytes::Bytes;
use hyper::header::HeaderValue;
use hyper::StatusCode;
use sha2::{Digest, Sha256};

use crate::http::{Call, Client, Reply};
use crate::load::User;

/// The name of the browser-session cookie (`__Host-` prefixed with an `https` issuer,
/// `src/pages/browser_cookie.rs`).
const SESSION_COOKIES: [&str; 2] = ["portcullis_session", "__Host-portcullis_session"];

/// The registered client the browsers sign in to.
#[derive(Debug, Clone)]
pub struct CodeClient {
    pub client_id: String,
    pub redirect_uri: String,
}

/// Why a sign-in failed: the status of the answer that broke the flow (`None`: the connection
/// failed), and what it said.
#[derive(Debug)]
pub struct FlowError {
    pub status: Option<u16>,
    pub message: String,
}

impl FlowError {
    fn transport(message: String) -> FlowError {
        FlowError { status: None, message }
    }

    fn answer(step: &str, reply: &Reply, expected: &str) -> FlowError {
        let body: String = String::from_utf8_lossy(&reply.body).chars().take(200).collect();
        FlowError {
            status: Some(reply.status.as_u16()),
            message: format!("{step} answered {} (expected {expected}): {body}", reply.status),
        }
    }
}

/// The client-side time of each step of one sign-in.
pub type Steps = Vec<(&'static str, Duration)>;

/// One browser: the account it signs in with and its cookies.
pub struct Browser {
    user: User,
    cookies: BTreeMap<String, String>,
    /// Distinguishes this browser's PKCE verifiers.
    seed: String,
    sign_ins: u64,
}

impl Browser {
    pub fn new(user: User, seed: String) -> Browser {
        Browser { user, cookies: BTreeMap::new(), seed, sign_ins: 0 }
    }

    fn cookie_header(&self) -> Option<HeaderValue> {
        if self.cookies.is_empty() {
            return None;
        }
        let pairs: Vec<String> = self.cookies.iter().map(|(name, value)| format!("{name}={value}")).collect();
        HeaderValue::from_str(&pairs.join("; ")).ok()
    }

    /// Keeps what `Set-Cookie` says: a value, or its removal (an empty value or `Max-Age=0`).
    fn absorb(&mut self, reply: &Reply) {
        for header in &reply.set_cookies {
            let mut parts = header.split(';').map(str::trim);
            let Some((name, value)) = parts.next().and_then(|p| p.split_once('=')) else { continue };
            let removed = value.is_empty() || parts.any(|a| a.eq_ignore_ascii_case("max-age=0"));
            if removed {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
    }

    fn has_session(&self) -> bool {
        SESSION_COOKIES.iter().any(|name| self.cookies.contains_key(*name))
    }

    /// Sends `call` with this browser's cookies and keeps the ones the answer sets.
    async fn send(&mut self, client: &mut Client, mut call: Call) -> Result<Reply, FlowError> {
        call.cookie = self.cookie_header();
        let reply = client.send_reply(&call).await.map_err(FlowError::transport)?;
        self.absorb(&reply);
        Ok(reply)
    }

    /// A new PKCE verifier (43 base64url characters, RFC 7636 §4.1) and its S256 challenge.
    fn pkce(&mut self) -> (String, String) {
        self.sign_ins += 1;
        let verifier = URL_SAFE_NO_PAD.encode(Sha256::digest(format!("{}-{}", self.seed, self.sign_ins)));
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        (verifier, challenge)
    }
}

/// `application/x-www-form-urlencoded` of `pairs` (RFC 3986 unreserved characters kept).
fn form(pairs: &[(&str, &str)]) -> String {
    let encode = |text: &str| {
        let mut out = String::with_capacity(text.len());
        for byte in text.bytes() {
            match byte {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => out.push(byte as char),
                _ => out.push_str(&format!("%{byte:02X}")),
            }
        }
        out
    };
    pairs.iter().map(|(name, value)| format!("{}={}", encode(name), encode(value))).collect::<Vec<_>>().join("&")
}

/// The value of `name` in the query of `url` (percent-decoded).
fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1.split('#').next()?;
    let value = query.split('&').find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))?;
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// The value of the hidden field `name` of the page (askama escapes `&`, `<`, `>`, `"`, `'`).
fn hidden_field(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = start + html[start..].find('"')?;
    let value = &html[start..end];
    Some(
        value
            .replace("&#38;", "&")
            .replace("&amp;", "&")
            .replace("&#34;", "\"")
            .replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&#60;", "<")
            .replace("&lt;", "<")
            .replace("&#62;", ">")
            .replace("&gt;", ">"),
    )
}

impl CodeClient {
    fn authorize_path(&self, challenge: &str) -> String {
        let query = form(&[
            ("response_type", "code"),
            ("client_id", &self.client_id),
            ("redirect_uri", &self.redirect_uri),
            ("scope", "openid email"),
            ("state", "bench"),
            ("code_challenge", challenge),
            ("code_challenge_method", "S256"),
        ]);
        format!("/oauth/authorize?{query}")
    }

    /// The code of a 303 to the redirect URI.
    fn code_of(&self, step: &str, reply: &Reply) -> Result<String, FlowError> {
        let code = (reply.status == StatusCode::SEE_OTHER)
            .then_some(reply.location.as_deref())
            .flatten()
            .filter(|l| l.starts_with(&self.redirect_uri))
            .and_then(|l| query_param(l, "code"));
        code.ok_or_else(|| {
            let mut e = FlowError::answer(step, reply, "303 to the redirect URI with a code");
            if let Some(location) = &reply.location {
                e.message = format!("{} -> {location}", e.message);
            }
            e
        })
    }

    /// `POST /oauth/token` with `code`: Ok when it answers 200 with an access token.
    async fn exchange(&self, client: &mut Client, code: &str, verifier: &str) -> Result<(), FlowError> {
        let body = form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &self.redirect_uri),
            ("code_verifier", verifier),
            ("client_id", &self.client_id),
        ]);
        let reply = client
            .send_reply(&Call::post_form("/oauth/token", Bytes::from(body)))
            .await
            .map_err(FlowError::transport)?;
        let token = serde_json::from_slice::<serde_json::Value>(&reply.body)
            .ok()
            .and_then(|v| v["access_token"].as_str().map(|t| !t.is_empty()));
        match (reply.status, token) {
            (StatusCode::OK, Some(true)) => Ok(()),
            _ => Err(FlowError::answer("POST /oauth/token", &reply, "200 with an access_token")),
        }
    }

    /// A sign-in of `browser` with its password (its session cookie forgotten first unless
    /// `keep_session`, which the session scenario's preparation wants).
    pub async fn with_password(
        &self,
        client: &mut Client,
        browser: &mut Browser,
        keep_session: bool,
    ) -> Result<Steps, FlowError> {
        let mut steps = Steps::with_capacity(3);
        for name in SESSION_COOKIES {
            browser.cookies.remove(name);
        }
        let (verifier, challenge) = browser.pkce();
        let t = Instant::now();
        let page = browser.send(client, Call::get(self.authorize_path(&challenge), None)).await?;
        steps.push(("authorize", t.elapsed()));
        let fields = (page.status == StatusCode::OK)
            .then(|| String::from_utf8_lossy(&page.body).into_owned())
            .and_then(|html| Some((hidden_field(&html, "csrf")?, hidden_field(&html, "request")?)));
        let Some((csrf, request)) = fields else {
            return Err(FlowError::answer("GET /oauth/authorize", &page, "200, the sign-in page"));
        };
        let body = form(&[
            ("csrf", &csrf),
            ("request", &request),
            ("email", &browser.user.email),
            ("password", &browser.user.password),
        ]);
        let t = Instant::now();
        let signed_in = browser.send(client, Call::post_form("/signin", Bytes::from(body))).await?;
        steps.push(("signin", t.elapsed()));
        let code = self.code_of("POST /signin", &signed_in)?;
        let t = Instant::now();
        self.exchange(client, &code, &verifier).await?;
        steps.push(("token", t.elapsed()));
        if !keep_session {
            for name in SESSION_COOKIES {
                browser.cookies.remove(name);
            }
        }
        Ok(steps)
    }

    /// A sign-in of `browser` with the session its cookie names: a code at once, then the token.
    pub async fn with_session(&self, client: &mut Client, browser: &mut Browser) -> Result<Steps, FlowError> {
        let mut steps = Steps::with_capacity(2);
        if !browser.has_session() {
            return Err(FlowError::transport("the browser has no session cookie".into()));
        }
        let (verifier, challenge) = browser.pkce();
        let t = Instant::now();
        let authorized = browser.send(client, Call::get(self.authorize_path(&challenge), None)).await?;
        steps.push(("authorize", t.elapsed()));
        let code = self.code_of("GET /oauth/authorize with a session", &authorized)?;
        let t = Instant::now();
        self.exchange(client, &code, &verifier).await?;
        steps.push(("token", t.elapsed()));
        Ok(steps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_encode_and_queries_decode() {
        assert_eq!(form(&[("a b", "x&y=z@w")]), "a%20b=x%26y%3Dz%40w");
        assert_eq!(query_param("http://127.0.0.1/cb?code=ab%2Dc&state=s", "code").as_deref(), Some("ab-c"));
        assert_eq!(query_param("http://127.0.0.1/cb?xcode=1&code=2", "code").as_deref(), Some("2"));
        assert_eq!(query_param("http://127.0.0.1/cb?state=s", "code"), None);
    }

    #[test]
    fn hidden_fields_are_unescaped() {
        let html = r#"<input type="hidden" name="request" value="a=1&#38;b=2">"#;
        assert_eq!(hidden_field(html, "request").as_deref(), Some("a=1&b=2"));
    }

    #[test]
    fn set_cookie_sets_and_removes() {
        let mut browser = Browser::new(User { email: "e".into(), password: "p".into() }, "s".into());
        let reply = |cookies: &[&str]| Reply {
            status: StatusCode::OK,
            location: None,
            set_cookies: cookies.iter().map(|c| c.to_string()).collect(),
            body: Bytes::new(),
        };
        browser.absorb(&reply(&["portcullis_session=abc; HttpOnly; Path=/", "portcullis_csrf=x; Path=/"]));
        assert!(browser.has_session());
        assert_eq!(browser.cookie_header().unwrap(), "portcullis_csrf=x; portcullis_session=abc");
        browser.absorb(&reply(&["portcullis_session=; Max-Age=0; Path=/"]));
        assert!(!browser.has_session());
    }
}
