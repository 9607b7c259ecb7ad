//! `/auth/*`: registration, login, refresh, logout and session management.

use rocket::http::Status;
use rocket::serde::json::Json;
use rocket::{delete, get, post, State};
use rocket_db_pools::Connection;
use serde::Deserialize;

use super::body::{JsonBody, OptionalJson};
use super::metrics::{counted_login, counted_refresh};
use super::responses::{
    AccountDisabled, BadCredentials, BadRequest, BadTokenRequest, Conflict, ErrorObject, Forbidden, InvalidGrant,
    LoginForbidden, PayloadTooLarge, TooManyRequests, Unauthorized, Unavailable, Unprocessable,
};
use super::views::{SessionList, TokenResponse, UserView};
use super::NoStore;
use crate::auth::accounts::{create_user, Creation};
use crate::auth::first_party::FirstPartyUser;
use crate::auth::guards::{self, RequestOrigin};
use crate::auth::mfa::methods::mfa_required;
use crate::auth::registration_limit::count_registration;
use crate::auth::session::binding::Refresher;
use crate::auth::session::login::LoginOutcome;
use crate::auth::Auth;
use crate::config::Registration;
use crate::db::{Db, Id};
use crate::error::{ApiError, ApiResult};
use crate::models::FIRST_PARTY_CLIENT;
use crate::page::Page;
use crate::routes::query::SingleValued;

#[derive(Deserialize, utoipa::ToSchema)]
struct Credentials {
    #[schema(example = "alice@example.com")]
    email: String,
    #[schema(example = "correct horse battery", min_length = 8, max_length = 128)]
    password: String,
}

/// Login: the credentials, and optionally the resource server the tokens are for and the scope
/// they are down-scoped to.
#[derive(Deserialize, utoipa::ToSchema)]
struct LoginBody {
    #[schema(example = "alice@example.com")]
    email: String,
    #[schema(example = "correct horse battery")]
    password: String,
    /// One of `auth.resources` (RFC 8707): the access tokens of the session are for it alone
    /// (`aud`), and Portcullis's own endpoints refuse them. Another is 400 `invalid_target`.
    #[schema(example = "https://reports.example")]
    resource: Option<String>,
    /// Down-scopes the session: space-separated permission names (OpenID Connect values such as
    /// `openid` may stand beside them). Its tokens carry `scope` and grant only the permissions
    /// both named here and held through the user's roles at the time of each request. A
    /// permission the user does not hold (or that does not exist) is 400 `invalid_scope`.
    #[schema(example = "users:read openid")]
    scope: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
struct RefreshBody {
    refresh_token: String,
    /// As at login; a session started for a resource may repeat it or leave it out.
    #[schema(example = "https://reports.example")]
    resource: Option<String>,
    /// Narrows this access token's scope: a part of the scope the session was granted at login
    /// (more is 400 `invalid_scope`, and the refresh token is not spent); without it, that scope
    /// again. For a session started without a scope: permissions the user holds.
    #[schema(example = "users:read")]
    scope: Option<String>,
}

/// Optional: the session ends whether or not the refresh token is given.
#[derive(Deserialize, utoipa::ToSchema)]
struct LogoutBody {
    #[allow(dead_code)]
    refresh_token: Option<String>,
}

/// Creates an account with the default role.
#[utoipa::path(tag = "auth", request_body = Credentials, responses(
    (status = 201, description = "The new account.", body = UserView), BadRequest,
    (status = 403, description = "`insufficient_permissions`: registration is closed.", body = ErrorObject),
    Conflict, PayloadTooLarge, Unprocessable, TooManyRequests, Unavailable))]
#[post("/auth/register", data = "<body>")]
async fn register(
    auth: &State<Auth>,
    db: &State<Db>,
    client: RequestOrigin,
    body: JsonBody<Credentials>,
) -> ApiResult<(Status, Json<UserView>)> {
    if auth.config.registration == Registration::Closed {
        return Err(ApiError::forbidden("Registration is closed; an administrator creates accounts."));
    }
    let now = auth.clock.now();
    count_registration(&mut db.conn().await?, &auth.config, client.ip.as_deref(), now).await?;
    let user = create_user(auth, db, &body.0.email, &body.0.password, &[], Creation::Registration(&client)).await?;
    Ok((Status::Created, Json(user.into())))
}

/// Starts a session.
#[utoipa::path(tag = "auth", request_body = LoginBody, responses(
    (status = 200, description = "Tokens of the new session.", body = TokenResponse),
    BadTokenRequest, BadCredentials, LoginForbidden, PayloadTooLarge, TooManyRequests, Unavailable))]
#[post("/auth/login", data = "<body>")]
async fn login(
    auth: &State<Auth>,
    db: &State<Db>,
    client: RequestOrigin,
    body: JsonBody<LoginBody>,
) -> ApiResult<NoStore<Json<TokenResponse>>> {
    let LoginBody { email, password, resource, scope } = &body.0;
    let (resource, scope) = (resource.as_deref(), scope.as_deref());
    let outcome = auth.login(db, email, password, resource, scope, FIRST_PARTY_CLIENT, &client).await;
    let tokens = login_answer(counted_login(outcome))?;
    Ok(NoStore::new(Json(tokens)))
}

/// A login's answer: its session's tokens, or when the account has MFA on the 403
/// `mfa_required` answer carrying the `mfa_token` of the second step.
pub(super) fn login_answer(outcome: ApiResult<LoginOutcome>) -> ApiResult<TokenResponse> {
    match outcome? {
        LoginOutcome::Session(tokens) => Ok(tokens.into()),
        LoginOutcome::SecondFactor { mfa_token, methods } => Err(mfa_required(
            "The password is correct; complete the login with a second factor at POST /auth/mfa/verify.",
            Some(mfa_token),
            &methods,
        )),
    }
}

/// Exchanges a refresh token (once) for new tokens of the same session.
#[utoipa::path(tag = "auth", request_body = RefreshBody, responses(
    (status = 200, description = "New tokens; the presented refresh token is spent.", body = TokenResponse),
    BadTokenRequest, InvalidGrant, AccountDisabled, PayloadTooLarge, Unavailable))]
#[post("/auth/refresh", data = "<body>")]
async fn refresh(
    auth: &State<Auth>,
    mut db: Connection<Db>,
    client: RequestOrigin,
    body: JsonBody<RefreshBody>,
) -> ApiResult<NoStore<Json<TokenResponse>>> {
    let RefreshBody { refresh_token, resource, scope } = &body.0;
    let (resource, scope) = (resource.as_deref(), scope.as_deref());
    // Only sessions of `portcullis` and of public clients (`auth::session::binding`).
    let refresher = Refresher::FirstParty;
    let mut tokens = counted_refresh(auth.refresh(&mut db, refresh_token, resource, scope, refresher, &client).await)?;
    // A public client's session a code started answers a new ID token here too.
    auth.add_refreshed_id_token(&mut db, &mut tokens).await?;
    Ok(NoStore::new(Json(tokens.into())))
}

/// Ends the session of the access token.
#[utoipa::path(tag = "auth", security(("bearer" = []), ("oauth2" = [])),
    request_body(content = Option<LogoutBody>, description = "`{}`, a refresh token, or no body."),
    responses((status = 204, description = "The session has ended."), BadRequest, Unauthorized, Forbidden, PayloadTooLarge,
        Unavailable))]
#[post("/auth/logout", data = "<_body>")]
async fn logout(
    auth: &State<Auth>,
    me: guards::User,
    mut db: Connection<Db>,
    client: RequestOrigin,
    _body: OptionalJson<LogoutBody>,
) -> ApiResult<Status> {
    auth.end_own_session(&mut db, &me, me.session_id, "logout", &client).await?;
    Ok(Status::NoContent)
}

/// Ends every session of the caller.
#[utoipa::path(tag = "auth", security(("bearer" = []), ("oauth2" = [])),
    responses((status = 204, description = "Every session has ended."), Unauthorized, Forbidden, Unavailable))]
#[post("/auth/logout-all")]
async fn logout_all(
    auth: &State<Auth>,
    me: FirstPartyUser,
    mut db: Connection<Db>,
    client: RequestOrigin,
) -> ApiResult<Status> {
    auth.end_all_sessions(&mut db, me.user_id, me.user_id, "sessions_revoked", &client).await?;
    Ok(Status::NoContent)
}

/// The caller's live sessions, newest first; `current` marks the one of this access token.
#[utoipa::path(tag = "auth", security(("bearer" = []), ("oauth2" = [])),
    params(("limit" = Option<u32>, Query, description = "Page size: default 50; more than 200 counts as 200."),
        ("offset" = Option<u32>, Query, description = "How many to skip; default 0.")),
    responses((status = 200, description = "One page of the live sessions.", body = SessionList), Unauthorized,
        Forbidden, Unprocessable, Unavailable))]
#[get("/auth/sessions?<limit>&<offset>")]
async fn sessions(
    auth: &State<Auth>,
    me: FirstPartyUser,
    _single: SingleValued,
    mut db: Connection<Db>,
    limit: Option<&str>,
    offset: Option<&str>,
) -> ApiResult<Json<SessionList>> {
    let page = Page::parse(limit, offset)?;
    let sessions = auth.list_sessions(&mut db, me.user_id, page).await?;
    Ok(Json(SessionList::new(&sessions, Some(me.session_id))))
}

/// Ends one of the caller's sessions.
#[utoipa::path(tag = "auth", security(("bearer" = []), ("oauth2" = [])),
    params(("id" = uuid::Uuid, Path, description = "A session id.")),
    responses((status = 204, description = "The session has ended."), Unauthorized, Forbidden,
        (status = 404, description = "`not_found`: no such session of the caller.", body = ErrorObject), Unavailable))]
#[delete("/auth/sessions/<id>")]
async fn end_session(
    auth: &State<Auth>,
    me: guards::User,
    mut db: Connection<Db>,
    client: RequestOrigin,
    id: &str,
) -> ApiResult<Status> {
    let not_found = || ApiError::not_found("No such session.");
    let id: Id = id.parse().map_err(|_| not_found())?;
    // Any session may end itself; only a first-party one ends the user's others
    // (`auth::first_party`).
    if id != me.session_id {
        auth.require_first_party(&mut db, &me).await?;
    }
    if !auth.end_own_session(&mut db, &me, id, "logout", &client).await? {
        return Err(not_found());
    }
    Ok(Status::NoContent)
}

pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![register, login, refresh, logout, logout_all, sessions, end_session]
}
