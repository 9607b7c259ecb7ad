//! `/auth/mfa/*` and `DELETE /admin/users/<id>/mfa`: TOTP enrolment, the second step of a
//! login, recovery codes and the administrator's reset. The rules live in `auth::mfa`.

use rocket::http::Status;
use rocket::serde::json::Json;
use rocket::{delete, post, State};
use rocket_db_pools::Connection;
use serde::Deserialize;

use super::body::JsonBody;
use super::responses::{
    AccountDisabled, BadRequest, ErrorObject, Forbidden, NotFound, PayloadTooLarge, TooManyRequests, Unauthorized,
    Unavailable,
};
use super::views::{RecoveryCodesView, TokenResponse, TotpEnrolmentView};
use super::NoStore;
use crate::auth::first_party::FirstPartyUser;
use crate::auth::guards::{Authorized, RequestOrigin};
use crate::auth::permissions::UsersWrite;
use crate::auth::session::login::LoginOutcome;
use crate::auth::Auth;
use crate::db::Db;
use crate::error::ApiResult;

#[derive(Deserialize, utoipa::ToSchema)]
struct PasswordBody {
    #[schema(example = "correct horse battery")]
    password: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
struct CodeBody {
    /// The 6-digit code the authenticator app shows.
    #[schema(example = "492039")]
    code: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
struct PasswordAndCode {
    #[schema(example = "correct horse battery")]
    password: String,
    /// A 6-digit code, or one of the recovery codes.
    #[schema(example = "492039")]
    code: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
struct VerifyBody {
    /// From the 403 `mfa_required` answer of the login.
    mfa_token: String,
    /// A 6-digit code, or one of the recovery codes (or, with a passkey, `ceremony_id` and
    /// `credential` instead).
    #[schema(example = "492039")]
    code: Option<String>,
    /// From `POST /auth/mfa/passkey`.
    ceremony_id: Option<String>,
    /// `PublicKeyCredential.toJSON()` of `navigator.credentials.get()`.
    #[schema(value_type = Option<Object>)]
    credential: Option<serde_json::Value>,
}

/// 401 for a wrong password or code in the bearer-authenticated MFA routes.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
enum WrongSecret {
    /// `invalid_token` (see the other routes), or `invalid_credentials`: the password or the code is
    /// wrong (counted toward the login throttle).
    #[response(status = 401)]
    Wrong(#[to_schema] ErrorObject),
}

/// Starts TOTP enrolment: a new pending secret (replacing a pending one) to give an authenticator
/// app; MFA is on once a first code confirms it.
#[utoipa::path(tag = "mfa", security(("bearer" = []), ("oauth2" = [])), request_body = PasswordBody, responses(
    (status = 201, description = "The pending secret and its `otpauth://` URI (what a QR code encodes).",
        body = TotpEnrolmentView),
    BadRequest, WrongSecret, Forbidden, (status = 409, description = "`conflict`: MFA is already on.", body = ErrorObject),
    PayloadTooLarge, TooManyRequests, Unavailable))]
#[post("/auth/mfa/totp", data = "<body>")]
async fn enrol(
    auth: &State<Auth>,
    me: FirstPartyUser,
    db: &State<Db>,
    client: RequestOrigin,
    body: JsonBody<PasswordBody>,
) -> ApiResult<(Status, NoStore<Json<TotpEnrolmentView>>)> {
    let enrolment = auth.enrol_totp(db, &me, &body.0.password, &client).await?;
    Ok((Status::Created, NoStore::new(Json(enrolment.into()))))
}

/// Confirms enrolment with a first code: MFA is on, every other session of the caller ends, and
/// ten recovery codes are shown, this once.
#[utoipa::path(tag = "mfa", security(("bearer" = []), ("oauth2" = [])), request_body = CodeBody, responses(
    (status = 200, description = "MFA is on; the recovery codes.", body = RecoveryCodesView),
    BadRequest, WrongSecret, Forbidden,
    (status = 409, description = "`conflict`: MFA is already on, or no enrolment is pending.", body = ErrorObject),
    PayloadTooLarge, Unavailable))]
#[post("/auth/mfa/totp/confirm", data = "<body>")]
async fn confirm(
    auth: &State<Auth>,
    me: FirstPartyUser,
    mut db: Connection<Db>,
    client: RequestOrigin,
    body: JsonBody<CodeBody>,
) -> ApiResult<NoStore<Json<RecoveryCodesView>>> {
    Ok(NoStore::new(Json(auth.confirm_totp(&mut db, &me, &body.0.code, &client).await?.into())))
}

/// Turns MFA off, with the password and a code (or a recovery code).
#[utoipa::path(tag = "mfa", security(("bearer" = []), ("oauth2" = [])), request_body = PasswordAndCode, responses(
    (status = 204, description = "MFA is off."), BadRequest, WrongSecret, Forbidden,
    (status = 409, description = "`conflict`: MFA is not on.", body = ErrorObject),
    PayloadTooLarge, TooManyRequests, Unavailable))]
#[delete("/auth/mfa/totp", data = "<body>")]
async fn disable(
    auth: &State<Auth>,
    me: FirstPartyUser,
    db: &State<Db>,
    client: RequestOrigin,
    body: JsonBody<PasswordAndCode>,
) -> ApiResult<Status> {
    auth.disable_totp(db, &me, &body.0.password, &body.0.code, &client).await?;
    Ok(Status::NoContent)
}

/// Replaces the recovery codes, with the password and a code (or a recovery code).
#[utoipa::path(tag = "mfa", security(("bearer" = []), ("oauth2" = [])), request_body = PasswordAndCode, responses(
    (status = 200, description = "The new set; the old one no longer works.", body = RecoveryCodesView),
    BadRequest, WrongSecret, Forbidden, (status = 409, description = "`conflict`: MFA is not on.", body = ErrorObject),
    PayloadTooLarge, TooManyRequests, Unavailable))]
#[post("/auth/mfa/recovery-codes", data = "<body>")]
async fn recovery_codes(
    auth: &State<Auth>,
    me: FirstPartyUser,
    db: &State<Db>,
    client: RequestOrigin,
    body: JsonBody<PasswordAndCode>,
) -> ApiResult<NoStore<Json<RecoveryCodesView>>> {
    Ok(NoStore::new(Json(auth.new_recovery_codes(db, &me, &body.0.password, &body.0.code, &client).await?.into())))
}

/// The second step of a login with MFA on: the `mfa_token` of the 403 `mfa_required` answer
/// and a code (or a recovery code) start the session, down-scoped to the `scope` of the
/// password step if it had one.
#[utoipa::path(tag = "mfa", request_body = VerifyBody, responses(
    (status = 200, description = "Tokens of the new session (`amr` `[\"pwd\",\"otp\",\"mfa\"]`, with a passkey \
        `[\"pwd\",\"hwk\",\"mfa\"]`).",
        body = TokenResponse),
    (status = 400, description = "`invalid_request`: malformed body; or `invalid_scope`: the `scope` of the \
        password step names a permission the user does not hold (judged after the code, which is then used).",
        body = ErrorObject),
    (status = 401, description = "`invalid_credentials`: the code is wrong or was used already; or \
        `invalid_grant`: the `mfa_token` is unknown, used, expired or has had 5 wrong codes.", body = ErrorObject),
    AccountDisabled, PayloadTooLarge, TooManyRequests, Unavailable))]
#[post("/auth/mfa/verify", data = "<body>")]
async fn verify(
    auth: &State<Auth>,
    db: &State<Db>,
    client: RequestOrigin,
    body: JsonBody<VerifyBody>,
) -> ApiResult<NoStore<Json<TokenResponse>>> {
    let VerifyBody { mfa_token, code, ceremony_id, credential } = body.0;
    let verified = match (code, ceremony_id, credential) {
        (Some(code), _, _) => auth.verify_mfa(db, &mfa_token, &code, &client).await,
        (None, Some(ceremony_id), Some(credential)) => {
            let credential = super::passkeys::parse_credential(credential)?;
            auth.verify_mfa_passkey(db, &mfa_token, &ceremony_id, &credential, &client).await
        }
        _ => Err(crate::error::ApiError::bad_request("Give a code, or a ceremony_id and a credential.")),
    };
    let tokens = super::auth::login_answer(super::metrics::counted_login(verified.map(LoginOutcome::Session)))?;
    Ok(NoStore::new(Json(tokens)))
}

/// Turns a user's MFA off (a lost authenticator) and ends every session of the user. Needs
/// `users:write`.
#[utoipa::path(tag = "admin", operation_id = "reset_user_mfa", security(("bearer" = []), ("oauth2" = []), ("client_credentials" = [])),
    params(("id" = uuid::Uuid, Path, description = "A user id.")),
    responses((status = 204, description = "MFA is off; every session of the user has ended."), Unauthorized,
        Forbidden, NotFound, Unavailable))]
#[delete("/admin/users/<id>/mfa")]
async fn reset(
    auth: &State<Auth>,
    who: Authorized<UsersWrite>,
    mut db: Connection<Db>,
    client: RequestOrigin,
    id: &str,
) -> ApiResult<Status> {
    let id = super::admin::path_id(id, "user")?;
    auth.reset_mfa(&mut db, &who, id, &client).await?;
    Ok(Status::NoContent)
}

pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![enrol, confirm, disable, recovery_codes, verify, reset]
}
