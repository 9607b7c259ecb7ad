//! Helpers of the account page tests: a browser signed in through `/account/signin`, the
//! hidden fields of a page, and the hosted pages' headers.

use crate::helpers::*;
use rocket::http::{ContentType, Status};
use rocket::local::asynchronous::LocalResponse;
use serde_json::Value;

/// A browser signed in to the account page through its sign-in form: the app's local client,
/// which keeps the cookies responses set (one browser per client; `second_instance` is another).
pub struct Browser<'a> {
    app: &'a TestApp,
    /// Its browser session (the `sessions` row marked "This browser").
    pub session_id: String,
}

impl<'a> Browser<'a> {
    pub async fn signed_in(app: &'a TestApp, user: &TestUser) -> Browser<'a> {
        let form = app.client.get("/account/signin").dispatch().await;
        assert_eq!(form.status(), Status::Ok, "the sign-in form");
        assert_page_headers(&form);
        let csrf = field(&form.into_string().await.unwrap(), "csrf");
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs([("csrf", csrf.as_str()), ("email", &user.email), ("password", &user.password)])
            .finish();
        let signed_in = app.client.post("/account/signin").header(ContentType::Form).body(body).dispatch().await;
        assert_eq!(signed_in.status(), Status::SeeOther, "signed in");
        assert_eq!(signed_in.headers().get_one("Location"), Some("/account"));
        let mut browser = Browser { app, session_id: String::new() };
        let (html, _) = browser.page().await;
        let mine = html.split("class=\"this-browser\"").nth(1).expect("this browser's session");
        browser.session_id = field(mine, "session_id");
        browser
    }

    pub async fn get(&self, path: &str) -> LocalResponse<'a> {
        self.app.client.get(path.to_owned()).dispatch().await
    }

    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> LocalResponse<'a> {
        let body: String = form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
        self.app.client.post(path.to_owned()).header(ContentType::Form).body(body).dispatch().await
    }

    /// The account page's HTML (asserting 200) and its CSRF token.
    pub async fn page(&self) -> (String, String) {
        let response = self.get("/account").await;
        assert_eq!(response.status(), Status::Ok, "GET /account");
        assert_page_headers(&response);
        let html = response.into_string().await.unwrap();
        let csrf = field(&html, "csrf");
        (html, csrf)
    }
}

/// The value of the first hidden field `name` of a page.
pub fn field(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    html.split(&marker).nth(1).and_then(|rest| rest.split('"').next()).expect("the field").to_owned()
}

pub fn assert_page_headers(response: &LocalResponse<'_>) {
    let csp = response.headers().get_one("Content-Security-Policy").expect("a CSP");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(response.headers().get_one("X-Content-Type-Options"), Some("nosniff"));
    assert_eq!(response.headers().get_one("Cache-Control"), Some("no-store"));
}

pub fn assert_done(response: &LocalResponse<'_>) {
    assert_eq!(response.status(), Status::SeeOther);
    assert_eq!(response.headers().get_one("Location"), Some("/account"));
    assert_page_headers(response);
}

pub async fn live_session_ids(app: &TestApp, access: &str) -> Vec<String> {
    let body: Value = app.get_authed("/auth/sessions", access).await.into_json().await.unwrap();
    body["sessions"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap().to_owned()).collect()
}
