//! What a valid authorization request leads to, given the browser's session (OpenID Connect Core
//! §3.1.2.3-§3.1.2.5): the sign-in page, the consent page, or a redirect to the client with a
//! code or an error. One function decides it for every path (the first GET, the sign-in and code
//! forms, the consent form's redirect back), so `prompt`, `max_age` and consent are judged
//! the same way everywhere.

use super::authorize::{redirect_with, AuthorizeError, ValidRequest};
use super::codes::CodeRequest;
use crate::auth::browser::BrowserSession;
use crate::auth::guards::RequestOrigin;
use crate::auth::session::scope::Scope;
use crate::auth::Auth;
use crate::db::DbConn;
use crate::error::ApiResult;

/// The outcome of an authorization request.
#[derive(Debug)]
pub enum Decision {
    /// No browser session, `prompt=login`, or `max_age` since the last sign-in exceeded: the
    /// sign-in page (keeping the request).
    SignIn(Box<ValidRequest>),
    /// A third-party client without a consent covering the scope, or `prompt=consent`.
    Consent(Box<ValidRequest>, BrowserSession),
    /// To the client: a code, or an error (`login_required`, `consent_required`, ...).
    Redirect(String),
}

/// How the browser's session came to be, for `prompt=login` and `max_age`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// The session was there before this request.
    Existing,
    /// The person signed in for this very request: `prompt=login` and `max_age` are satisfied.
    JustSignedIn,
}

impl Auth {
    /// Decides `request` for the browser's `session`.
    pub async fn decide_authorize(
        &self,
        conn: &mut DbConn,
        request: ValidRequest,
        session: Option<BrowserSession>,
        freshness: Freshness,
    ) -> ApiResult<Decision> {
        let issuer = &self.config.issuer;
        let now = self.clock.now();
        let session = session.filter(|s| {
            freshness == Freshness::JustSignedIn
                || (!request.prompt.login && request.max_age.is_none_or(|age| now - s.auth_time <= age))
        });
        let Some(session) = session else {
            if request.prompt.none {
                let error = request.error(issuer, AuthorizeError::LoginRequired, "The person is not signed in.");
                return Ok(Decision::Redirect(error));
            }
            return Ok(Decision::SignIn(Box::new(request)));
        };
        // What a client obtains for a user is what the user holds and asks for: a permission the
        // account does not hold is refused, as at `/auth/login` (contract, "Order of checks").
        if let Some(scope) = Scope::parse(Some(&request.scope)).ok().flatten() {
            if let Err(e) = self.check_scope_held(conn, session.user_id, &scope).await {
                return Ok(Decision::Redirect(request.error(issuer, AuthorizeError::InvalidScope, e.description())));
            }
        }
        if !request.client.settings.first_party {
            let client_id = request.client.client_id;
            let covered = self.consent_covers(conn, session.user_id, client_id, &request.scope).await?;
            if request.prompt.consent || !covered {
                if request.prompt.none {
                    let error =
                        request.error(issuer, AuthorizeError::ConsentRequired, "The person has not approved this.");
                    return Ok(Decision::Redirect(error));
                }
                return Ok(Decision::Consent(Box::new(request), session));
            }
        }
        Ok(Decision::Redirect(self.code_redirect(conn, &request, &session).await?))
    }

    /// The consent page's Approve: remembers the approval (per user, client and scope) and
    /// answers the code's redirect.
    pub async fn approve_authorize(
        &self,
        conn: &mut DbConn,
        request: &ValidRequest,
        session: &BrowserSession,
        origin: &RequestOrigin,
    ) -> ApiResult<String> {
        // The form carries the request: what it names is judged again, as for the page.
        if let Some(scope) = Scope::parse(Some(&request.scope)).ok().flatten() {
            if let Err(e) = self.check_scope_held(conn, session.user_id, &scope).await {
                return Ok(request.error(&self.config.issuer, AuthorizeError::InvalidScope, e.description()));
            }
        }
        let client_id = request.client.client_id;
        self.grant_consent(conn, session.user_id, client_id, &request.scope, origin).await?;
        self.code_redirect(conn, request, session).await
    }

    /// The consent page's Deny: `access_denied`, and nothing remembered.
    pub fn deny_authorize(&self, request: &ValidRequest) -> String {
        request.error(&self.config.issuer, AuthorizeError::AccessDenied, "The person did not approve the request.")
    }

    /// Issues the code and answers its redirect: `code`, `state`, `iss` (RFC 6749 §4.1.2,
    /// RFC 9207 §2).
    async fn code_redirect(
        &self,
        conn: &mut DbConn,
        request: &ValidRequest,
        session: &BrowserSession,
    ) -> ApiResult<String> {
        let code = self
            .issue_code(
                conn,
                &CodeRequest {
                    client_id: request.client.client_id,
                    redirect_uri: &request.redirect_uri,
                    code_challenge: &request.code_challenge,
                    scope: &request.scope,
                    nonce: request.nonce.as_deref(),
                    resource: request.resource.as_deref(),
                    user_id: session.user_id,
                    auth_time: session.auth_time,
                    amr: &session.amr,
                    browser_session_id: session.id,
                },
            )
            .await?;
        let mut params = vec![("code", code.expose())];
        if let Some(state) = request.state.as_deref() {
            params.push(("state", state));
        }
        params.push(("iss", self.config.issuer.as_str()));
        Ok(redirect_with(&request.redirect_uri, &params))
    }
}
