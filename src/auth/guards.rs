//! Request guards: the bridge between Rocket and the auth core.
//!
//! [`Principal`] proves a valid access token of a live session: a handler that takes it cannot
//! run without that check. The token is verified once per request (cached in request-local
//! state), against the in-memory revocation set rather than the database. Failures are recorded
//! for the catcher, which answers 401 with the RFC 6750 challenge in the contract's JSON shape.

use rocket::outcome::Outcome;
use rocket::request::{self, FromRequest, Request};

use super::permissions::Permission;
use super::Auth;
use crate::db::Id;
use crate::error::{reject, ApiError};
use std::marker::PhantomData;

/// The authenticated caller: who, in which session, with which roles (from the token).
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

fn authenticate(req: &Request<'_>) -> Result<Principal, ApiError> {
    let token = bearer_token(req)?;
    let auth = req.rocket().state::<Auth>().ok_or_else(|| ApiError::internal("auth state is not managed"))?;
    let claims = auth.keys.verify(token, auth.clock.now()).map_err(ApiError::invalid_token)?;
    if auth.revoked.contains(claims.sid) {
        return Err(ApiError::invalid_token("The session of this access token has ended."));
    }
    if auth.role_changes.is_stale(claims.sub, &claims.roles) {
        return Err(ApiError::invalid_token("A role of this access token was taken away; refresh it."));
    }
    Ok(Principal {
        user_id: claims.sub,
        session_id: claims.sid,
        roles: claims.roles,
        expires_at: claims.exp,
        amr: claims.amr,
    })
}

/// Request-local cache of the verification result.
struct Verified(Result<Principal, ApiError>);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Principal {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> request::Outcome<Self, ()> {
        match &req.local_cache(|| Verified(authenticate(req))).0 {
            Ok(principal) => Outcome::Success(principal.clone()),
            Err(e) => Outcome::Error((reject(req, e.clone()), ())),
        }
    }
}

/// The user whose token a guard verified for this request, if any (for the access log).
pub fn verified_user(req: &Request<'_>) -> Option<Id> {
    req.local_cache(|| Verified(Err(ApiError::missing_token()))).0.as_ref().ok().map(|p| p.user_id)
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

/// Proof that the caller holds permission `P` through one of the roles in their token.
/// Without a valid token: 401 as for [`Principal`]; with one but without `P`: 403
/// `insufficient_permissions`. Roles resolve through the in-memory role table.
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
///     format!("report for {}", who.user_id)
/// }
/// ```
#[derive(Debug)]
pub struct Authorized<P: Permission> {
    pub principal: Principal,
    permission: PhantomData<P>,
}

impl<P: Permission> std::ops::Deref for Authorized<P> {
    type Target = Principal;
    fn deref(&self) -> &Principal {
        &self.principal
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
        let principal = match Principal::from_request(req).await {
            Outcome::Success(principal) => principal,
            Outcome::Error(e) => return Outcome::Error(e),
            Outcome::Forward(status) => return Outcome::Forward(status),
        };
        let Some(auth) = req.rocket().state::<Auth>() else {
            return Outcome::Error((reject(req, ApiError::internal("auth state is not managed")), ()));
        };
        if needs_mfa(&auth.config.mfa_required_roles, &principal) {
            let error = ApiError::mfa_required(
                "Your role requires multi-factor authentication: enrol at /auth/mfa/totp, then log in again.",
                None,
            );
            return Outcome::Error((reject(req, error), ()));
        }
        if auth.roles.grants(&principal.roles, P::NAME) {
            Outcome::Success(Authorized { principal, permission: PhantomData })
        } else {
            let error = ApiError::forbidden(format!("This requires the {} permission.", P::NAME));
            Outcome::Error((reject(req, error), ()))
        }
    }
}
