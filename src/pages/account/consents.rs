//! The Applications section: revoking the consent to a third-party client, as
//! `DELETE /users/me/consents/<client_id>` does (`Auth::revoke_consent`: the consent is forgotten
//! and that client's sessions of the person end at once).

use rocket::form::{Form, FromForm};
use rocket::{post, State};

use super::{done, posted, refused, Answer, Notice, SignedIn};
use crate::auth::guards::RequestOrigin;
use crate::auth::Auth;
use crate::db::{Db, Id};
use crate::error::ApiError;

#[derive(FromForm)]
struct RevokeForm<'r> {
    #[field(default = "")]
    csrf: &'r str,
    client_id: &'r str,
}

/// Revokes the consent to one client.
#[post("/account/consents/revoke", data = "<form>")]
async fn revoke(
    auth: &State<Auth>,
    db: &State<Db>,
    me: Option<SignedIn>,
    origin: RequestOrigin,
    form: Form<RevokeForm<'_>>,
) -> Answer {
    let me = match posted(auth, db, me, form.csrf).await {
        Ok(me) => me,
        Err(answer) => return answer,
    };
    let not_found = || ApiError::not_found("No consent to that application.");
    let Ok(client) = form.client_id.parse::<Id>() else { return refused(auth, db, &me, not_found()).await };
    let revoked = match db.conn().await {
        Ok(mut conn) => auth.revoke_consent(&mut conn, &me.user, client, &origin).await,
        Err(e) => Err(e.into()),
    };
    match revoked {
        Ok(true) => done(Notice::ConsentRevoked),
        Ok(false) => refused(auth, db, &me, not_found()).await,
        Err(e) => refused(auth, db, &me, e).await,
    }
}

pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![revoke]
}
