//! Cross-origin requests (the Fetch standard's CORS protocol; contract, "Cross-origin"): browser
//! apps call the token, revocation, userinfo and introspection endpoints from the origins of
//! their registered redirect URIs (`Auth::cors_allows` decides). One response fairing for the
//! four, preflights included: Rocket has no `OPTIONS` routes for them, so a preflight from an
//! admitted origin is answered here (204 with what it may send); from any other origin it gets
//! no CORS headers, and the browser keeps the response from the page. The metadata documents
//! and the JWKS admit any origin (`discovery::AnyOrigin`).

use std::io::Cursor;

use rocket::fairing::{Fairing, Info, Kind};
use rocket::http::{Header, Method, Status};
use rocket::{Request, Response};
use rocket_db_pools::Database;

use crate::auth::Auth;
use crate::db::Db;

/// The endpoints browsers may call cross-origin, and their methods.
const ENDPOINTS: [(&str, &str); 4] = [
    ("/oauth/token", "POST"),
    ("/oauth/revoke", "POST"),
    ("/oauth/introspect", "POST"),
    ("/oauth/userinfo", "GET, POST"),
];

/// How long a browser may cache a preflight's answer, in seconds.
const PREFLIGHT_MAX_AGE: &str = "600";

pub struct Cors;

/// Whether `origin` may read the answer: a storage failure admits nobody.
async fn admitted(req: &Request<'_>, origin: &str) -> bool {
    let (Some(auth), Some(db)) = (req.rocket().state::<Auth>(), Db::fetch(req.rocket())) else { return false };
    let Ok(mut conn) = db.conn().await else { return false };
    auth.cors_allows(&mut conn, origin).await.unwrap_or(false)
}

#[rocket::async_trait]
impl Fairing for Cors {
    fn info(&self) -> Info {
        Info { name: "CORS for the OAuth endpoints of browser apps", kind: Kind::Response }
    }

    async fn on_response<'r>(&self, req: &'r Request<'_>, res: &mut Response<'r>) {
        let path = req.uri().path();
        let Some((_, methods)) = ENDPOINTS.iter().find(|(endpoint, _)| path == *endpoint) else { return };
        let Some(origin) = req.headers().get_one("Origin") else { return };
        res.adjoin_header(Header::new("Vary", "Origin"));
        if !admitted(req, origin).await {
            return;
        }
        res.set_header(Header::new("Access-Control-Allow-Origin", origin.to_owned()));
        if req.method() == Method::Options {
            res.set_status(Status::NoContent);
            res.remove_header("Content-Type");
            res.set_sized_body(0, Cursor::new(Vec::new()));
            res.set_header(Header::new("Access-Control-Allow-Methods", *methods));
            res.set_header(Header::new("Access-Control-Allow-Headers", "Authorization, Content-Type"));
            res.set_header(Header::new("Access-Control-Max-Age", PREFLIGHT_MAX_AGE));
        } else {
            // Clients read the challenge of a 401 (RFC 6750 §3).
            res.set_header(Header::new("Access-Control-Expose-Headers", "WWW-Authenticate"));
        }
    }
}
