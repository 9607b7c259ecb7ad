//! The request guards: [`User`], [`Client`], [`Caller`] (either) and [`Authorized<P>`], one set of
//! types for Portcullis's own routes and for any resource server. A token is verified once per
//! request (cached in request-local state) by the [`Source`] its id type names, against what the
//! source holds in memory: no database or network call per request.
//!
//! A resource server writes `User`, `Authorized<P>` (ids as strings, vouched for by the fairing's
//! [`Trust`](crate::Trust)); Portcullis writes `User<Id>`, `Authorized<P, Id>`.

use std::marker::PhantomData;

use rocket::outcome::Outcome;
use rocket::request::{self, FromRequest, Request};

use crate::core::{AccessClaims, Permission, Subject};

mod source;

pub use source::{GuardError, Identity, Source};

/// The error type of the guards of ids `I`.
type ErrorOf<I> = <<I as Identity>::Source as Source<I>>::Error;

/// An authenticated user: whose token, in which session, with which roles, scope and `amr`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User<I = String> {
    /// `sub`.
    pub user_id: I,
    /// `sid`.
    pub session_id: I,
    pub roles: Vec<String>,
    /// The values of `scope` when the session is down-scoped (permission names, and OpenID
    /// Connect values such as `openid`): the user may then use only the permissions of its roles
    /// that these name ([`Caller::holds`]). `None`: the roles alone decide.
    pub scope: Option<Vec<String>>,
    /// How the user authenticated (RFC 8176 values; empty when the token does not say).
    pub amr: Vec<String>,
    /// `exp` of the token.
    pub expires_at: i64,
    /// The client the session belongs to (`client_id`, RFC 9068 §2.2): `portcullis` for a
    /// sign-in at Portcullis itself, else a registered client's id; `None` from tokens issued
    /// before Portcullis version 3.
    pub client_id: Option<String>,
}

/// An authenticated service client (a client-credentials token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client<I = String> {
    pub client_id: I,
    /// The permissions of the token's scope.
    pub scope: Vec<String>,
    /// `exp` of the token.
    pub expires_at: i64,
}

/// Whoever presented a valid token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller<I = String> {
    User(User<I>),
    Client(Client<I>),
}

impl<I> Caller<I> {
    /// `sub`: the user id or the client id.
    pub fn id(&self) -> &I {
        match self {
            Caller::User(user) => &user.user_id,
            Caller::Client(client) => &client.client_id,
        }
    }

    /// The caller's session, for a user.
    pub fn session_id(&self) -> Option<&I> {
        match self {
            Caller::User(user) => Some(&user.session_id),
            Caller::Client(_) => None,
        }
    }
}

impl<I> User<I> {
    /// Whether the token's scope lets the user use `permission` (always, without a scope).
    /// What the user holds is another question: see [`Caller::holds`].
    pub fn scope_allows(&self, permission: &str) -> bool {
        self.scope.as_ref().is_none_or(|scope| scope.iter().any(|p| p == permission))
    }
}

impl<I: Identity> Caller<I> {
    /// Whether the caller holds `permission` now: a user through a role of their token, as the
    /// source's role table resolves it now, and, in a down-scoped session, only when the token's
    /// `scope` names it too (the contract's "scope ∩ the permissions of its roles"); a client in
    /// its token's scope. A role the user has lost since the token was issued is the refusal
    /// rule's ([`core::refusal`](fn@crate::core::refusal)): such a token is refused whole.
    pub fn holds(&self, source: &I::Source, permission: &str) -> bool {
        match self {
            Caller::User(user) => user.scope_allows(permission) && source.grants(&user.roles, permission),
            Caller::Client(client) => client.scope.iter().any(|p| p == permission),
        }
    }

    fn from_claims(claims: AccessClaims<I>) -> Option<Self> {
        Some(match claims.subject()? {
            Subject::User { user_id, session_id, scope, .. } => Caller::User(User {
                user_id: user_id.clone(),
                session_id: session_id.clone(),
                roles: claims.roles.clone().unwrap_or_default(),
                scope: scope.map(|scope| scope.split_ascii_whitespace().map(str::to_owned).collect()),
                amr: claims.amr,
                expires_at: claims.exp,
                client_id: claims.client_id.clone(),
            }),
            Subject::Client { client_id, scope } => Caller::Client(Client {
                client_id: client_id.clone(),
                scope: scope.split_ascii_whitespace().map(str::to_owned).collect(),
                expires_at: claims.exp,
            }),
        })
    }
}

/// The token of an `Authorization: Bearer <token>` header (scheme case-insensitive).
fn bearer<'a, E: GuardError>(req: &'a Request<'_>) -> Result<&'a str, E> {
    let header = req.headers().get_one("Authorization").ok_or_else(E::missing_token)?;
    let (scheme, token) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(E::other_scheme("The Authorization header must use the Bearer scheme.".into()));
    }
    match token.trim() {
        "" => Err(E::invalid_token("The bearer token is empty.".into())),
        token => Ok(token),
    }
}

async fn authenticate<I: Identity>(req: &Request<'_>) -> Result<Caller<I>, ErrorOf<I>> {
    let token = bearer(req)?;
    let source = I::Source::of(req.rocket())?;
    let claims = source.verify(token).await?;
    if let Some(reason) = source.refusal(&claims) {
        return Err(GuardError::invalid_token(reason.into()));
    }
    Caller::from_claims(claims).ok_or_else(|| GuardError::invalid_token("The access token is invalid.".into()))
}

/// Request-local cache of the verification.
struct Verified<I: Identity>(Result<Caller<I>, ErrorOf<I>>);

async fn verified<'r, I: Identity>(req: &'r Request<'_>) -> &'r Result<Caller<I>, ErrorOf<I>> {
    &req.local_cache_async(async { Verified::<I>(authenticate(req).await) }).await.0
}

/// Who a guard verified for this request, if one ran (for an access log); never verifies.
pub fn verified_caller<I: Identity>(req: &Request<'_>) -> Option<Caller<I>> {
    req.local_cache(|| Verified::<I>(Err(GuardError::missing_token()))).0.as_ref().ok().cloned()
}

fn refuse<T, E: GuardError>(req: &Request<'_>, error: E) -> request::Outcome<T, E> {
    Outcome::Error((error.record(req), error))
}

#[rocket::async_trait]
impl<'r, I: Identity> FromRequest<'r> for Caller<I> {
    type Error = ErrorOf<I>;

    async fn from_request(req: &'r Request<'_>) -> request::Outcome<Self, Self::Error> {
        match verified::<I>(req).await {
            Ok(caller) => Outcome::Success(caller.clone()),
            Err(e) => refuse(req, e.clone()),
        }
    }
}

#[rocket::async_trait]
impl<'r, I: Identity> FromRequest<'r> for User<I> {
    type Error = ErrorOf<I>;

    async fn from_request(req: &'r Request<'_>) -> request::Outcome<Self, Self::Error> {
        match verified::<I>(req).await {
            Ok(Caller::User(user)) => Outcome::Success(user.clone()),
            Ok(Caller::Client(_)) => refuse(req, GuardError::forbidden(I::Source::USERS_ONLY.into())),
            Err(e) => refuse(req, e.clone()),
        }
    }
}

#[rocket::async_trait]
impl<'r, I: Identity> FromRequest<'r> for Client<I> {
    type Error = ErrorOf<I>;

    async fn from_request(req: &'r Request<'_>) -> request::Outcome<Self, Self::Error> {
        match verified::<I>(req).await {
            Ok(Caller::Client(client)) => Outcome::Success(client.clone()),
            Ok(Caller::User(_)) => refuse(req, GuardError::forbidden(I::Source::CLIENTS_ONLY.into())),
            Err(e) => refuse(req, e.clone()),
        }
    }
}

/// Proof that the caller holds permission `P` ([`Caller::holds`]): a user through a role of their
/// token (resolved through the source's role table), within the token's scope when it has one; a
/// client through its token's scope. Without a valid token:
/// 401; with one but without `P`: 403 `insufficient_permissions` (after the source's own rule,
/// [`Source::admits`]).
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
pub struct Authorized<P: Permission, I = String> {
    pub caller: Caller<I>,
    permission: PhantomData<P>,
}

impl<P: Permission, I> std::ops::Deref for Authorized<P, I> {
    type Target = Caller<I>;
    fn deref(&self) -> &Caller<I> {
        &self.caller
    }
}

#[rocket::async_trait]
impl<'r, P: Permission, I: Identity> FromRequest<'r> for Authorized<P, I> {
    type Error = ErrorOf<I>;

    async fn from_request(req: &'r Request<'_>) -> request::Outcome<Self, Self::Error> {
        let caller = match verified::<I>(req).await {
            Ok(caller) => caller,
            Err(e) => return refuse(req, e.clone()),
        };
        let source = match I::Source::of(req.rocket()) {
            Ok(source) => source,
            Err(e) => return refuse(req, e),
        };
        if let Err(e) = source.admits(req, caller).await {
            return refuse(req, e);
        }
        if caller.holds(source, P::NAME) {
            Outcome::Success(Authorized { caller: caller.clone(), permission: PhantomData })
        } else {
            refuse(req, GuardError::forbidden(format!("This requires the {} permission.", P::NAME).into()))
        }
    }
}

#[cfg(feature = "remote")]
mod remote;
