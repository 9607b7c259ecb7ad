//! Adding a passkey on the account page (issue 25): the form `data-passkey="register"` of the
//! Passkeys section, driven by `/pages/passkeys.js`, since `navigator.credentials.create()` has no
//! HTML form. The page's session is a browser-session cookie, not a bearer token, so the script
//! calls these routes instead of `POST /auth/passkeys/register` and `/register/finish`; each runs
//! the very service function of its endpoint (`Auth::start_passkey_registration`, then
//! `Auth::finish_passkey_registration`: the re-authentication, its throttling and the
//! second-factor counter, the 10-passkey limit, the first factor's recovery codes).
//!
//! - `POST /account/passkeys/add/start` (`fetch`): CSRF token, name, password or code → JSON
//!   `{"ceremony_id","publicKey"}` as the API answers, or the API's JSON error and status, which
//!   the script shows beside the form.
//! - `POST /account/passkeys/add` (the form, submitted by the script once the authenticator
//!   answered): CSRF token, `ceremony_id`, name, `credential` (`PublicKeyCredential.toJSON()`) →
//!   303 to `/account` with "The passkey was added.", or, for the account's first second factor,
//!   the ten recovery codes (200, once); a refusal shows the account page with the API's status.
//!
//! Both routes take this browser session's CSRF token (`SignedIn::csrf_matches`). The
//! `ceremony_id` the page hands out is the ceremony's id and a MAC of it with this browser
//! session's id, so a ceremony started by another browser session of the same account (whose
//! ceremony the API would accept: it checks the account) is refused here as unknown.

use rocket::form::{Form, FromForm};
use rocket::serde::json::Json;
use rocket::{post, State};
use serde_json::{json, Value};
use subtle::ConstantTimeEq;
use webauthn_rs_core::proto::RegisterPublicKeyCredential;

use super::codes::{self, NewFactor};
use super::passkeys::reauth;
use super::{done, forged, posted, refused, Answer, Notice, SignedIn};
use crate::auth::guards::RequestOrigin;
use crate::auth::mfa::passkey::manage::passkey_name;
use crate::auth::mfa::passkey::{dead_ceremony, public_key_options};
use crate::auth::Auth;
use crate::db::Db;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::pages::signin_passkey::credential_of;

/// The page's `ceremony_id`: the ceremony's id, a dot, and its MAC with this browser session.
fn bound(auth: &Auth, me: &SignedIn, ceremony_id: &str) -> String {
    format!("{ceremony_id}.{}", tag(auth, me, ceremony_id))
}

fn tag(auth: &Auth, me: &SignedIn, ceremony_id: &str) -> String {
    auth.page_tag("passkey-add", &[me.session_id().to_string().as_bytes(), ceremony_id.as_bytes()])
}

/// The ceremony's id of a [`bound`] `ceremony_id` of this browser session; 400 `invalid_grant`
/// (the API's unknown ceremony) for any other, the ceremony left untouched.
fn ceremony_of<'a>(auth: &Auth, me: &SignedIn, field: &'a str) -> ApiResult<&'a str> {
    let (id, mac) = field.split_once('.').ok_or_else(dead_ceremony)?;
    if bool::from(tag(auth, me, id).as_bytes().ct_eq(mac.as_bytes())) {
        Ok(id)
    } else {
        Err(dead_ceremony())
    }
}

/// The script's call without a browser session (it ended, or another tab signed out).
fn no_session() -> ApiError {
    let description = "This browser is no longer signed in; reload the page and sign in again.";
    ApiError::new(rocket::http::Status::Unauthorized, ErrorCode::InvalidToken, description)
}

#[derive(FromForm)]
struct StartForm<'r> {
    #[field(default = "")]
    csrf: &'r str,
    #[field(default = "")]
    name: &'r str,
    password: Option<&'r str>,
    code: Option<&'r str>,
}

/// Starts adding a passkey: the name is checked first (the authenticator is not asked for a
/// passkey the finish would refuse), then the API's start with the password or code.
#[post("/account/passkeys/add/start", data = "<form>")]
async fn start(
    auth: &State<Auth>,
    db: &State<Db>,
    me: Option<SignedIn>,
    client: RequestOrigin,
    form: Form<StartForm<'_>>,
) -> ApiResult<Json<Value>> {
    let me = me.ok_or_else(no_session)?;
    if !me.csrf_matches(form.csrf) {
        return Err(forged());
    }
    passkey_name(form.name)?;
    let how = reauth(form.password, form.code)?;
    let (ceremony_id, options) = auth.start_passkey_registration(db, &me.user, how, &client).await?;
    let public_key = public_key_options(options)?;
    Ok(Json(json!({"ceremony_id": bound(auth, &me, &ceremony_id), "publicKey": public_key})))
}

#[derive(FromForm)]
struct FinishForm<'r> {
    #[field(default = "")]
    csrf: &'r str,
    #[field(default = "")]
    ceremony_id: &'r str,
    #[field(default = "")]
    name: &'r str,
    /// `JSON.stringify(credential.toJSON())` of `navigator.credentials.create()`.
    #[field(default = "")]
    credential: &'r str,
}

/// Finishes adding the passkey.
#[post("/account/passkeys/add", data = "<form>")]
async fn finish(
    auth: &State<Auth>,
    db: &State<Db>,
    me: Option<SignedIn>,
    client: RequestOrigin,
    form: Form<FinishForm<'_>>,
) -> Answer {
    let me = match posted(auth, db, me, form.csrf).await {
        Ok(me) => me,
        Err(answer) => return answer,
    };
    let added = async {
        let ceremony_id = ceremony_of(auth, &me, form.ceremony_id)?;
        let credential: RegisterPublicKeyCredential = credential_of(form.credential)?;
        let mut conn = db.conn().await?;
        auth.finish_passkey_registration(&mut conn, &me.user, ceremony_id, form.name, &credential, &client).await
    };
    match added.await {
        Ok((row, Some(first))) => {
            Answer::Page(codes::page(auth, NewFactor::Passkey { name: &row.name }, &first.recovery_codes))
        }
        Ok((_, None)) => done(Notice::PasskeyAdded),
        Err(e) => refused(auth, db, &me, e).await,
    }
}

pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![start, finish]
}
