//! The request guards: [`User`], [`Client`], [`Caller`] (either) and [`Authorized<P>`]. A token is
//! verified once per request (cached in request-local state) against the keys and the change
//! feed held in memory: no call to Portcullis per request.

use std::marker::PhantomData;

use rocket::outcome::Outcome;
use rocket::request::{self, FromRequest, Request};

use crate::core::{Permission, Subject};
use crate::error::{reject, AuthError};
use crate::trust::Trust;

/// An authenticated user: whose token, in which session, with which roles and `amr`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub sub: String,
    pub sid: String,
    pub roles: Vec<String>,
    /// How the user authenticated (RFC 8176 values; empty when the token does not say).
    pub amr: Vec<String>,
    /// `exp` of the token.
    pub expires_at: i64,
}

/// An authenticated service client (a client-credentials token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    pub client_id: String,
    /// The permissions of the token's scope.
    pub scope: Vec<String>,
    pub expires_at: i64,
}

/// Whoever presented a valid token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    User(User),
    Client(Client),
}

impl Caller {
    /// `sub`: the user id or the client id.
    pub fn id(&self) -> &str {
        match self {
            Caller::User(user) => &user.sub,
            Caller::Client(client) => &client.client_id,
        }
    }
}

fn bearer<'a>(req: &'a Request<'_>) -> Result<&'a str, AuthError> {
    let header = req.headers().get_one("Authorization").ok_or_else(AuthError::missing_token)?;
    let (scheme, token) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthError::invalid_token("The Authorization header must use the Bearer scheme."));
    }
    match token.trim() {
        "" => Err(AuthError::invalid_token("The bearer token is empty.")),
        token => Ok(token),
    }
}

async fn authenticate(req: &Request<'_>) -> Result<(Caller, Trust), AuthError> {
    let token = bearer(req)?;
    let trust = req
        .rocket()
        .state::<Trust>()
        .ok_or_else(|| AuthError::unavailable("The Portcullis fairing is not attached."))?;
    if !trust.fresh_enough() {
        return Err(AuthError::unavailable("The authorization state is too old to trust; try again later."));
    }
    let claims = trust.verify(token).await.map_err(|e| AuthError::invalid_token(e.description()))?;
    if let Some(reason) = trust.changes().refusal(&claims) {
        return Err(AuthError::invalid_token(reason));
    }
    let caller = match claims.subject() {
        Some(Subject::User { user_id, session_id, roles }) => Caller::User(User {
            sub: user_id.to_owned(),
            sid: session_id.to_owned(),
            roles: roles.to_vec(),
            amr: claims.amr.clone(),
            expires_at: claims.exp,
        }),
        Some(Subject::Client { client_id, scope }) => Caller::Client(Client {
            client_id: client_id.to_owned(),
            scope: scope.split_ascii_whitespace().map(str::to_owned).collect(),
            expires_at: claims.exp,
        }),
        None => return Err(AuthError::invalid_token("The access token is invalid.")),
    };
    Ok((caller, trust.clone()))
}

struct Verified(Result<(Caller, Trust), AuthError>);

async fn verified<'r>(req: &'r Request<'_>) -> &'r Result<(Caller, Trust), AuthError> {
    &req.local_cache_async(async { Verified(authenticate(req).await) }).await.0
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Caller {
    type Error = AuthError;

    async fn from_request(req: &'r Request<'_>) -> request::Outcome<Self, AuthError> {
        match verified(req).await {
            Ok((caller, _)) => Outcome::Success(caller.clone()),
            Err(e) => Outcome::Error((reject(req, e.clone()), e.clone())),
        }
    }
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for User {
    type Error = AuthError;

    async fn from_request(req: &'r Request<'_>) -> request::Outcome<Self, AuthError> {
        match verified(req).await {
            Ok((Caller::User(user), _)) => Outcome::Success(user.clone()),
            Ok((Caller::Client(_), _)) => {
                let e = AuthError::forbidden("This endpoint is for users; client tokens cannot use it.");
                Outcome::Error((reject(req, e.clone()), e))
            }
            Err(e) => Outcome::Error((reject(req, e.clone()), e.clone())),
        }
    }
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Client {
    type Error = AuthError;

    async fn from_request(req: &'r Request<'_>) -> request::Outcome<Self, AuthError> {
        match verified(req).await {
            Ok((Caller::Client(client), _)) => Outcome::Success(client.clone()),
            Ok((Caller::User(_), _)) => {
                let e = AuthError::forbidden("This endpoint is for service clients.");
                Outcome::Error((reject(req, e.clone()), e))
            }
            Err(e) => Outcome::Error((reject(req, e.clone()), e.clone())),
        }
    }
}

/// Proof that the caller holds permission `P`: a user through a role of their token (resolved
/// through the role table of the feed), a client through its token's scope. Without a valid
/// token: 401; with one but without `P`: 403 `insufficient_permissions`.
///
/// ```
/// portcullis_rocket::permission!(ReportsRead = "reports:read");
///
/// #[rocket::get("/reports")]
/// fn reports(caller: portcullis_rocket::Authorized<ReportsRead>) -> String {
///     format!("reports for {}", caller.id())
/// }
/// ```
#[derive(Debug)]
pub struct Authorized<P: Permission> {
    pub caller: Caller,
    permission: PhantomData<P>,
}

impl<P: Permission> std::ops::Deref for Authorized<P> {
    type Target = Caller;
    fn deref(&self) -> &Caller {
        &self.caller
    }
}

#[rocket::async_trait]
impl<'r, P: Permission> FromRequest<'r> for Authorized<P> {
    type Error = AuthError;

    async fn from_request(req: &'r Request<'_>) -> request::Outcome<Self, AuthError> {
        let (caller, trust) = match verified(req).await {
            Ok(verified) => verified,
            Err(e) => return Outcome::Error((reject(req, e.clone()), e.clone())),
        };
        let holds = match caller {
            Caller::User(user) => trust.changes().roles_grant(&user.roles, P::NAME),
            Caller::Client(client) => client.scope.iter().any(|p| p == P::NAME),
        };
        if holds {
            Outcome::Success(Authorized { caller: caller.clone(), permission: PhantomData })
        } else {
            let e = AuthError::forbidden(format!("This requires the {} permission.", P::NAME));
            Outcome::Error((reject(req, e.clone()), e))
        }
    }
}
