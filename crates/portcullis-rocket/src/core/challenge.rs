//! The one builder of the `WWW-Authenticate` challenge of a refusal at a bearer endpoint
//! (RFC 6750 §3), for Portcullis's errors and a resource server's alike:
//!
//! - no credentials, or an `Authorization` header of another scheme: a bare `Bearer`
//!   (RFC 6750 §3.1: no error attribute when the request carried no bearer token);
//! - a token that is not valid: `Bearer error="invalid_token", error_description="..."`;
//! - a 403 to a request that presented a bearer token: `error="insufficient_scope"`, or, when
//!   the remedy is a stronger login, `error="insufficient_user_authentication"` (RFC 9470 §3);
//! - any other 401 to such a request (a wrong current password on a bearer route): a bare
//!   `Bearer`, since every 401 carries a challenge (RFC 9110 §15.5.2) and the token was fine.

/// What a refusal says about bearer authentication, chosen where the refusal is made; the
/// header itself also depends on the request ([`Challenge::header`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Challenge {
    /// Decided by the status, for a request that presented a bearer token: a 401 gets a bare
    /// `Bearer`, a 403 `error="insufficient_scope"`; anything else (or another request) none.
    #[default]
    ByStatus,
    /// A bare `Bearer`, whatever the request: it carried no token to judge.
    Bare,
    /// `error="invalid_token"`, whatever the request.
    InvalidToken,
    /// A 403 whose remedy is logging in with a second factor: `error=
    /// "insufficient_user_authentication"` to a request that presented a bearer token.
    InsufficientUserAuthentication,
}

impl Challenge {
    /// The `WWW-Authenticate` value of a refusal with `status` and `description`, answering a
    /// request whose `Authorization` header is `authorization`; `None` for no challenge.
    pub fn header(self, status: u16, description: &str, authorization: Option<&str>) -> Option<String> {
        let bearer = presents_bearer(authorization);
        match self {
            Challenge::Bare => Some("Bearer".to_owned()),
            Challenge::InvalidToken => Some(with_error("invalid_token", description)),
            _ if !bearer => None,
            Challenge::InsufficientUserAuthentication if status == 403 => {
                Some(with_error("insufficient_user_authentication", description))
            }
            _ if status == 403 => Some(with_error("insufficient_scope", description)),
            _ if status == 401 => Some("Bearer".to_owned()),
            _ => None,
        }
    }
}

/// Whether an `Authorization` header value uses the Bearer scheme (case-insensitive, RFC 9110
/// §11.1) with a token after it.
pub fn presents_bearer(authorization: Option<&str>) -> bool {
    authorization.is_some_and(|h| h.trim_start().get(..7).is_some_and(|scheme| scheme.eq_ignore_ascii_case("bearer ")))
}

/// `Bearer error="<error>", error_description="<description>"`, the description reduced to the
/// characters RFC 6749 §5.2 allows in it (printable ASCII without `"` and `\`), so a header
/// never breaks whatever a description says.
fn with_error(error: &str, description: &str) -> String {
    let description: String = description
        .chars()
        .map(|c| match c {
            '"' | '\\' => '\'',
            ' '..='~' => c,
            _ => '?',
        })
        .collect();
    format!("Bearer error=\"{error}\", error_description=\"{description}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEARER: Option<&str> = Some("bearer abc");

    #[test]
    fn a_missing_or_foreign_credential_gets_a_bare_challenge_and_a_bad_token_an_invalid_token_one() {
        assert_eq!(Challenge::Bare.header(401, "x", Some("Basic YTpi")).as_deref(), Some("Bearer"));
        let invalid = Challenge::InvalidToken.header(401, "The \"token\" is bad.", BEARER);
        assert_eq!(
            invalid.as_deref(),
            Some("Bearer error=\"invalid_token\", error_description=\"The 'token' is bad.\"")
        );
    }

    #[test]
    fn a_403_to_a_bearer_request_names_insufficient_scope_or_user_authentication() {
        let scope = Challenge::ByStatus.header(403, "Needs reports:read.", BEARER);
        assert_eq!(
            scope.as_deref(),
            Some("Bearer error=\"insufficient_scope\", error_description=\"Needs reports:read.\"")
        );
        let mfa = Challenge::InsufficientUserAuthentication.header(403, "Use MFA.", BEARER);
        assert_eq!(
            mfa.as_deref(),
            Some("Bearer error=\"insufficient_user_authentication\", error_description=\"Use MFA.\"")
        );
        assert_eq!(Challenge::InsufficientUserAuthentication.header(403, "Use MFA.", None), None, "a login");
        assert_eq!(Challenge::ByStatus.header(403, "No.", Some("Basic YTpi")), None);
    }

    #[test]
    fn another_401_to_a_bearer_request_gets_a_bare_challenge_and_other_statuses_none() {
        assert_eq!(Challenge::ByStatus.header(401, "Wrong password.", BEARER).as_deref(), Some("Bearer"));
        assert_eq!(Challenge::ByStatus.header(401, "Wrong password.", None), None);
        assert_eq!(Challenge::ByStatus.header(404, "No such user.", BEARER), None);
    }

    #[test]
    fn a_description_outside_printable_ascii_cannot_break_the_header() {
        let header = Challenge::InvalidToken.header(401, "a\\b\r\nc — d", None).unwrap();
        assert_eq!(header, "Bearer error=\"invalid_token\", error_description=\"a'b??c ? d\"");
    }
}
