//! Refusals in Portcullis's JSON error shape, `{"error", "error_description"}`: 401
//! `invalid_token` with the RFC 6750 challenge, 403 `insufficient_permissions`, 503
//! `unavailable`. Guards record theirs in request-local state; the catchers the fairing
//! registers answer with it.

use std::borrow::Cow;
use std::sync::Mutex;

use rocket::http::{Header, Status};
use rocket::request::Request;
use rocket::response::{self, Responder, Response};
use rocket::serde::json::Json;
use serde::Serialize;

/// A refusal: status, contract code, description and (for 401) the challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthError {
    pub status: Status,
    pub code: &'static str,
    pub description: String,
    challenge: Option<String>,
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
        let description = description.into();
        let challenge =
            format!("Bearer error=\"invalid_token\", error_description=\"{}\"", description.replace(['"', '\\'], "'"));
        AuthError { status: Status::Unauthorized, code: "invalid_token", description, challenge: Some(challenge) }
    }

    /// 401 for a request without credentials: a bare `Bearer` challenge (RFC 6750 §3.1).
    pub fn missing_token() -> Self {
        AuthError {
            status: Status::Unauthorized,
            code: "invalid_token",
            description: "An access token is required.".into(),
            challenge: Some("Bearer".into()),
        }
    }

    /// 403 `insufficient_permissions`.
    pub fn forbidden(description: impl Into<String>) -> Self {
        AuthError {
            status: Status::Forbidden,
            code: "insufficient_permissions",
            description: description.into(),
            challenge: None,
        }
    }

    /// Any other refusal in the contract's shape, e.g. 400 `invalid_request` for a handler's body.
    pub fn new(status: Status, code: &'static str, description: impl Into<String>) -> Self {
        AuthError { status, code, description: description.into(), challenge: None }
    }

    /// 503 `unavailable`: the guard cannot vouch for tokens now (the change feed is too stale).
    pub fn unavailable(description: impl Into<String>) -> Self {
        AuthError {
            status: Status::ServiceUnavailable,
            code: "unavailable",
            description: description.into(),
            challenge: None,
        }
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
        AuthError { status, code, description: status.reason_lossy().to_owned(), challenge: None }
    }
}

impl<'r> Responder<'r, 'static> for AuthError {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        let body = ErrorBody { error: self.code, error_description: &self.description };
        let mut response = Response::build_from(Json(body).respond_to(req)?);
        response.status(self.status).header(Header::new("Cache-Control", "no-store"));
        if let Some(challenge) = self.challenge {
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
