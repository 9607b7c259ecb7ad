//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0; contract "(v3) Browser sign-in"
//! and "Browser sessions"; docs/browser-sign-in.md): `GET`/`POST /oauth/logout` with
//! `id_token_hint`, `post_logout_redirect_uri`, `state` and `client_id`.
//!
//! - The client is the hint's `aud`, or `client_id` (both given: they must agree, §2).
//! - `post_logout_redirect_uri` must equal one of that client's registered
//!   `post_logout_redirect_uris` byte for byte (§3: no redirect otherwise), or the request is
//!   refused on an error page: never redirected, so the endpoint is no open redirector.
//! - What ends is the browser session of the cookie, and the sessions its codes started
//!   (`Auth::end_browser_session`). Never anything on the hint alone: a hint identifies, it
//!   proves nothing (ID tokens are handed to relying parties, and expired ones are accepted).
//! - Without a hint whose user is the cookie's (none, an unverifiable one, another user's), the
//!   person confirms first (§2: "the OP SHOULD ask the End-User whether to log out"), on a form
//!   with a CSRF token: a cross-site page cannot sign people out by sending them here.

use super::logout_params::LogoutParams;
use super::BrowserSession;
use crate::auth::guards::RequestOrigin;
use crate::auth::oidc::authorize::redirect_with;
use crate::auth::oidc::id_token_hint::IdTokenHint;
use crate::auth::Auth;
use crate::db::{DbConn, Id};
use crate::error::ApiResult;
use crate::models::ClientStore;

/// `end_reason` and audit event of a browser session ended at `/oauth/logout`.
pub const LOGGED_OUT: &str = "logout";

/// The longest parameter kept (an ID token is about a kilobyte).
const MAX_VALUE: usize = 8192;

/// A logout request whose parameters checked out.
#[derive(Debug, Clone)]
pub struct ValidLogout {
    pub params: LogoutParams,
    /// The verified hint, when one was given and is an ID token of this service.
    pub hint: Option<IdTokenHint>,
    /// The registered `post_logout_redirect_uri`, exactly as sent.
    pub redirect_uri: Option<String>,
    /// The client's name, when the request names one this server knows.
    pub client_name: Option<String>,
}

impl ValidLogout {
    /// Where the browser goes once signed out: the `post_logout_redirect_uri` with `state` (§3),
    /// or `None` for the signed-out page.
    pub fn redirect(&self) -> Option<String> {
        let uri = self.redirect_uri.as_deref()?;
        Some(match self.params.state.as_deref() {
            Some(state) => redirect_with(uri, &[("state", state)]),
            None => uri.to_owned(),
        })
    }
}

/// Whether the person asked for this logout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confirmation {
    /// Not (yet): only the relying party did.
    NotAsked,
    /// The confirmation form was posted with its CSRF token (checked by the page).
    Given,
}

/// What a logout request comes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogoutStep {
    /// Signed out: the sessions this request ended (none when there was no browser session).
    SignedOut(Vec<Id>),
    /// The person must confirm that this browser session ends.
    Confirm(BrowserSession),
}

impl Auth {
    /// Validates a logout request: its error-page text when it cannot be used.
    pub async fn validate_logout(
        &self,
        conn: &mut DbConn,
        params: LogoutParams,
    ) -> ApiResult<Result<ValidLogout, String>> {
        let refuse = |text: &str| Ok(Err(text.to_owned()));
        if let Some(name) = params.repeated.first() {
            return refuse(&format!("The parameter {name} is given more than once."));
        }
        let values = [&params.id_token_hint, &params.post_logout_redirect_uri, &params.state, &params.client_id];
        if values.iter().any(|v| v.as_ref().is_some_and(|v| v.len() > MAX_VALUE)) {
            return refuse("A parameter is too long.");
        }
        // A hint that is not our ID token is no hint: the person will be asked to confirm.
        let hint = params.id_token_hint.as_deref().and_then(|t| self.verify_id_token_hint(t));
        let client_id = match (&hint, params.client_id.as_deref()) {
            (Some(hint), Some(named)) if hint.client_id != named => {
                return refuse("The client_id is not the client the ID token was issued to.")
            }
            (Some(hint), _) => Some(hint.client_id.clone()),
            (None, named) => named.map(str::to_owned),
        };
        let client = match client_id.as_deref().and_then(|c| c.parse::<Id>().ok()) {
            Some(id) => crate::db::with_conn!(conn, |c| c.find_client(id).await)?
                .map(|(client, _)| client)
                .filter(|client| !client.disabled),
            None => None,
        };
        let redirect_uri = match (&params.post_logout_redirect_uri, &client) {
            (None, _) => None,
            // Byte for byte (RP-Initiated Logout §3, RFC 9700 §4.1.3): no loopback exception.
            (Some(uri), Some(client)) if client.settings.post_logout_redirect_uris.iter().any(|r| r == uri) => {
                Some(uri.clone())
            }
            (Some(_), Some(_)) => {
                return refuse("The post_logout_redirect_uri is not one registered for this client.")
            }
            (Some(_), None) => {
                return refuse("The post_logout_redirect_uri cannot be used: the request names no client this server knows (send id_token_hint or client_id).")
            }
        };
        Ok(Ok(ValidLogout { hint, redirect_uri, client_name: client.map(|c| c.name), params }))
    }

    /// Carries out `request` for the browser's `session` (if any): ends it when the hint's user
    /// is the session's or the person confirmed, asks for confirmation otherwise.
    pub async fn log_out(
        &self,
        conn: &mut DbConn,
        request: &ValidLogout,
        session: Option<BrowserSession>,
        confirmation: Confirmation,
        client: &RequestOrigin,
    ) -> ApiResult<LogoutStep> {
        let Some(session) = session else { return Ok(LogoutStep::SignedOut(vec![])) };
        let hint_matches = request.hint.as_ref().is_some_and(|hint| hint.user_id == session.user_id);
        if !hint_matches && confirmation == Confirmation::NotAsked {
            return Ok(LogoutStep::Confirm(session));
        }
        let ended = self.end_browser_session(conn, session.id, session.user_id, LOGGED_OUT, client).await?;
        Ok(LogoutStep::SignedOut(ended))
    }
}
