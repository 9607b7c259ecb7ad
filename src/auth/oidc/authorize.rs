//! The authorization request (RFC 6749 §4.1.1, RFC 7636 §4.3, OpenID Connect Core §3.1.2.1,
//! RFC 9700 §2.1): its parameters, their validation, and the redirects that answer it.
//!
//! Until the client and its `redirect_uri` are validated, nothing may be redirected (RFC 6749
//! §4.1.2.1: an unchecked `redirect_uri` would make the endpoint an open redirector), so those
//! errors are [`Invalid::Page`]; every later error is [`Invalid::Redirect`] to the client with
//! `error`, `error_description`, `state` and `iss` (RFC 9207). What to do with a valid request
//! (sign in, consent, a code) is decided in [`super::authorize_decide`].

pub use super::authorize_params::AuthorizeParams;
use super::pkce;
use super::redirect_uri::matches_registered;
use crate::auth::session::scope::{Scope, OPENID_VALUES};
use crate::auth::Auth;
use crate::db::{DbConn, Id};
use crate::error::ApiResult;
use crate::models::{Client, ClientStore, GrantType};

/// The longest `state`, `nonce` or other value kept: generous for any client, small enough to
/// carry through the hosted pages' forms.
const MAX_VALUE: usize = 1024;

/// `prompt` (OpenID Connect Core §3.1.2.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Prompt {
    pub none: bool,
    pub login: bool,
    pub consent: bool,
}

/// A request whose every parameter checked out.
#[derive(Debug, Clone)]
pub struct ValidRequest {
    pub client: Client,
    /// Exactly as sent (it matched a registered one).
    pub redirect_uri: String,
    pub state: Option<String>,
    /// Normalised (`Scope::to_claim`), possibly empty.
    pub scope: String,
    pub code_challenge: String,
    pub nonce: Option<String>,
    pub prompt: Prompt,
    pub max_age: Option<i64>,
    pub resource: Option<String>,
    /// The parameters, for the hosted pages' forms.
    pub params: AuthorizeParams,
}

/// An error code of the authorization response (RFC 6749 §4.1.2.1, OpenID Connect Core §3.1.2.6,
/// RFC 8707 §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthorizeError {
    InvalidRequest,
    UnauthorizedClient,
    AccessDenied,
    UnsupportedResponseType,
    InvalidScope,
    InvalidTarget,
    LoginRequired,
    ConsentRequired,
    RequestNotSupported,
    RequestUriNotSupported,
}

impl AuthorizeError {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthorizeError::InvalidRequest => "invalid_request",
            AuthorizeError::UnauthorizedClient => "unauthorized_client",
            AuthorizeError::AccessDenied => "access_denied",
            AuthorizeError::UnsupportedResponseType => "unsupported_response_type",
            AuthorizeError::InvalidScope => "invalid_scope",
            AuthorizeError::InvalidTarget => "invalid_target",
            AuthorizeError::LoginRequired => "login_required",
            AuthorizeError::ConsentRequired => "consent_required",
            AuthorizeError::RequestNotSupported => "request_not_supported",
            AuthorizeError::RequestUriNotSupported => "request_uri_not_supported",
        }
    }
}

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invalid {
    /// Before the client and `redirect_uri` are validated: an error page (400), never a redirect.
    Page(String),
    /// Afterwards: a redirect to this URL.
    Redirect(String),
}

/// `redirect_uri` with the authorization response `params` added to its query (RFC 6749 §4.1.2),
/// keeping the query it has (§3.1.2).
pub fn redirect_with(redirect_uri: &str, params: &[(&str, &str)]) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (name, value) in params {
        query.append_pair(name, value);
    }
    let separator = match redirect_uri.contains('?') {
        true if redirect_uri.ends_with('?') || redirect_uri.ends_with('&') => "",
        true => "&",
        false => "?",
    };
    format!("{redirect_uri}{separator}{}", query.finish())
}

impl ValidRequest {
    /// The redirect carrying `error` (with `state` and `iss`, RFC 9207 §2).
    pub fn error(&self, issuer: &str, error: AuthorizeError, description: &str) -> String {
        error_redirect(&self.redirect_uri, self.state.as_deref(), issuer, error, description)
    }
}

fn error_redirect(uri: &str, state: Option<&str>, issuer: &str, error: AuthorizeError, description: &str) -> String {
    let mut params = vec![("error", error.as_str()), ("error_description", description)];
    if let Some(state) = state {
        params.push(("state", state));
    }
    params.push(("iss", issuer));
    redirect_with(uri, &params)
}

fn too_long(value: &Option<String>) -> bool {
    value.as_ref().is_some_and(|v| v.len() > MAX_VALUE)
}

impl Auth {
    /// Validates an authorization request, in the order RFC 6749 §4.1.2.1 requires: the client
    /// and `redirect_uri` first (errors on a page), then everything else (errors redirected).
    pub async fn validate_authorize(
        &self,
        conn: &mut DbConn,
        params: AuthorizeParams,
    ) -> ApiResult<Result<ValidRequest, Invalid>> {
        let page = |text: &str| Ok(Err(Invalid::Page(text.to_owned())));
        if params.repeated.iter().any(|n| n == "client_id" || n == "redirect_uri") {
            return page("The request names its client or redirect URI more than once.");
        }
        let Some(client_id) = params.client_id.as_deref().and_then(|c| c.parse::<Id>().ok()) else {
            return page("The request does not name a client this server knows.");
        };
        let found = crate::db::with_conn!(conn, |c| c.find_client(client_id).await)?;
        let Some((client, _)) = found.filter(|(client, _)| !client.disabled) else {
            return page("The request does not name a client this server knows.");
        };
        let Some(redirect_uri) = params.redirect_uri.clone() else {
            return page("The request has no redirect_uri.");
        };
        if !client.settings.redirect_uris.iter().any(|r| matches_registered(r, &redirect_uri)) {
            return page("The redirect_uri is not one registered for this client.");
        }
        // From here on, errors go back to the client.
        let issuer = &self.config.issuer;
        let state = params.state.clone().filter(|s| s.len() <= MAX_VALUE);
        let refuse = |error: AuthorizeError, description: &str| {
            Ok(Err(Invalid::Redirect(error_redirect(&redirect_uri, state.as_deref(), issuer, error, description))))
        };
        use AuthorizeError::*;
        if !client.settings.allows(GrantType::AuthorizationCode) {
            return refuse(UnauthorizedClient, "This client may not use the authorization_code grant.");
        }
        if let Some(name) = params.repeated.first() {
            return refuse(InvalidRequest, &format!("The parameter {name} is given more than once."));
        }
        if params.request.is_some() {
            return refuse(RequestNotSupported, "Request objects are not supported.");
        }
        if params.request_uri.is_some() {
            return refuse(RequestUriNotSupported, "request_uri is not supported.");
        }
        match params.response_type.as_deref() {
            None => return refuse(InvalidRequest, "response_type is missing."),
            Some("code") => {}
            Some(_) => return refuse(UnsupportedResponseType, "Only response_type=code is supported."),
        }
        if [&params.state, &params.nonce, &params.max_age, &params.prompt].into_iter().any(too_long) {
            return refuse(InvalidRequest, "A parameter is too long.");
        }
        // PKCE is required of every client, with S256 only (RFC 9700 §2.1.1).
        let challenge = match (params.code_challenge.as_deref(), params.code_challenge_method.as_deref()) {
            (None, _) => return refuse(InvalidRequest, "code_challenge is required (PKCE, S256)."),
            (Some(_), Some(m)) if m != pkce::S256 => {
                return refuse(InvalidRequest, "code_challenge_method must be S256; plain is not accepted.")
            }
            (Some(_), None) => return refuse(InvalidRequest, "code_challenge_method=S256 is required."),
            (Some(c), Some(_)) if !pkce::is_s256_challenge(c) => {
                return refuse(InvalidRequest, "code_challenge is not an S256 challenge (43 base64url characters).")
            }
            (Some(c), Some(_)) => c.to_owned(),
        };
        let prompt = match parse_prompt(params.prompt.as_deref()) {
            Some(prompt) => prompt,
            None => return refuse(InvalidRequest, "prompt=none cannot be combined with other values."),
        };
        let max_age = match params.max_age.as_deref().map(str::parse::<i64>) {
            None => None,
            Some(Ok(age)) if age >= 0 => Some(age),
            Some(_) => return refuse(InvalidRequest, "max_age must be a number of seconds."),
        };
        if let Err(e) = self.check_resource(params.resource.as_deref()) {
            return refuse(InvalidTarget, e.description());
        }
        let scope = match Scope::parse(params.scope.as_deref()) {
            Ok(scope) => scope,
            Err(e) => return refuse(InvalidScope, e.description()),
        };
        // Unknown OpenID values (`address`, `phone`) were dropped by `Scope`; any other name must
        // be a permission.
        if let Some(unknown) = scope
            .as_ref()
            .and_then(|s| s.permissions().find(|p| !self.permission_exists(p) && !OPENID_VALUES.contains(p)))
        {
            return refuse(InvalidScope, &format!("'{unknown}' is not a permission."));
        }
        Ok(Ok(ValidRequest {
            client,
            redirect_uri,
            state,
            scope: scope.map(|s| s.to_claim()).unwrap_or_default(),
            code_challenge: challenge,
            nonce: params.nonce.clone(),
            prompt,
            max_age,
            resource: params.resource.clone(),
            params,
        }))
    }
}

/// `prompt`'s values; `None` when `none` is combined with another (OpenID Connect Core
/// §3.1.2.1). Unknown values (`select_account`) are ignored: there is one account per browser.
fn parse_prompt(raw: Option<&str>) -> Option<Prompt> {
    let mut prompt = Prompt::default();
    let values: Vec<&str> = raw.unwrap_or("").split(' ').filter(|v| !v.is_empty()).collect();
    for value in &values {
        match *value {
            "none" => prompt.none = true,
            "login" => prompt.login = true,
            "consent" => prompt.consent = true,
            _ => {}
        }
    }
    (!prompt.none || values.len() == 1).then_some(prompt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_keep_the_registered_query_and_encode_their_values() {
        assert_eq!(redirect_with("https://a.example/cb", &[("code", "x y")]), "https://a.example/cb?code=x+y");
        assert_eq!(redirect_with("https://a.example/cb?k=v", &[("state", "&")]), "https://a.example/cb?k=v&state=%26");
    }

    #[test]
    fn prompt_none_stands_alone() {
        assert_eq!(parse_prompt(Some("none")), Some(Prompt { none: true, ..Prompt::default() }));
        assert_eq!(parse_prompt(Some("none login")), None);
        assert_eq!(parse_prompt(Some("login consent")), Some(Prompt { none: false, login: true, consent: true }));
    }
}
