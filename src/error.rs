//! The one error type of the HTTP surface and the JSON catchers.
//!
//! Every failure is an [`ApiError`]: a status, a contract error code and a sentence for humans.
//! The code is an [`ErrorCode`] (`code.rs`), and the description keeps to the characters RFC 6749
//! §5.2 allows ([`description_charset`], applied by the one constructor, [`ApiError::new`]).
//! 5xx causes are logged (with the request they answered) and never shown. Guards that fail record their `ApiError` in
//! request-local state ([`reject`]) so that the catcher answers with it instead of a generic body.

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use portcullis_rocket::core::Challenge;
use rocket::http::{Header, Status};
use rocket::request::Request;
use rocket::response::{self, Responder, Response};
use rocket::serde::json::Json;
use rocket::Catcher;
use serde::Serialize;

mod code;
mod storage;
pub use code::{allowed_in_description, description_charset, ErrorCode};

/// A failure with its status, contract code and human-readable description.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: Status,
    pub code: ErrorCode,
    description: Cow<'static, str>,
    /// What the RFC 6750 challenge says (the crate's one builder, shared with resource servers).
    challenge: Challenge,
    /// A challenge of another scheme (Basic, for client authentication), which wins.
    www_authenticate: Option<String>,
    retry_after: Option<u64>,
    /// The second step of a login (403 `mfa_required` at login); `Secret` keeps it out of logs.
    mfa_token: Option<crate::config::Secret>,
    /// With `mfa_required`: the second factors the account can use (`totp`, `passkey`,
    /// `recovery_code`).
    /// (Boxed: every `Result` carries an `ApiError`, so it stays small.)
    mfa_methods: Option<Box<MfaMethods>>,
    /// Why a 5xx happened, for the log only.
    cause: Option<Arc<Cause>>,
}

/// The logged cause of a 5xx. It is logged once: when the error answers a request, with that
/// request's id, method and route (so a JSON log line can be joined with the access log's); an
/// error that never answers one (a background task's) is logged when its last copy is dropped.
#[derive(Debug)]
struct Cause {
    level: log::Level,
    message: String,
    logged: AtomicBool,
}

impl Cause {
    fn new(level: log::Level, message: String) -> Arc<Cause> {
        Arc::new(Cause { level, message, logged: AtomicBool::new(false) })
    }

    /// Logs the cause for `req`, unless a copy of this error logged it already.
    fn log_for(&self, req: &Request<'_>) {
        if self.logged.swap(true, Ordering::Relaxed) {
            return;
        }
        let request_id = crate::ops::request_id::meta(req).id.as_str();
        let method = req.method().as_str();
        let route = req.route().map(|r| r.uri.as_str()).unwrap_or("");
        log::log!(target: "portcullis", self.level,
            request_id = request_id, method = method, route = route;
            "{} (request {request_id})", self.message);
    }
}

impl Drop for Cause {
    fn drop(&mut self) {
        if !self.logged.load(Ordering::Relaxed) {
            log::log!(target: "portcullis", self.level, "{}", self.message);
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// The `mfa_methods` of an `mfa_required` answer.
#[derive(Debug, Clone)]
struct MfaMethods(Vec<&'static str>);

/// `Retry-After` of a 503, in seconds: about how long a database restart or failover takes.
pub const RETRY_UNAVAILABLE_AFTER: u64 = 5;

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorCode,
    error_description: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    mfa_token: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mfa_methods: Option<&'a [&'static str]>,
}

impl ApiError {
    /// Every error is made here: the description is brought into the RFC 6749 §5.2 character set.
    pub fn new(status: Status, code: ErrorCode, description: impl Into<Cow<'static, str>>) -> Self {
        let description = description_charset(description.into());
        ApiError {
            status,
            code,
            description,
            challenge: Challenge::ByStatus,
            www_authenticate: None,
            retry_after: None,
            mfa_token: None,
            mfa_methods: None,
            cause: None,
        }
    }

    /// The human-readable sentence of the body (already within the RFC 6749 §5.2 characters).
    pub fn description(&self) -> &str {
        &self.description
    }

    /// The sentence, for an error that answers in another shape (the OAuth mapping, the CLI).
    pub fn into_description(self) -> Cow<'static, str> {
        self.description
    }

    /// 400 `invalid_request`: malformed body, missing field, wrong content type.
    pub fn bad_request(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(Status::BadRequest, ErrorCode::InvalidRequest, description)
    }

    /// 422 `invalid_request`: a well-formed body with an unacceptable value; names the field.
    pub fn invalid_field(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(Status::UnprocessableEntity, ErrorCode::InvalidRequest, description)
    }

    /// 401 `invalid_token` with the RFC 6750 challenge.
    pub fn invalid_token(description: impl Into<Cow<'static, str>>) -> Self {
        ApiError {
            challenge: Challenge::InvalidToken,
            ..Self::new(Status::Unauthorized, ErrorCode::InvalidToken, description)
        }
    }

    /// 401 `invalid_client` (RFC 6749 §5.2): client authentication failed. With the
    /// `WWW-Authenticate: Basic` challenge when the client used HTTP Basic.
    pub fn invalid_client(basic: bool) -> Self {
        let error = Self::new(Status::Unauthorized, ErrorCode::InvalidClient, "Client authentication failed.");
        ApiError { www_authenticate: basic.then(|| "Basic realm=\"portcullis\"".to_owned()), ..error }
    }

    /// 401 for a request that carried no credentials at all: a bare `Bearer` challenge.
    pub fn missing_token() -> Self {
        Self::other_scheme("An access token is required.")
    }

    /// 401 `invalid_token` for credentials of another scheme than Bearer at a bearer endpoint: a
    /// bare `Bearer` challenge, as for none (RFC 6750 §3.1: no bearer token to judge).
    pub fn other_scheme(description: impl Into<Cow<'static, str>>) -> Self {
        ApiError { challenge: Challenge::Bare, ..Self::new(Status::Unauthorized, ErrorCode::InvalidToken, description) }
    }

    /// 401 `invalid_credentials`: the same answer for an unknown email and a wrong password.
    pub fn invalid_credentials() -> Self {
        Self::new(Status::Unauthorized, ErrorCode::InvalidCredentials, "The email or password is incorrect.")
    }

    /// 401 `invalid_grant`: refresh token unknown, used, expired or revoked.
    pub fn invalid_grant(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(Status::Unauthorized, ErrorCode::InvalidGrant, description)
    }

    /// 400 `invalid_target` (RFC 8707 §2): a `resource` that is not one of `auth.resources`,
    /// or not the one a session is bound to.
    pub fn invalid_target(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(Status::BadRequest, ErrorCode::InvalidTarget, description)
    }

    /// 403 `insufficient_permissions`; to a bearer-authenticated request with
    /// `WWW-Authenticate: Bearer error="insufficient_scope", ...` (as every 403 to one).
    pub fn forbidden(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(Status::Forbidden, ErrorCode::InsufficientPermissions, description)
    }

    /// 403 `mfa_required`: at login with the `mfa_token` of the second step; at `/admin`
    /// without one (the token's login did not use a second factor), where the challenge says
    /// `error="insufficient_user_authentication"` (RFC 9470 §3).
    pub fn mfa_required(description: impl Into<Cow<'static, str>>, mfa_token: Option<crate::config::Secret>) -> Self {
        ApiError {
            challenge: Challenge::InsufficientUserAuthentication,
            mfa_token,
            ..Self::new(Status::Forbidden, ErrorCode::MfaRequired, description)
        }
    }

    /// The same error listing the account's second factors as `mfa_methods` (contract v3,
    /// "Second factors").
    pub fn with_mfa_methods(self, methods: impl IntoIterator<Item = &'static str>) -> Self {
        ApiError { mfa_methods: Some(Box::new(MfaMethods(methods.into_iter().collect()))), ..self }
    }

    pub fn account_disabled() -> Self {
        Self::new(Status::Forbidden, ErrorCode::AccountDisabled, "This account is disabled.")
    }

    pub fn not_found(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(Status::NotFound, ErrorCode::NotFound, description)
    }

    pub fn conflict(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(Status::Conflict, ErrorCode::Conflict, description)
    }

    pub fn payload_too_large() -> Self {
        Self::new(Status::PayloadTooLarge, ErrorCode::PayloadTooLarge, "The request body is too large.")
    }

    /// 429 with `Retry-After` in whole seconds (at least 1).
    pub fn too_many_requests(retry_after: u64) -> Self {
        ApiError {
            retry_after: Some(retry_after.max(1)),
            ..Self::new(Status::TooManyRequests, ErrorCode::TooManyRequests, "Too many failed attempts; retry later.")
        }
    }

    /// 500: logs the cause (see `Cause`), shows nothing of it.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        ApiError {
            cause: Some(Cause::new(log::Level::Error, format!("internal error: {cause}"))),
            ..Self::new(Status::InternalServerError, ErrorCode::ServerError, "The server failed to handle the request.")
        }
    }

    /// 503 with `Retry-After`: logs the cause (see `Cause`), shows nothing of it.
    pub fn unavailable(cause: impl std::fmt::Display) -> Self {
        ApiError {
            cause: Some(Cause::new(log::Level::Warn, format!("service unavailable: {cause}"))),
            ..Self::service_unavailable()
        }
    }

    /// 503 `unavailable` with `Retry-After` ([`RETRY_UNAVAILABLE_AFTER`]): the database does
    /// not answer; the pool reconnects by itself once it does.
    fn service_unavailable() -> Self {
        ApiError {
            retry_after: Some(RETRY_UNAVAILABLE_AFTER),
            ..Self::new(Status::ServiceUnavailable, ErrorCode::Unavailable, "The service is temporarily unavailable.")
        }
    }

    /// The default error for a status when no guard said more.
    pub fn for_status(status: Status) -> Self {
        match status.code {
            400 => Self::bad_request("The request is malformed."),
            401 => Self::missing_token(),
            403 => Self::forbidden("This requires a permission the caller does not have."),
            404 => Self::not_found("No such resource."),
            413 => Self::payload_too_large(),
            422 => Self::invalid_field("The request body has an invalid value."),
            429 => Self::too_many_requests(1),
            503 => Self::service_unavailable(),
            500..=599 => Self::new(status, ErrorCode::ServerError, "The server failed to handle the request."),
            _ => Self::new(status, ErrorCode::InvalidRequest, status.reason_lossy().to_string()),
        }
    }
}

impl<'r> Responder<'r, 'static> for ApiError {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        if let Some(cause) = &self.cause {
            cause.log_for(req);
        }
        let body = ErrorBody {
            error: self.code,
            error_description: &self.description,
            mfa_token: self.mfa_token.as_ref().map(|t| t.expose()),
            mfa_methods: self.mfa_methods.as_ref().map(|m| m.0.as_slice()),
        };
        let mut response = Response::build_from(Json(body).respond_to(req)?);
        response.status(self.status).header(Header::new("Cache-Control", "no-store"));
        // A 401 or 403 to a bearer-authenticated request names what was wrong with its token
        // (the rules are in `portcullis_rocket::core::challenge`).
        let authorization = req.headers().get_one("Authorization");
        let bearer = || self.challenge.header(self.status.code, &self.description, authorization);
        if let Some(challenge) = self.www_authenticate.or_else(bearer) {
            response.header(Header::new("WWW-Authenticate", challenge));
        }
        if let Some(seconds) = self.retry_after {
            response.header(Header::new("Retry-After", seconds.to_string()));
        }
        response.ok()
    }
}

/// Request-local record of why a guard failed, read by the catcher.
struct GuardFailure(Mutex<Option<ApiError>>);

/// Records `error` for the catcher and returns its status, for a guard's `Outcome::Error`.
pub fn reject(req: &Request<'_>, error: ApiError) -> Status {
    let status = error.status;
    let slot = req.local_cache(|| GuardFailure(Mutex::new(None)));
    if let Ok(mut slot) = slot.0.lock() {
        slot.get_or_insert(error);
    }
    status
}

#[rocket::catch(default)]
fn default_catcher(status: Status, req: &Request<'_>) -> ApiError {
    let recorded = req
        .local_cache(|| GuardFailure(Mutex::new(None)))
        .0
        .lock()
        .ok()
        .and_then(|slot| slot.clone())
        .filter(|e| e.status == status);
    recorded.unwrap_or_else(|| ApiError::for_status(status))
}

/// JSON catchers for every status.
pub fn catchers() -> Vec<Catcher> {
    rocket::catchers![default_catcher]
}
