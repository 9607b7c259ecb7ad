//! Refusals in Portcullis's JSON error shape, `{"error", "error_description"}`: 401
//! `invalid_token` and 403 `insufficient_permissions` with the RFC 6750 challenge (built by
//! [`core::Challenge`](crate::core::Challenge), as Portcullis builds its own), 503 `unavailable`.
//! Guards record theirs in request-local state; the catchers the fairing registers answer with it.

use std::borrow::Cow;
use std::sync::Mutex;

use rocket::http::{Header, Status};
use rocket::request::Request;
use rocket::response::{self, Responder, Response};
use rocket::serde::json::Json;
use serde::Serialize;

use crate::core::Challenge;

/// A refusal: status, contract code, description and what its challenge says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthError {
    pub status: Status,
    pub code: &'static str,
    pub description: String,
    challenge: Challenge,
}

/// The contract's error body.
#[derive(Debug, Serialize)]
pub struct ErrorBody<'a> {
    pub error: &'a str,
    pub error_description: &'a str,
}

impl AuthError {
    /// 401 `invalid_token`, with `WWW-Authenticate: Bearer error="invalid_token", ...`.
    pub fn invalid_token(description: impl Into<String>) -> Self {
        AuthError {
            challenge: Challenge::InvalidToken,
            ..Self::new(Status::Unauthorized, "invalid_token", description)
        }
    }

    /// 401 for a request without credentials: a bare `Bearer` challenge (RFC 6750 §3.1).
    pub fn missing_token() -> Self {
        Self::other_scheme("An access token is required.")
    }

    /// 401 `invalid_token` for credentials of another scheme than Bearer: a bare `Bearer`
    /// challenge, as for none (RFC 6750 §3.1: the request carried no bearer token).
    pub fn other_scheme(description: impl Into<String>) -> Self {
        AuthError { challenge: Challenge::Bare, ..Self::new(Status::Unauthorized, "invalid_token", description) }
    }

    /// 403 `insufficient_permissions`, with `WWW-Authenticate: Bearer error="insufficient_scope",
    /// ...` when the request presented a bearer token.
    pub fn forbidden(description: impl Into<String>) -> Self {
        Self::new(Status::Forbidden, "insufficient_permissions", description)
    }

    /// Any other refusal in the contract's shape, e.g. 400 `invalid_request` for a handler's body.
    /// To a request that presented a bearer token, a 401 carries a bare `Bearer` challenge and a
    /// 403 an `insufficient_scope` one.
    pub fn new(status: Status, code: &'static str, description: impl Into<String>) -> Self {
        AuthError { status, code, description: description.into(), challenge: Challenge::ByStatus }
    }

    /// 503 `unavailable`: the guard cannot vouch for tokens now (the change feed is too stale).
    pub fn unavailable(description: impl Into<String>) -> Self {
        Self::new(Status::ServiceUnavailable, "unavailable", description)
    }

    fn for_status(status: Status) -> Self {
        let code = match status.code {
            401 => "invalid_token",
            403 => "insufficient_permissions",
            404 => "not_found",
            413 => "payload_too_large",
            503 => "unavailable",
            400..=499 => "invalid_request",
            _ => "internal_error",
        };
        Self::new(status, code, status.reason_lossy())
    }
}

impl<'r> Responder<'r, 'static> for AuthError {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        let body = ErrorBody { error: self.code, error_description: &self.description };
        let mut response = Response::build_from(Json(body).respond_to(req)?);
        response.status(self.status).header(Header::new("Cache-Control", "no-store"));
        let authorization = req.headers().get_one("Authorization");
        if let Some(challenge) = self.challenge.header(self.status.code, &self.description, authorization) {
            response.header(Header::new("WWW-Authenticate", challenge));
        }
        response.ok()
    }
}

impl crate::guards::GuardError for AuthError {
    fn missing_token() -> Self {
        AuthError::missing_token()
    }
    fn invalid_token(description: Cow<'static, str>) -> Self {
        AuthError::invalid_token(description)
    }
    fn other_scheme(description: Cow<'static, str>) -> Self {
        AuthError::other_scheme(description)
    }
    fn forbidden(description: Cow<'static, str>) -> Self {
        AuthError::forbidden(description)
    }
    fn record(&self, req: &Request<'_>) -> Status {
        reject(req, self.clone())
    }
}

struct Recorded(Mutex<Option<AuthError>>);

/// Records `error` for the catcher; returns its status for the guard's `Outcome::Error`.
pub fn reject(req: &Request<'_>, error: AuthError) -> Status {
    let status = error.status;
    if let Ok(mut slot) = req.local_cache(|| Recorded(Mutex::new(None))).0.lock() {
        slot.get_or_insert(error);
    }
    status
}

#[rocket::catch(default)]
fn catcher(status: Status, req: &Request<'_>) -> AuthError {
    let recorded = req.local_cache(|| Recorded(Mutex::new(None))).0.lock().ok().and_then(|slot| slot.clone());
    recorded.filter(|e| e.status == status).unwrap_or_else(|| AuthError::for_status(status))
}

/// JSON catchers for every status, in the contract's shape (the fairing registers them at `/`;
/// an app's own catchers registered at a longer base win for their paths).
pub fn catchers() -> Vec<rocket::Catcher> {
    rocket::catchers![catcher]
}
