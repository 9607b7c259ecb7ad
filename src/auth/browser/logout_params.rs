//! The parameters of an RP-initiated logout request (OpenID Connect RP-Initiated Logout 1.0 §2)
//! as sent in a query or a form body, and as the confirmation form carries them. Validation is
//! `super::logout`'s.

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
        let mut params = LogoutParams::default();
        for (name, value) in form_urlencoded::parse(text.as_bytes()) {
            let slot = match name.as_ref() {
                "id_token_hint" => &mut params.id_token_hint,
                "post_logout_redirect_uri" => &mut params.post_logout_redirect_uri,
                "state" => &mut params.state,
                "client_id" => &mut params.client_id,
                _ => continue,
            };
            if slot.is_some() {
                params.repeated.push(name.into_owned());
            } else {
                *slot = Some(value.into_owned());
            }
        }
        params
    }

    /// The request as a form body, for the confirmation form to carry it (its POST validates it
    /// again from scratch).
    pub fn to_urlencoded(&self) -> String {
        let fields = [
            ("id_token_hint", &self.id_token_hint),
            ("post_logout_redirect_uri", &self.post_logout_redirect_uri),
            ("state", &self.state),
            ("client_id", &self.client_id),
        ];
        let mut out = form_urlencoded::Serializer::new(String::new());
        for (name, value) in fields {
            if let Some(value) = value {
                out.append_pair(name, value);
            }
        }
        out.finish()
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
