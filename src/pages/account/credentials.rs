//! The Password and Email sections: the API's password change (`PUT /users/me/password`,
//! `Auth::change_password`: the current password checked and throttled like a login, the new one
//! judged by the same rules, every other session ended) and email change (`POST /users/me/email`,
//! `Auth::request_email_change`: the password checked, a confirmation link mailed to the new
//! address and a notice to the old one; 503 without mail).

use rocket::form::{Form, FromForm};
use rocket::{post, State};

use super::{done, posted, refused, Answer, Notice, SignedIn};
use crate::auth::guards::RequestOrigin;
use crate::auth::Auth;
use crate::db::Db;

#[derive(FromForm)]
struct PasswordForm<'r> {
    #[field(default = "")]
    csrf: &'r str,
    current_password: &'r str,
    new_password: &'r str,
}

#[derive(FromForm)]
struct EmailForm<'r> {
    #[field(default = "")]
    csrf: &'r str,
    password: &'r str,
    new_email: &'r str,
}

/// Changes the password; this browser stays signed in, every other session ends.
#[post("/account/password", data = "<form>")]
async fn change_password(
    auth: &State<Auth>,
    db: &State<Db>,
    me: Option<SignedIn>,
    client: RequestOrigin,
    form: Form<PasswordForm<'_>>,
) -> Answer {
    let me = match posted(auth, db, me, form.csrf).await {
        Ok(me) => me,
        Err(answer) => return answer,
    };
    match auth.change_password(db, &me.user, form.current_password, form.new_password, &client).await {
        Ok(()) => done(Notice::PasswordChanged),
        Err(e) => refused(auth, db, &me, e).await,
    }
}

/// Asks to move the account to a new address (it moves when the mailed link is opened).
#[post("/account/email", data = "<form>")]
async fn change_email(
    auth: &State<Auth>,
    db: &State<Db>,
    me: Option<SignedIn>,
    client: RequestOrigin,
    form: Form<EmailForm<'_>>,
) -> Answer {
    let me = match posted(auth, db, me, form.csrf).await {
        Ok(me) => me,
        Err(answer) => return answer,
    };
    match auth.request_email_change(db, &me.user, form.password, form.new_email, &client).await {
        Ok(()) => done(Notice::EmailChangeRequested),
        Err(e) => refused(auth, db, &me, e).await,
    }
}

pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![change_password, change_email]
}
