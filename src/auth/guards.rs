//! Request guards: the bridge between Rocket and the auth core.
//!
//! The token is verified once per request (cached in request-local state), against the
//! in-memory revocation set rather than the database, and yields an [`Actor`]: a user in a
//! session ([`Principal`]) or a service client ([`ClientPrincipal`]). The guard types say which
//! a handler serves: [`Principal`] is for "my account" handlers and answers a client token 403
//! `insufficient_permissions`; [`Authorized<P>`] accepts either, when it holds permission `P`.
//! Failures are recorded for the catcher, which answers 401 with the RFC 6750 challenge in the
//! contract's JSON shape.

use portcullis_rocket::core;
use rocket::outcome::Outcome;
use rocket::request::{self, FromRequest, Request};

use super::permissions::Permission;
use super::tokens::Subject;
use super::Auth;
use crate::db::Id;
use crate::error::{reject, ApiError};
use std::marker::PhantomData;

/// The authenticated user: who, in which session, with which roles (from the token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user_id: Id,
    pub session_id: Id,
    pub roles: Vec<String>,
    /// `exp` of the presented token.
    pub expires_at: i64,
    /// `amr` of the presented token (RFC 8176).
    pub amr: Vec<String>,
}

/// An authenticated service client (a client-credentials token): which, with which permissions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientPrincipal {
    pub client_id: Id,
    /// The permissions of the token's `scope`.
    pub scope: Vec<String>,
    /// `exp` of the presented token.
    pub expires_at: i64,
}

/// Whoever presented a valid access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    User(Principal),
    Client(ClientPrincipal),
}

impl Actor {
    /// The id recorded as the actor of audit events: the user id or the client id.
    pub fn id(&self) -> Id {
        match self {
            Actor::User(user) => user.user_id,
            Actor::Client(client) => client.client_id,
        }
    }

    /// The caller's session, for a user.
    pub fn session_id(&self) -> Option<Id> {
        match self {
            Actor::User(user) => Some(user.session_id),
            Actor::Client(_) => None,
        }
    }

    /// Whether the caller holds `permission`: through a role of a user's token, or in the
    /// scope of a client's.
    pub fn holds(&self, auth: &Auth, permission: &str) -> bool {
        match self {
            Actor::User(user) => auth.roles.grants(&user.roles, permission),
            Actor::Client(client) => client.scope.iter().any(|p| p == permission),
        }
    }
}

/// Extracts the token of an `Authorization: Bearer <token>` header (scheme case-insensitive).
fn bearer_token<'a>(req: &'a Request<'_>) -> Result<&'a str, ApiError> {
    let header = req.headers().get_one("Authorization").ok_or_else(ApiError::missing_token)?;
    let (scheme, token) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(ApiError::invalid_token("The Authorization header must use the Bearer scheme."));
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(ApiError::invalid_token("The bearer token is empty."));
    }
    Ok(token)
}

fn authenticate(req: &Request<'_>) -> Result<Actor, ApiError> {
    let token = bearer_token(req)?;
    let auth = req.rocket().state::<Auth>().ok_or_else(|| ApiError::internal("auth state is not managed"))?;
    let claims = auth.keys.verify(token, auth.clock.now()).map_err(ApiError::invalid_token)?;
    // The refusal rule is the verification core's, shared with resource servers.
    if let Some(reason) = core::refusal(&claims, auth) {
        return Err(ApiError::invalid_token(reason));
    }
    match claims.subject() {
        Some(Subject::User { user_id, session_id, .. }) => {
            let (user_id, session_id) = (*user_id, *session_id);
            let roles = claims.roles.unwrap_or_default();
            Ok(Actor::User(Principal { user_id, session_id, roles, expires_at: claims.exp, amr: claims.amr }))
        }
        Some(Subject::Client { client_id, scope }) => {
            let scope = scope.split_ascii_whitespace().map(str::to_owned).collect();
            Ok(Actor::Client(ClientPrincipal { client_id: *client_id, scope, expires_at: claims.exp }))
        }
        None => Err(ApiError::invalid_token("The access token is invalid.")),
    }
}

/// Request-local cache of the verification result.
struct Verified(Result<Actor, ApiError>);

fn verified<'r>(req: &'r Request<'_>) -> &'r Result<Actor, ApiError> {
    &req.local_cache(|| Verified(authenticate(req))).0
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Actor {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> request::Outcome<Self, ()> {
        match verified(req) {
            Ok(actor) => Outcome::Success(actor.clone()),
            Err(e) => Outcome::Error((reject(req, e.clone()), ())),
        }
    }
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Principal {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> request::Outcome<Self, ()> {
        match verified(req) {
            Ok(Actor::User(principal)) => Outcome::Success(principal.clone()),
            Ok(Actor::Client(_)) => {
                let error =
                    ApiError::forbidden("This endpoint is about a user's own account; client tokens cannot use it.");
                Outcome::Error((reject(req, error), ()))
            }
            Err(e) => Outcome::Error((reject(req, e.clone()), ())),
        }
    }
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for ClientPrincipal {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> request::Outcome<Self, ()> {
        match verified(req) {
            Ok(Actor::Client(client)) => Outcome::Success(client.clone()),
            Ok(Actor::User(_)) => {
                let error = ApiError::forbidden("This endpoint is for service clients.");
                Outcome::Error((reject(req, error), ()))
            }
            Err(e) => Outcome::Error((reject(req, e.clone()), ())),
        }
    }
}

/// Who a guard verified for this request, if anyone (for the access log): a user or a client.
pub fn verified_actor(req: &Request<'_>) -> Option<Actor> {
    req.local_cache(|| Verified(Err(ApiError::missing_token()))).0.as_ref().ok().cloned()
}

/// Where a request came from, recorded on sessions and audit events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientInfo {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for ClientInfo {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> request::Outcome<Self, ()> {
        let user_agent = req.headers().get_one("User-Agent").map(|ua| ua.chars().take(256).collect());
        Outcome::Success(ClientInfo { ip: req.client_ip().map(|ip| ip.to_string()), user_agent })
    }
}

/// Proof that the caller holds permission `P`: a user through one of the roles in their token
/// (resolved through the in-memory role table), a client through its token's scope. Without a
/// valid token: 401 as for [`Principal`]; with one but without `P`: 403
/// `insufficient_permissions`.
///
/// This is also where `auth.mfa_required_roles` is enforced, once for every permission-guarded
/// (`/admin`) route: a holder of such a role whose token's login did not use a second factor
/// (no `otp` in `amr`) gets 403 `mfa_required`, whatever the permission.
///
/// ```no_run
/// use portcullis::auth::{guards::Authorized, permissions::UsersRead};
///
/// #[rocket::get("/reports")]
/// fn reports(who: Authorized<UsersRead>) -> String {
///     format!("report for {}", who.id())
/// }
/// ```
#[derive(Debug)]
pub struct Authorized<P: Permission> {
    pub actor: Actor,
    permission: PhantomData<P>,
}

impl<P: Permission> std::ops::Deref for Authorized<P> {
    type Target = Actor;
    fn deref(&self) -> &Actor {
        &self.actor
    }
}

/// Whether `principal` holds one of `required_roles` without having used a second factor.
fn needs_mfa(required_roles: &[String], principal: &Principal) -> bool {
    principal.roles.iter().any(|r| required_roles.contains(r)) && !principal.amr.iter().any(|m| m == "otp")
}

#[rocket::async_trait]
impl<'r, P: Permission> FromRequest<'r> for Authorized<P> {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> request::Outcome<Self, ()> {
        let actor = match verified(req) {
            Ok(actor) => actor,
            Err(e) => return Outcome::Error((reject(req, e.clone()), ())),
        };
        let Some(auth) = req.rocket().state::<Auth>() else {
            return Outcome::Error((reject(req, ApiError::internal("auth state is not managed")), ()));
        };
        // A client has no second factor to use and no roles: `mfa_required_roles` concerns users.
        if let Actor::User(principal) = actor {
            if needs_mfa(&auth.config.mfa_required_roles, principal) {
                let error = ApiError::mfa_required(
                    "Your role requires multi-factor authentication: enrol at /auth/mfa/totp, then log in again.",
                    None,
                );
                return Outcome::Error((reject(req, error), ()));
            }
        }
        if actor.holds(auth, P::NAME) {
            Outcome::Success(Authorized { actor: actor.clone(), permission: PhantomData })
        } else {
            let error = ApiError::forbidden(format!("This requires the {} permission.", P::NAME));
            Outcome::Error((reject(req, error), ()))
        }
    }
}
