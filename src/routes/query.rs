//! The query strings of the list and feed endpoints take each parameter once.
//!
//! Rocket reads an optional query parameter that fails to parse as absent, and a repeated one
//! fails to parse: `?user_id=<a>&user_id=<b>` would silently list everyone's events, and
//! `?limit=1&limit=x` the default page. A route that takes [`SingleValued`] answers a repeated
//! parameter 400 `invalid_request` instead (after its authentication guards, so a caller without
//! a token still learns nothing but 401).

use std::collections::BTreeSet;

use rocket::outcome::Outcome;
use rocket::request::{self, FromRequest, Request};

use crate::error::{reject, ApiError};

/// Proof that no query parameter of the request is repeated.
pub struct SingleValued;

#[rocket::async_trait]
impl<'r> FromRequest<'r> for SingleValued {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> request::Outcome<Self, ()> {
        let mut seen = BTreeSet::new();
        for field in req.query_fields() {
            let name = field.name.source().as_str();
            if !seen.insert(name) {
                let error = ApiError::bad_request(format!("The query parameter {name:?} is given more than once."));
                return Outcome::Error((reject(req, error), ()));
            }
        }
        Outcome::Success(SingleValued)
    }
}
