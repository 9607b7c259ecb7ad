//! The parameters of an authorization request (RFC 6749 §4.1.1, RFC 7636 §4.3, OpenID Connect
//! Core §3.1.2.1, RFC 8707 §2) as sent in a query or a form body, and as the hosted pages' forms
//! carry them from one step to the next. Validation is `super::authorize`'s.

use super::request_params::{self, RequestParams};

/// The parameters of an authorization request, as sent (query or form body).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthorizeParams {
    pub response_type: Option<String>,
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub scope: Option<String>,
    pub state: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub nonce: Option<String>,
    pub prompt: Option<String>,
    pub max_age: Option<String>,
    pub resource: Option<String>,
    /// OpenID request objects (Core §6), which Portcullis does not support.
    pub request: Option<String>,
    pub request_uri: Option<String>,
    /// Names given more than once (RFC 6749 §3.1: parameters MUST NOT repeat).
    pub repeated: Vec<String>,
}

impl AuthorizeParams {
    /// The parameters of `pairs` (a decoded query or form); unknown names (`display`,
    /// `ui_locales`, `acr_values`, ...) are ignored.
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (std::borrow::Cow<'a, str>, std::borrow::Cow<'a, str>)>,
    ) -> Self {
        request_params::from_pairs(pairs)
    }

    /// Parses `application/x-www-form-urlencoded` text (a query string or a form body).
    pub fn from_urlencoded(text: &str) -> Self {
        request_params::from_urlencoded(text)
    }

    /// The request as a query string, for the hosted pages' forms to carry it (each POST
    /// validates it again from scratch). `after_sign_in` drops `prompt=login` and `max_age`: the
    /// person has just signed in, and asking again would loop (the ID token's `auth_time` still
    /// tells the client when).
    pub fn to_urlencoded(&self, after_sign_in: bool) -> String {
        let prompt = self.prompt.as_deref().map(|p| {
            if after_sign_in {
                p.split(' ').filter(|v| *v != "login").collect::<Vec<_>>().join(" ")
            } else {
                p.to_owned()
            }
        });
        let fields = [
            ("response_type", self.response_type.as_deref()),
            ("client_id", self.client_id.as_deref()),
            ("redirect_uri", self.redirect_uri.as_deref()),
            ("scope", self.scope.as_deref()),
            ("state", self.state.as_deref()),
            ("code_challenge", self.code_challenge.as_deref()),
            ("code_challenge_method", self.code_challenge_method.as_deref()),
            ("nonce", self.nonce.as_deref()),
            ("prompt", prompt.as_deref().filter(|p| !p.is_empty())),
            ("max_age", self.max_age.as_deref().filter(|_| !after_sign_in)),
            ("resource", self.resource.as_deref()),
        ];
        request_params::to_urlencoded(&fields)
    }
}

impl RequestParams for AuthorizeParams {
    fn slot(&mut self, name: &str) -> Option<&mut Option<String>> {
        Some(match name {
            "response_type" => &mut self.response_type,
            "client_id" => &mut self.client_id,
            "redirect_uri" => &mut self.redirect_uri,
            "scope" => &mut self.scope,
            "state" => &mut self.state,
            "code_challenge" => &mut self.code_challenge,
            "code_challenge_method" => &mut self.code_challenge_method,
            "nonce" => &mut self.nonce,
            "prompt" => &mut self.prompt,
            "max_age" => &mut self.max_age,
            "resource" => &mut self.resource,
            "request" => &mut self.request,
            "request_uri" => &mut self.request_uri,
            _ => return None,
        })
    }

    fn repeated(&mut self) -> &mut Vec<String> {
        &mut self.repeated
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_parameters_are_noticed_and_the_request_survives_its_form() {
        let params = AuthorizeParams::from_urlencoded("client_id=a&state=s%20t&client_id=b&display=page&prompt=login");
        assert_eq!(params.repeated, ["client_id"]);
        assert_eq!(params.to_urlencoded(true), "client_id=a&state=s+t");
        assert_eq!(AuthorizeParams::from_urlencoded(&params.to_urlencoded(false)).prompt.as_deref(), Some("login"));
    }
}
