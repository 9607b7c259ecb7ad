//! Request guards: the bridge between Rocket and the auth core.
//!
//! The guard types are the `portcullis-rocket` crate's, the same a resource server uses, read
//! with Portcullis's UUID [`Id`]s: this module makes [`Auth`] their [`Source`] — tokens verified
//! with the service's keys, refused through the in-memory revocation and role-change sets (no
//! database round trip), roles resolved through the in-memory role table. A token is verified once
//! per request and yields an [`Caller`]: a user in a session ([`User`]) or a service client
//! ([`Client`]). [`User`] is for "my account" handlers and answers a client token
//! 403 `insufficient_permissions`; [`Authorized<P>`] accepts either, when it holds permission `P`.
//! Failures are recorded for the catcher, which answers 401 with the RFC 6750 challenge in the
//! contract's JSON shape.

use std::borrow::Cow;

use portcullis_rocket::core::{self, AccessClaims};
use portcullis_rocket::guards::{self, GuardError, Identity, Source};
use rocket::http::Status;
use rocket::outcome::Outcome;
use rocket::request::{self, FromRequest, Request};
use rocket::{Orbit, Rocket};

use crate::auth::mfa::methods::mfa_required;
use crate::auth::Auth;
use crate::db::{Db, Id};
use crate::error::{reject, ApiError};

/// The authenticated user: who, in which session, with which roles and `amr` (from the token).
pub type User = guards::User<Id>;

/// An authenticated service client (a client-credentials token): which, with which permissions.
pub type Client = guards::Client<Id>;

/// Whoever presented a valid access token; its `id()` is the actor of audit events.
pub type Caller = guards::Caller<Id>;

/// Proof that the caller holds permission `P`: a user through one of the roles in their token
/// (resolved through the in-memory role table), and only when a down-scoped token's `scope`
/// names `P` too; a client through its token's scope. Without a
/// valid token: 401 as for [`User`]; with one but without `P`: 403
/// `insufficient_permissions`.
///
/// This is also where `auth.mfa_required_roles` is enforced, once for every permission-guarded
/// (`/admin`) route ([`Source::admits`]): a holder of such a role whose token's login did not use
/// a second factor (no `otp` in `amr`) gets 403 `mfa_required`, whatever the permission.
///
/// ```no_run
/// use portcullis::auth::{guards::Authorized, permissions::UsersRead};
///
/// #[rocket::get("/reports")]
/// fn reports(who: Authorized<UsersRead>) -> String {
///     format!("report for {}", who.id())
/// }
/// ```
pub type Authorized<P> = guards::Authorized<P, Id>;

/// Portcullis's tokens name their user, session and client by UUID; [`Auth`] vouches for them.
impl Identity for Id {
    type Source = Auth;
}

#[rocket::async_trait]
impl Source<Id> for Auth {
    type Error = ApiError;

    const USERS_ONLY: &'static str = "This endpoint is about a user's own account; client tokens cannot use it.";

    fn of(rocket: &Rocket<Orbit>) -> Result<&Self, ApiError> {
        rocket.state::<Auth>().ok_or_else(|| ApiError::internal("auth state is not managed"))
    }

    async fn verify(&self, token: &str) -> Result<AccessClaims<Id>, ApiError> {
        self.keys.verify(token, self.clock.now()).map_err(ApiError::invalid_token)
    }

    /// The verification core's rule, answered from the in-memory sets (see `auth::refusal`).
    fn refusal(&self, claims: &AccessClaims<Id>) -> Option<&'static str> {
        core::refusal(claims, self)
    }

    fn grants(&self, roles: &[String], permission: &str) -> bool {
        self.roles.grants(roles, permission)
    }

    /// `auth.mfa_required_roles`. A client has no second factor to use and no roles: the rule
    /// concerns users. The 403 lists the account's second factors (`mfa_methods`, contract v3
    /// "Second factors"): empty until the user enrols one, then what to log in again with. Only
    /// this refusal reads the database; an admitted request costs nothing more.
    async fn admits(&self, req: &Request<'_>, caller: &Caller) -> Result<(), ApiError> {
        let Caller::User(principal) = caller else { return Ok(()) };
        if !needs_mfa(&self.config.mfa_required_roles, principal) {
            return Ok(());
        }
        let methods = match req.rocket().state::<Db>() {
            Some(db) => self.mfa_methods_of(db, principal.user_id).await?,
            None => vec![],
        };
        Err(mfa_required(
            "Your role requires multi-factor authentication: enrol at /auth/mfa/totp, then log in again.",
            None,
            &methods,
        ))
    }
}

/// Whether `principal` holds one of `required_roles` without having used a second factor.
fn needs_mfa(required_roles: &[String], principal: &User) -> bool {
    principal.roles.iter().any(|r| required_roles.contains(r))
        && !principal.amr.iter().any(|m| m == "otp" || m == "mfa")
}

impl GuardError for ApiError {
    fn missing_token() -> Self {
        ApiError::missing_token()
    }
    fn invalid_token(description: Cow<'static, str>) -> Self {
        ApiError::invalid_token(description)
    }
    fn other_scheme(description: Cow<'static, str>) -> Self {
        ApiError::other_scheme(description)
    }
    fn forbidden(description: Cow<'static, str>) -> Self {
        ApiError::forbidden(description)
    }
    fn record(&self, req: &Request<'_>) -> Status {
        reject(req, self.clone())
    }
}

/// Who a guard verified for this request, if anyone (for the access log): a user or a client.
pub fn verified_actor(req: &Request<'_>) -> Option<Caller> {
    guards::verified_caller::<Id>(req)
}

/// Where a request came from, recorded on sessions and audit events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestOrigin {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for RequestOrigin {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> request::Outcome<Self, ()> {
        let user_agent = req.headers().get_one("User-Agent").map(|ua| ua.chars().take(256).collect());
        Outcome::Success(RequestOrigin { ip: req.client_ip().map(|ip| ip.to_string()), user_agent })
    }
}
