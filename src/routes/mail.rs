//! The mail endpoints (docs/mail.md): forgotten password and reset, email verification and
//! email change. Without `mail.smtp_url` each answers 503 `unavailable` (after the bearer check
//! where there is one).

use rocket::http::Status;
use rocket::serde::json::Json;
use rocket::{post, State};
use serde::{Deserialize, Serialize};

use super::body::JsonBody;
use super::responses::{
    BadRequest, ErrorObject, Forbidden, PayloadTooLarge, TooManyRequests, Unauthorized, Unavailable, Unprocessable,
};
use super::views::UserView;
use crate::auth::first_party::FirstPartyUser;
use crate::auth::guards::RequestOrigin;
use crate::auth::Auth;
use crate::db::Db;
use crate::error::ApiResult;

/// The empty object of a 202.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Accepted {}

fn accepted() -> (Status, Json<Accepted>) {
    (Status::Accepted, Json(Accepted {}))
}

#[derive(Deserialize, utoipa::ToSchema)]
struct Forgot {
    #[schema(example = "alice@example.com")]
    email: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
struct Reset {
    /// The `token` of the link in the reset mail.
    token: String,
    #[schema(min_length = 8, max_length = 128)]
    new_password: String,
    /// A TOTP or recovery code, when the account has MFA.
    code: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
struct MailToken {
    /// The `token` of the link in the mail.
    token: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
struct EmailChange {
    password: String,
    #[schema(example = "alice@new.example")]
    new_email: String,
}

/// Mails a reset link to the account of `email` when it is active. The answer is the same for
/// every email, known or not, limited or not.
#[utoipa::path(tag = "mail", request_body = Forgot, responses(
    (status = 202, description = "Accepted (whatever the email).", body = Accepted), BadRequest, PayloadTooLarge,
    (status = 503, description = "`unavailable`: mail is not configured, or the database does not answer.", body = ErrorObject)))]
#[post("/auth/password/forgot", data = "<body>")]
async fn forgot_password(
    auth: &State<Auth>,
    db: &State<Db>,
    client: RequestOrigin,
    body: JsonBody<Forgot>,
) -> ApiResult<(Status, Json<Accepted>)> {
    auth.forgot_password(db, &body.0.email, &client).await?;
    Ok(accepted())
}

/// Sets a new password with the token of a reset mail (and the second factor when the account
/// has one); every session of the account ends.
#[utoipa::path(tag = "mail", request_body = Reset, responses(
    (status = 204, description = "The password changed; every session ended."),
    (status = 400, description = "`invalid_grant`: the token is unknown, used or expired; or `invalid_request`.", body = ErrorObject),
    (status = 401, description = "`invalid_credentials`: the second factor is wrong.", body = ErrorObject),
    (status = 403, description = "`mfa_required`: the account has MFA and `code` is missing.", body = ErrorObject),
    PayloadTooLarge, Unprocessable, TooManyRequests, Unavailable))]
#[post("/auth/password/reset", data = "<body>")]
async fn reset_password(
    auth: &State<Auth>,
    db: &State<Db>,
    client: RequestOrigin,
    body: JsonBody<Reset>,
) -> ApiResult<Status> {
    let Reset { token, new_password, code } = &body.0;
    auth.reset_password(db, token, new_password, code.as_deref(), &client).await?;
    Ok(Status::NoContent)
}

/// Mails a verification link to the caller's address.
#[utoipa::path(tag = "mail", security(("bearer" = []), ("oauth2" = [])), responses(
    (status = 202, description = "Accepted.", body = Accepted), Unauthorized, Forbidden, Unavailable))]
#[post("/auth/email/verify/send")]
async fn send_verification(
    auth: &State<Auth>,
    me: FirstPartyUser,
    db: &State<Db>,
    client: RequestOrigin,
) -> ApiResult<(Status, Json<Accepted>)> {
    auth.send_verification(db, &me, &client).await?;
    Ok(accepted())
}

/// Marks the address verified with the token of a verification mail.
#[utoipa::path(tag = "mail", request_body = MailToken, responses(
    (status = 204, description = "The address is verified."),
    (status = 400, description = "`invalid_grant`: the token is unknown, used or expired; or `invalid_request`.", body = ErrorObject),
    PayloadTooLarge, Unavailable))]
#[post("/auth/email/verify", data = "<body>")]
async fn verify_email(
    auth: &State<Auth>,
    db: &State<Db>,
    client: RequestOrigin,
    body: JsonBody<MailToken>,
) -> ApiResult<Status> {
    auth.verify_email(db, &body.0.token, &client).await?;
    Ok(Status::NoContent)
}

/// Asks to move the account to `new_email`: a confirmation mail goes to it, a notice to the
/// current address; the address changes only when confirmed.
#[utoipa::path(tag = "mail", security(("bearer" = []), ("oauth2" = [])), request_body = EmailChange, responses(
    (status = 202, description = "Accepted.", body = Accepted), BadRequest,
    (status = 401, description = "`invalid_token`, or `invalid_credentials`: the password is wrong.", body = ErrorObject),
    Forbidden, (status = 409, description = "`conflict`: the address is taken.", body = ErrorObject),
    PayloadTooLarge, Unprocessable, TooManyRequests, Unavailable))]
#[post("/users/me/email", data = "<body>")]
async fn change_email(
    auth: &State<Auth>,
    me: FirstPartyUser,
    db: &State<Db>,
    client: RequestOrigin,
    body: JsonBody<EmailChange>,
) -> ApiResult<(Status, Json<Accepted>)> {
    auth.request_email_change(db, &me, &body.0.password, &body.0.new_email, &client).await?;
    Ok(accepted())
}

/// Confirms an address change with the token mailed to the new address.
#[utoipa::path(tag = "mail", request_body = MailToken, responses(
    (status = 200, description = "The account with its new, verified address.", body = UserView),
    (status = 400, description = "`invalid_grant`: the token is unknown, used or expired; or `invalid_request`.", body = ErrorObject),
    (status = 409, description = "`conflict`: another account took the address meanwhile.", body = ErrorObject),
    PayloadTooLarge, Unavailable))]
#[post("/auth/email/confirm", data = "<body>")]
async fn confirm_email_change(
    auth: &State<Auth>,
    db: &State<Db>,
    client: RequestOrigin,
    body: JsonBody<MailToken>,
) -> ApiResult<Json<UserView>> {
    Ok(Json(auth.confirm_email_change(db, &body.0.token, &client).await?.into()))
}

pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![
        forgot_password,
        reset_password,
        send_verification,
        verify_email,
        change_email,
        confirm_email_change
    ]
}
