//! The Sessions section: ending one of the account's sessions, as `DELETE /auth/sessions/<id>`
//! does (`Auth::end_own_session`: only the person's own sessions, audited, revoked at once). Ending
//! this browser's own session signs out: the cookie goes with it.

use rocket::form::{Form, FromForm};
use rocket::http::CookieJar;
use rocket::{post, State};

use super::{done, posted, refused, Answer, Notice, SignedIn};
use crate::auth::guards::RequestOrigin;
use crate::auth::Auth;
use crate::db::{Db, Id};
use crate::error::ApiError;

#[derive(FromForm)]
struct EndForm<'r> {
    #[field(default = "")]
    csrf: &'r str,
    session_id: &'r str,
}

/// Ends one session of the signed-in account.
#[post("/account/sessions/end", data = "<form>")]
async fn end(
    auth: &State<Auth>,
    db: &State<Db>,
    jar: &CookieJar<'_>,
    me: Option<SignedIn>,
    client: RequestOrigin,
    form: Form<EndForm<'_>>,
) -> Answer {
    let me = match posted(auth, db, me, form.csrf).await {
        Ok(me) => me,
        Err(answer) => return answer,
    };
    let not_found = || ApiError::not_found("No such session.");
    let Ok(id) = form.session_id.parse::<Id>() else { return refused(auth, db, &me, not_found()).await };
    let ended = match db.conn().await {
        Ok(mut conn) => auth.end_own_session(&mut conn, &me.user, id, "logout", &client).await,
        Err(e) => Err(e.into()),
    };
    match ended {
        Ok(true) => {
            if id == me.session_id() {
                super::signed_in::forget(auth, jar);
            }
            done(Notice::SessionEnded)
        }
        Ok(false) => refused(auth, db, &me, not_found()).await,
        Err(e) => refused(auth, db, &me, e).await,
    }
}

pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![end]
}
