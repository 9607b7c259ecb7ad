//! The response fairing of operations: `X-Request-Id` on every response and the HTTP metrics.
//!
//! The route label is the matched route's template (`req.route()`), or one value for requests
//! that matched none, so a path full of ids never becomes a label.

use rocket::fairing::{Fairing, Info, Kind};
use rocket::http::Header;
use rocket::{Data, Request, Response};

use super::metrics;
use super::request_id::{self, HEADER};

/// See the module docs.
pub struct Operations;

/// The route template of a request, or [`metrics::UNMATCHED`].
pub fn route_label<'r>(req: &'r Request<'_>) -> &'r str {
    req.route().map(|r| r.uri.path()).unwrap_or(metrics::UNMATCHED)
}

#[rocket::async_trait]
impl Fairing for Operations {
    fn info(&self) -> Info {
        Info { name: "Request ids and HTTP metrics", kind: Kind::Request | Kind::Response }
    }

    async fn on_request(&self, req: &mut Request<'_>, _: &mut Data<'_>) {
        request_id::meta(req);
    }

    async fn on_response<'r>(&self, req: &'r Request<'_>, res: &mut Response<'r>) {
        let meta = request_id::meta(req);
        let seconds = meta.started.elapsed().as_secs_f64();
        metrics::http_request(route_label(req), req.method().as_str(), res.status().code, seconds);
        // Borrowed from the request-local id: no allocation per response.
        res.set_header(Header::new(HEADER, meta.id.as_str()));
    }
}
