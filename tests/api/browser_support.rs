//! Helpers for the browser sign-in tests: clients with redirect URIs, authorization requests,
//! the hosted forms driven through the local client (which keeps cookies, like a browser), and
//! redeeming codes directly with `Auth::redeem_code`.

use std::collections::HashMap;

use crate::helpers::*;
use crate::oidc_support::*;
use portcullis::admin::client_settings::ClientFields;
use portcullis::auth::guards::RequestOrigin;
use portcullis::auth::oidc::codes::{CodeGrant, CodePresentation, CodeRefusal};
use portcullis::db::Id;
use rocket::http::{ContentType, Status};
use rocket::local::asynchronous::{Client, LocalResponse};

/// RFC 7636 Appendix B.
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
pub const REDIRECT: &str = "https://app.example.com/callback";

/// A client allowed the authorization_code grant with `redirect_uris`; its id.
pub async fn browser_client(app: &TestApp, name: &str, first_party: bool, redirect_uris: &[&str]) -> Id {
    let fields = ClientFields {
        name: Some(name.into()),
        client_type: Some("public".into()),
        redirect_uris: Some(redirect_uris.iter().map(|u| u.to_string()).collect()),
        grant_types: Some(vec!["authorization_code".into(), "refresh_token".into()]),
        first_party: Some(first_party),
        ..Default::default()
    };
    let created =
        portcullis::admin::clients::create_client_unchecked(auth(app), pool(app), &fields).await.expect("a client");
    created.client.client_id
}

/// `/oauth/authorize?` with a valid request of `client` plus `extra` (which may override).
pub fn authorize_url(client: Id, extra: &[(&str, &str)]) -> String {
    let client = client.to_string();
    let mut params: Vec<(&str, &str)> = vec![
        ("response_type", "code"),
        ("client_id", &client),
        ("redirect_uri", REDIRECT),
        ("scope", "openid email"),
        ("state", "st-1"),
        ("nonce", "n-1"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ];
    for (name, value) in extra {
        params.retain(|(n, _)| n != name);
        if !value.is_empty() {
            params.push((name, value));
        }
    }
    let query = form_urlencoded::Serializer::new(String::new()).extend_pairs(params).finish();
    format!("/oauth/authorize?{query}")
}

/// The query parameters of a URL.
pub fn query_of(url: &str) -> HashMap<String, String> {
    let query = url.split_once('?').map(|(_, q)| q).unwrap_or("");
    form_urlencoded::parse(query.as_bytes()).into_owned().collect()
}

fn unescape(text: &str) -> String {
    text.replace("&#38;", "&")
        .replace("&amp;", "&")
        .replace("&#34;", "\"")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#60;", "<")
        .replace("&lt;", "<")
        .replace("&#62;", ">")
        .replace("&gt;", ">")
}

/// The value of the hidden field `name` in `html`.
pub fn field(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).unwrap_or_else(|| panic!("a field {name} in {html}")) + marker.len();
    let end = start + html[start..].find('"').expect("the value ends");
    unescape(&html[start..end])
}

/// A hosted form: where it posts and its hidden fields.
#[derive(Debug, Clone)]
pub struct PageForm {
    pub action: String,
    pub csrf: String,
    pub request: String,
}

pub fn form_of(html: &str) -> PageForm {
    let marker = "<form method=\"post\" action=\"";
    let start = html.find(marker).unwrap_or_else(|| panic!("a form in {html}")) + marker.len();
    let end = start + html[start..].find('"').unwrap();
    PageForm { action: html[start..end].to_owned(), csrf: field(html, "csrf"), request: field(html, "request") }
}

/// GETs `path` on `client`: (status, body, Location).
pub async fn get_page(client: &Client, path: &str) -> (Status, String, Option<String>) {
    let response = client.get(path.to_owned()).dispatch().await;
    let status = response.status();
    let location = response.headers().get_one("Location").map(str::to_owned);
    (status, response.into_string().await.unwrap_or_default(), location)
}

/// POSTs `form` with `fields` beside its hidden ones: (status, body, Location).
pub async fn post_form(client: &Client, form: &PageForm, fields: &[(&str, &str)]) -> (Status, String, Option<String>) {
    let mut body = form_urlencoded::Serializer::new(String::new());
    body.append_pair("csrf", &form.csrf).append_pair("request", &form.request);
    for (name, value) in fields {
        body.append_pair(name, value);
    }
    let response = client.post(form.action.clone()).header(ContentType::Form).body(body.finish()).dispatch().await;
    let status = response.status();
    let location = response.headers().get_one("Location").map(str::to_owned);
    (status, response.into_string().await.unwrap_or_default(), location)
}

/// Signs in on the page `GET url` shows; the final Location (following hosted 303s until one
/// leaves for the client, or a page is shown: then panics).
pub async fn sign_in_at(client: &Client, url: &str, user: &TestUser) -> String {
    let (status, html, _) = get_page(client, url).await;
    assert_eq!(status, Status::Ok, "the sign-in page: {html}");
    let (status, body, location) =
        post_form(client, &form_of(&html), &[("email", &user.email), ("password", &user.password)]).await;
    assert_eq!(status, Status::SeeOther, "signed in: {body}");
    location.expect("a Location")
}

/// Follows hosted redirects from `location` until it leaves for the client; a consent page met on
/// the way is approved when `approve`.
pub async fn follow(client: &Client, mut location: String, approve: bool) -> String {
    for _ in 0..5 {
        if location.starts_with(REDIRECT) {
            return location;
        }
        let (status, html, next) = get_page(client, &location).await;
        location = match (status, next) {
            (Status::SeeOther | Status::Found, Some(next)) => next,
            (Status::Ok, _) if html.contains("action=\"/consent\"") => {
                let decision = if approve { "approve" } else { "deny" };
                let (status, _, next) = post_form(client, &form_of(&html), &[("decision", decision)]).await;
                assert_eq!(status, Status::SeeOther);
                next.expect("a Location")
            }
            other => panic!("unexpected answer at {location}: {other:?} {html}"),
        };
    }
    panic!("too many redirects");
}

/// Signs in for `url` and returns the client redirect (consents approved).
pub async fn code_for(app: &TestApp, url: &str, user: &TestUser) -> String {
    let location = sign_in_at(&app.client, url, user).await;
    follow(&app.client, location, true).await
}

/// Redeems the code of the redirect `location` as `client` would, directly.
pub async fn redeem(app: &TestApp, client: Id, location: &str) -> Result<CodeGrant, CodeRefusal> {
    let code = query_of(location).remove("code").expect("a code");
    let presented = CodePresentation { client_id: client, redirect_uri: REDIRECT, code_verifier: VERIFIER };
    auth(app).redeem_code(&mut conn(app).await, &code, &presented, &RequestOrigin::default()).await.expect("storage")
}

/// The `Set-Cookie` header of the browser-session cookie in `response`, if any.
pub fn session_cookie_header(response: &LocalResponse<'_>) -> Option<String> {
    response.headers().get("Set-Cookie").find(|c| c.contains("portcullis_session=")).map(str::to_owned)
}
