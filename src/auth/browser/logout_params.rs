//! The parameters of an RP-initiated logout request (OpenID Connect RP-Initiated Logout 1.0 §2)
//! as sent in a query or a form body, and as the confirmation form carries them. Validation is
//! `super::logout`'s.

use crate::auth::oidc::request_params::{self, RequestParams};

/// The parameters of a logout request, as sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogoutParams {
    pub id_token_hint: Option<String>,
    pub post_logout_redirect_uri: Option<String>,
    pub state: Option<String>,
    pub client_id: Option<String>,
    /// Names given more than once.
    pub repeated: Vec<String>,
}

impl LogoutParams {
    /// The parameters of `text` (`application/x-www-form-urlencoded`: a query string or a form
    /// body); unknown names (`logout_hint`, `ui_locales`, ...) are ignored.
    pub fn from_urlencoded(text: &str) -> Self {
        request_params::from_urlencoded(text)
    }

    /// The request as a form body, for the confirmation form to carry it (its POST validates it
    /// again from scratch).
    pub fn to_urlencoded(&self) -> String {
        request_params::to_urlencoded(&[
            ("id_token_hint", self.id_token_hint.as_deref()),
            ("post_logout_redirect_uri", self.post_logout_redirect_uri.as_deref()),
            ("state", self.state.as_deref()),
            ("client_id", self.client_id.as_deref()),
        ])
    }
}

impl RequestParams for LogoutParams {
    fn slot(&mut self, name: &str) -> Option<&mut Option<String>> {
        Some(match name {
            "id_token_hint" => &mut self.id_token_hint,
            "post_logout_redirect_uri" => &mut self.post_logout_redirect_uri,
            "state" => &mut self.state,
            "client_id" => &mut self.client_id,
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
        let params = LogoutParams::from_urlencoded("state=a%20b&ui_locales=fr&client_id=c&state=d");
        assert_eq!(params.repeated, ["state"]);
        assert_eq!(params.to_urlencoded(), "state=a+b&client_id=c");
        assert_eq!(LogoutParams::from_urlencoded(&params.to_urlencoded()).state.as_deref(), Some("a b"));
    }
}
