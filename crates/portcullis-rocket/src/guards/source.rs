//! What the guards ask of whoever vouches for tokens. Portcullis implements [`Source`] over its
//! signing keys, revocation set and role table; a resource server's [`Trust`](crate::Trust) over
//! the JWKS and the change feed. The guards do the rest the same way for both.

use std::borrow::Cow;
use std::fmt::{Debug, Display};

use rocket::http::Status;
use rocket::request::Request;
use rocket::{Orbit, Rocket};

use super::Caller;
use crate::core::AccessClaims;

/// The id type of a source's tokens, naming its [`Source`]: `String` for a resource server
/// (with the `remote` feature), Portcullis's UUID `Id` for Portcullis. The guards are generic over
/// it (`User<I>`, `Authorized<P, I>`), so a handler's types say which source vouches.
/// `Display` writes an id as it appears in tokens (a client token's `client_id` is compared with it).
pub trait Identity: Clone + Debug + Display + PartialEq + Send + Sync + 'static {
    /// Where the guards find keys and changes for tokens with these ids.
    type Source: Source<Self>;
}

/// The errors guards answer with: the app's own error type, recorded for its catchers.
pub trait GuardError: Clone + Debug + Send + Sync + 'static {
    /// 401 for a request without credentials (a bare `Bearer` challenge, RFC 6750 §3.1).
    fn missing_token() -> Self;
    /// 401 `invalid_token` with the RFC 6750 challenge.
    fn invalid_token(description: Cow<'static, str>) -> Self;
    /// 401 for an `Authorization` header of another scheme than Bearer: a bare `Bearer` challenge,
    /// as for no credentials (RFC 6750 §3.1), saying why in the body. By default
    /// [`missing_token`](GuardError::missing_token).
    fn other_scheme(_description: Cow<'static, str>) -> Self {
        Self::missing_token()
    }
    /// 403 `insufficient_permissions`.
    fn forbidden(description: Cow<'static, str>) -> Self;
    /// Records the error for the app's catchers; the status for the guard's `Outcome::Error`.
    fn record(&self, req: &Request<'_>) -> Status;
}

/// Verification and the current authorization state, for tokens whose ids are `I`.
#[rocket::async_trait]
pub trait Source<I>: Send + Sync + 'static {
    /// What the guards fail with.
    type Error: GuardError;

    /// The sentence of the 403 a service client gets from a user-only guard.
    const USERS_ONLY: &'static str = "This endpoint is for users; client tokens cannot use it.";
    /// The sentence of the 403 a user gets from a client-only guard.
    const CLIENTS_ONLY: &'static str = "This endpoint is for service clients.";

    /// The source the app manages (an error when it is not attached).
    fn of(rocket: &Rocket<Orbit>) -> Result<&Self, Self::Error>;

    /// The token's claims once its signature, header and claims verify
    /// ([`core::verify`](fn@crate::core::verify)), or why not.
    async fn verify(&self, token: &str) -> Result<AccessClaims<I>, Self::Error>;

    /// Why verified claims must still be refused: [`core::refusal`](fn@crate::core::refusal) over the
    /// source's change state.
    fn refusal(&self, claims: &AccessClaims<I>) -> Option<&'static str>;

    /// Whether any of a user's `roles` grants `permission` now.
    fn grants(&self, roles: &[String], permission: &str) -> bool;

    /// A rule of the source's own that every permission guard applies before the permission
    /// (Portcullis: a role that requires MFA); by default none. Asynchronous, with the request,
    /// so that a refusal may say more than the token does (Portcullis lists the account's second
    /// factors, read from its database, only on that refusal's path).
    async fn admits(&self, _req: &Request<'_>, _caller: &Caller<I>) -> Result<(), Self::Error> {
        Ok(())
    }
}
