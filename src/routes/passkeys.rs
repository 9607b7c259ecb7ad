//! `/auth/passkeys/*` and `POST /auth/mfa/passkey`: passkeys (WebAuthn Level 2). The rules live
//! in `auth::mfa::passkey`; docs/passkeys.md tells how a browser uses these endpoints.
//!
//! `publicKey` and `credential` are the WebAuthn Level 3 JSON serialization (base64url binary
//! fields): what `PublicKeyCredential.parseCreationOptionsFromJSON` takes and `toJSON()` gives.

use rocket::http::Status;
use rocket::serde::json::Json;
use rocket::{delete, get, post, State};
use rocket_db_pools::Connection;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::body::JsonBody;
use super::responses::{BadRequest, ErrorObject, Forbidden, NotFound, PayloadTooLarge, TooManyRequests, Unavailable};
use super::views::TokenResponse;
use super::NoStore;
use crate::auth::first_party::FirstPartyUser;
use crate::auth::guards::RequestOrigin;
use crate::auth::mfa::passkey::manage::Reauth;
use crate::auth::mfa::passkey::public_key_options;
use crate::auth::session::login::LoginOutcome;
use crate::auth::Auth;
use crate::clock::rfc3339;
use crate::db::{Db, Id};
use crate::error::{ApiError, ApiResult};
use crate::models::PasskeyRow;

/// Re-authentication: the account's password, or a TOTP code (or recovery code).
#[derive(Deserialize, utoipa::ToSchema)]
pub(super) struct ReauthBody {
    #[schema(example = "correct horse battery")]
    password: Option<String>,
    #[schema(example = "492039")]
    code: Option<String>,
}

impl ReauthBody {
    fn reauth(&self) -> ApiResult<Reauth<'_>> {
        match (&self.password, &self.code) {
            (Some(password), _) => Ok(Reauth::Password(password)),
            (None, Some(code)) => Ok(Reauth::Code(code)),
            (None, None) => Err(ApiError::bad_request("Give the account's password or a code.")),
        }
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
pub(super) struct RegisterFinish {
    ceremony_id: String,
    /// What the person calls this passkey (1 to 64 characters).
    #[schema(example = "Laptop")]
    name: String,
    /// `PublicKeyCredential.toJSON()` of `navigator.credentials.create()`.
    #[schema(value_type = Object)]
    credential: Value,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub(super) struct SignInStart {
    /// Offer this account's passkeys; without it, any discoverable credential.
    email: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub(super) struct SignInFinish {
    ceremony_id: String,
    /// `PublicKeyCredential.toJSON()` of `navigator.credentials.get()`.
    #[schema(value_type = Object)]
    credential: Value,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub(super) struct SecondStepStart {
    /// From the 403 `mfa_required` answer of the login.
    mfa_token: String,
}

/// A ceremony begun: its id and the options to hand to `navigator.credentials`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CeremonyStart {
    ceremony_id: String,
    #[serde(rename = "publicKey")]
    #[schema(value_type = Object)]
    public_key: Value,
}

/// A passkey of the caller.
#[derive(Serialize, utoipa::ToSchema)]
pub struct PasskeyView {
    id: Id,
    name: String,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    last_used_at: Option<String>,
}

impl From<PasskeyRow> for PasskeyView {
    fn from(row: PasskeyRow) -> Self {
        PasskeyView {
            id: row.id,
            name: row.name,
            created_at: rfc3339(row.created_at),
            last_used_at: row.last_used_at.map(rfc3339),
        }
    }
}

/// A passkey just added; the account's first second factor also brings its recovery codes,
/// shown this once.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AddedPasskey {
    #[serde(flatten)]
    passkey: PasskeyView,
    #[serde(skip_serializing_if = "Option::is_none")]
    recovery_codes: Option<Vec<String>>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PasskeyList {
    passkeys: Vec<PasskeyView>,
}

/// Parses a WebAuthn JSON value: 400 `invalid_request` naming `credential` when it is not one.
pub(super) fn parse_credential<T: DeserializeOwned>(value: Value) -> ApiResult<T> {
    serde_json::from_value(value).map_err(|e| ApiError::bad_request(format!("credential: {e}")))
}

/// `{"ceremony_id", "publicKey"}` of a ceremony begun.
fn ceremony(ceremony_id: String, options: impl Serialize) -> ApiResult<NoStore<Json<CeremonyStart>>> {
    let public_key = public_key_options(options)?;
    Ok(NoStore::new(Json(CeremonyStart { ceremony_id, public_key })))
}

/// Starts adding a passkey, after re-authentication.
#[utoipa::path(tag = "passkeys", operation_id = "passkey_register", security(("bearer" = []), ("oauth2" = [])), request_body = ReauthBody, responses(
    (status = 200, description = "The creation options and the ceremony that finishes them.", body = CeremonyStart),
    BadRequest, (status = 401, description = "`invalid_token`, or `invalid_credentials`: wrong password or code.", body = ErrorObject),
    Forbidden, (status = 409, description = "`conflict`: 10 passkeys already, or no TOTP for a code.", body = ErrorObject),
    PayloadTooLarge, TooManyRequests, Unavailable))]
#[post("/auth/passkeys/register", data = "<body>")]
async fn register(
    auth: &State<Auth>,
    me: FirstPartyUser,
    db: &State<Db>,
    client: RequestOrigin,
    body: JsonBody<ReauthBody>,
) -> ApiResult<NoStore<Json<CeremonyStart>>> {
    let (id, options) = auth.start_passkey_registration(db, &me, body.0.reauth()?, &client).await?;
    ceremony(id, options)
}

/// Finishes adding a passkey with the authenticator's answer.
#[utoipa::path(tag = "passkeys", operation_id = "passkey_register_finish", security(("bearer" = []), ("oauth2" = [])), request_body = RegisterFinish, responses(
    (status = 201, description = "The passkey; with the account's first second factor, its ten recovery codes.", body = AddedPasskey),
    (status = 400, description = "`invalid_grant`: the ceremony is unknown, used or expired; or a malformed credential.", body = ErrorObject),
    (status = 401, description = "`invalid_token`, or `invalid_credentials`: the answer did not verify.", body = ErrorObject),
    Forbidden, (status = 409, description = "`conflict`: 10 passkeys already, or this credential is registered.", body = ErrorObject),
    (status = 422, description = "`invalid_request`: the name.", body = ErrorObject), PayloadTooLarge, Unavailable))]
#[post("/auth/passkeys/register/finish", data = "<body>")]
async fn register_finish(
    auth: &State<Auth>,
    me: FirstPartyUser,
    mut db: Connection<Db>,
    client: RequestOrigin,
    body: JsonBody<RegisterFinish>,
) -> ApiResult<(Status, NoStore<Json<AddedPasskey>>)> {
    let RegisterFinish { ceremony_id, name, credential } = body.0;
    let credential = parse_credential(credential)?;
    let (row, codes) =
        auth.finish_passkey_registration(&mut db, &me, &ceremony_id, &name, &credential, &client).await?;
    let added = AddedPasskey { passkey: row.into(), recovery_codes: codes.map(|c| c.recovery_codes) };
    Ok((Status::Created, NoStore::new(Json(added))))
}

/// The caller's passkeys.
#[utoipa::path(tag = "passkeys", operation_id = "passkey_list", security(("bearer" = []), ("oauth2" = [])), responses(
    (status = 200, description = "Oldest first.", body = PasskeyList), (status = 401, description = "`invalid_token`.", body = ErrorObject),
    Forbidden, Unavailable))]
#[get("/auth/passkeys")]
async fn list(auth: &State<Auth>, me: FirstPartyUser, mut db: Connection<Db>) -> ApiResult<Json<PasskeyList>> {
    let passkeys = auth.list_passkeys(&mut db, &me).await?.into_iter().map(Into::into).collect();
    Ok(Json(PasskeyList { passkeys }))
}

/// Removes one of the caller's passkeys, after re-authentication.
#[utoipa::path(tag = "passkeys", operation_id = "passkey_remove", security(("bearer" = []), ("oauth2" = [])), request_body = ReauthBody,
    params(("id" = uuid::Uuid, Path, description = "A passkey id.")), responses(
    (status = 204, description = "Removed."), BadRequest,
    (status = 401, description = "`invalid_token`, or `invalid_credentials`: wrong password or code.", body = ErrorObject),
    Forbidden, NotFound, PayloadTooLarge, TooManyRequests, Unavailable))]
#[delete("/auth/passkeys/<id>", data = "<body>")]
async fn remove(
    auth: &State<Auth>,
    me: FirstPartyUser,
    db: &State<Db>,
    client: RequestOrigin,
    id: &str,
    body: JsonBody<ReauthBody>,
) -> ApiResult<Status> {
    let id: Id = id.parse().map_err(|_| ApiError::not_found("No such passkey."))?;
    auth.remove_passkey(db, &me, id, body.0.reauth()?, &client).await?;
    Ok(Status::NoContent)
}

/// Starts a passwordless sign-in (user verification required).
#[utoipa::path(tag = "passkeys", operation_id = "passkey_login", request_body = SignInStart, responses(
    (status = 200, description = "The request options; the same shape for any email.", body = CeremonyStart),
    BadRequest, PayloadTooLarge, Unavailable))]
#[post("/auth/passkeys/login", data = "<body>")]
async fn login(
    auth: &State<Auth>,
    db: &State<Db>,
    body: JsonBody<SignInStart>,
) -> ApiResult<NoStore<Json<CeremonyStart>>> {
    let (id, options) = auth.start_passkey_sign_in(db, body.0.email.as_deref()).await?;
    ceremony(id, options)
}

/// Finishes a passwordless sign-in: `amr` `["hwk","user","mfa"]`.
#[utoipa::path(tag = "passkeys", operation_id = "passkey_login_finish", request_body = SignInFinish, responses(
    (status = 200, description = "Tokens of the new session.", body = TokenResponse),
    (status = 400, description = "`invalid_grant`: the ceremony is unknown, used or expired; or a malformed credential.", body = ErrorObject),
    (status = 401, description = "`invalid_credentials`: the passkey was not accepted.", body = ErrorObject),
    (status = 403, description = "`account_disabled`.", body = ErrorObject), PayloadTooLarge, TooManyRequests, Unavailable))]
#[post("/auth/passkeys/login/finish", data = "<body>")]
async fn login_finish(
    auth: &State<Auth>,
    db: &State<Db>,
    client: RequestOrigin,
    body: JsonBody<SignInFinish>,
) -> ApiResult<NoStore<Json<TokenResponse>>> {
    let SignInFinish { ceremony_id, credential } = body.0;
    let credential = parse_credential(credential)?;
    let signed_in = super::metrics::counted_passkey(
        "passwordless",
        auth.finish_passkey_sign_in(db, &ceremony_id, &credential, &client).await,
    );
    let tokens = super::auth::login_answer(super::metrics::counted_login(signed_in.map(LoginOutcome::Session)))?;
    Ok(NoStore::new(Json(tokens)))
}

/// Starts the second step of a password login with a passkey; finish at `POST /auth/mfa/verify`.
#[utoipa::path(tag = "mfa", operation_id = "mfa_passkey", request_body = SecondStepStart, responses(
    (status = 200, description = "The request options.", body = CeremonyStart), BadRequest,
    (status = 401, description = "`invalid_grant`: the `mfa_token` is unknown, used, expired or spent.", body = ErrorObject),
    (status = 409, description = "`conflict`: the account has no passkey.", body = ErrorObject),
    PayloadTooLarge, TooManyRequests, Unavailable))]
#[post("/auth/mfa/passkey", data = "<body>")]
async fn second_step(
    auth: &State<Auth>,
    db: &State<Db>,
    body: JsonBody<SecondStepStart>,
) -> ApiResult<NoStore<Json<CeremonyStart>>> {
    let (id, options) = auth.start_passkey_second_step(db, &body.0.mfa_token).await?;
    ceremony(id, options)
}

pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![register, register_finish, list, remove, login, login_finish, second_step]
}
