//! `/auth/*`: registration, login, refresh, logout and session management.

use rocket::http::Status;
use rocket::serde::json::Json;
use rocket::State;
use rocket_db_pools::Connection;
use serde::Deserialize;

use super::body::{JsonBody, OptionalJson};
use super::NoStore;
use crate::auth::accounts::{create_user, UserView};
use crate::auth::guards::{ClientInfo, Principal};
use crate::auth::sessions::{SessionView, TokenResponse};
use crate::auth::Auth;
use crate::config::Registration;
use crate::db::{Db, Id};
use crate::error::{ApiError, ApiResult};

#[derive(Deserialize)]
struct Credentials {
    email: String,
    password: String,
}

#[derive(Deserialize)]
struct RefreshBody {
    refresh_token: String,
}

#[derive(Deserialize)]
struct LogoutBody {
    #[allow(dead_code)]
    refresh_token: Option<String>,
}

#[derive(serde::Serialize)]
struct SessionList {
    sessions: Vec<SessionView>,
}

#[rocket::post("/auth/register", data = "<body>")]
async fn register(
    auth: &State<Auth>,
    mut db: Connection<Db>,
    body: JsonBody<Credentials>,
) -> ApiResult<(Status, Json<UserView>)> {
    if auth.config.registration == Registration::Closed {
        return Err(ApiError::forbidden("Registration is closed; an administrator creates accounts."));
    }
    let user = create_user(auth, &mut db, &body.0.email, &body.0.password, &[]).await?;
    Ok((Status::Created, Json(user)))
}

#[rocket::post("/auth/login", data = "<body>")]
async fn login(
    auth: &State<Auth>,
    mut db: Connection<Db>,
    client: ClientInfo,
    body: JsonBody<Credentials>,
) -> ApiResult<NoStore<Json<TokenResponse>>> {
    let tokens = auth.login(&mut db, &body.0.email, &body.0.password, &client).await?;
    Ok(NoStore::new(Json(tokens)))
}

#[rocket::post("/auth/refresh", data = "<body>")]
async fn refresh(
    auth: &State<Auth>,
    mut db: Connection<Db>,
    client: ClientInfo,
    body: JsonBody<RefreshBody>,
) -> ApiResult<NoStore<Json<TokenResponse>>> {
    let tokens = auth.refresh(&mut db, &body.0.refresh_token, &client).await?;
    Ok(NoStore::new(Json(tokens)))
}

#[rocket::post("/auth/logout", data = "<_body>")]
async fn logout(
    auth: &State<Auth>,
    me: Principal,
    mut db: Connection<Db>,
    client: ClientInfo,
    _body: OptionalJson<LogoutBody>,
) -> ApiResult<Status> {
    auth.end_own_session(&mut db, &me, me.session_id, "logout", &client).await?;
    Ok(Status::NoContent)
}

#[rocket::post("/auth/logout-all")]
async fn logout_all(
    auth: &State<Auth>,
    me: Principal,
    mut db: Connection<Db>,
    client: ClientInfo,
) -> ApiResult<Status> {
    auth.end_all_sessions(&mut db, me.user_id, me.user_id, "sessions_revoked", &client).await?;
    Ok(Status::NoContent)
}

#[rocket::get("/auth/sessions")]
async fn sessions(auth: &State<Auth>, me: Principal, mut db: Connection<Db>) -> ApiResult<Json<SessionList>> {
    let sessions = auth.list_sessions(&mut db, me.user_id, Some(me.session_id)).await?;
    Ok(Json(SessionList { sessions }))
}

#[rocket::delete("/auth/sessions/<id>")]
async fn end_session(
    auth: &State<Auth>,
    me: Principal,
    mut db: Connection<Db>,
    client: ClientInfo,
    id: &str,
) -> ApiResult<Status> {
    let not_found = || ApiError::not_found("No such session.");
    let id: Id = id.parse().map_err(|_| not_found())?;
    if !auth.end_own_session(&mut db, &me, id, "logout", &client).await? {
        return Err(not_found());
    }
    Ok(Status::NoContent)
}

pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![register, login, refresh, logout, logout_all, sessions, end_session]
}
