//! The Passkeys section: removing one, as `DELETE /auth/passkeys/<id>` does
//! (`Auth::remove_passkey`, after the same re-authentication: the password, or a TOTP or recovery
//! code, throttled and counted like the API's).
//!
//! Adding one needs `navigator.credentials.create()`, so JavaScript: [`super::passkey_add`].

use rocket::form::{Form, FromForm};
use rocket::{post, State};

use super::{done, posted, refused, Answer, Notice, SignedIn};
use crate::auth::guards::RequestOrigin;
use crate::auth::mfa::passkey::manage::Reauth;
use crate::auth::Auth;
use crate::db::{Db, Id};
use crate::error::ApiError;

#[derive(FromForm)]
struct RemoveForm<'r> {
    #[field(default = "")]
    csrf: &'r str,
    passkey_id: &'r str,
    password: Option<&'r str>,
    code: Option<&'r str>,
}

/// The re-authentication a passkey form gives: the password when filled in, else the code (as
/// the API's body: `{"password"}` or `{"code"}`).
pub(super) fn reauth<'a>(password: Option<&'a str>, code: Option<&'a str>) -> Result<Reauth<'a>, ApiError> {
    match (password.filter(|v| !v.is_empty()), code.filter(|v| !v.is_empty())) {
        (Some(password), _) => Ok(Reauth::Password(password)),
        (None, Some(code)) => Ok(Reauth::Code(code)),
        (None, None) => Err(ApiError::bad_request("Give the account's password or a code.")),
    }
}

/// Removes one of the account's passkeys.
#[post("/account/passkeys/remove", data = "<form>")]
async fn remove(
    auth: &State<Auth>,
    db: &State<Db>,
    me: Option<SignedIn>,
    client: RequestOrigin,
    form: Form<RemoveForm<'_>>,
) -> Answer {
    let me = match posted(auth, db, me, form.csrf).await {
        Ok(me) => me,
        Err(answer) => return answer,
    };
    let Ok(id) = form.passkey_id.parse::<Id>() else {
        return refused(auth, db, &me, ApiError::not_found("No such passkey.")).await;
    };
    let removed = match reauth(form.password, form.code) {
        Ok(how) => auth.remove_passkey(db, &me.user, id, how, &client).await,
        Err(e) => Err(e),
    };
    match removed {
        Ok(()) => done(Notice::PasskeyRemoved),
        Err(e) => refused(auth, db, &me, e).await,
    }
}

pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![remove]
}
