//! HTTP routes, one file per area; handlers stay a few lines and call into `auth`.

pub mod admin;
pub mod auth;
pub mod body;
pub mod consents;
pub mod cors;
pub mod discovery;
pub mod docs;
pub mod feed;
pub mod health;
pub mod mail;
pub mod metrics;
pub mod mfa;
pub mod oauth;
pub mod oauth_code;
pub mod oauth_forms;
pub mod oauth_tokens;
pub mod passkeys;
pub mod query;
pub mod responses;
pub mod userinfo;
pub mod users;
pub mod views;

use rocket::http::Header;
use rocket::response::Responder;

/// Wraps a response that carries tokens: `Cache-Control: no-store` and `Pragma: no-cache`.
#[derive(Responder)]
pub struct NoStore<R> {
    inner: R,
    cache_control: Header<'static>,
    pragma: Header<'static>,
}

impl<R> NoStore<R> {
    pub fn new(inner: R) -> Self {
        NoStore {
            inner,
            cache_control: Header::new("Cache-Control", "no-store"),
            pragma: Header::new("Pragma", "no-cache"),
        }
    }
}

/// Every response to a bearer-authenticated request carries account data (RFC 6749 §5.1 asks
/// the same of token responses), so none
/// may be stored by a cache — whatever the handler (or a catcher) answered. One fairing instead
/// of a wrapper per handler, so a new route cannot forget it.
pub struct NoStoreForBearer;

#[rocket::async_trait]
impl rocket::fairing::Fairing for NoStoreForBearer {
    fn info(&self) -> rocket::fairing::Info {
        rocket::fairing::Info {
            name: "Cache-Control: no-store for bearer requests",
            kind: rocket::fairing::Kind::Response,
        }
    }

    async fn on_response<'r>(&self, req: &'r rocket::Request<'_>, res: &mut rocket::Response<'r>) {
        if req.headers().contains("Authorization") {
            res.set_header(Header::new("Cache-Control", "no-store"));
            res.set_header(Header::new("Pragma", "no-cache"));
        }
    }
}

/// Every route of the service.
pub fn all() -> Vec<rocket::Route> {
    let mut routes = health::routes();
    routes.extend(auth::routes());
    routes.extend(users::routes());
    routes.extend(consents::routes());
    routes.extend(userinfo::routes());
    routes.extend(mfa::routes());
    routes.extend(mail::routes());
    routes.extend(passkeys::routes());
    routes.extend(admin::routes());
    routes.extend(oauth::routes());
    routes.extend(oauth_tokens::routes());
    routes.extend(discovery::routes());
    routes.extend(metrics::routes());
    routes.extend(feed::routes());
    routes.extend(docs::routes());
    routes
}
