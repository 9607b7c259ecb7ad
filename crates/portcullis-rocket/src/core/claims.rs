//! The claims of a Portcullis access token, one type for both sides: generic over the id type,
//! so Portcullis reads `sub`, `sid` and `jti` as its UUIDs (a token whose ids are not UUIDs is
//! refused as it is parsed) and a resource server as strings. `client_id` is a string on both
//! sides: a user's session may belong to the first-party client `portcullis`, which is no UUID.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The claims of a Portcullis access token. A user's token carries `sid` and `roles` (and `amr`
/// once Portcullis records how the user authenticated), from Portcullis version 3 the
/// `client_id` of the client its session belongs to (RFC 9068 §2.2), and `scope` when its session
/// is down-scoped; a client's carries
/// `client_id` (= `sub`) and `scope`, and neither of the user's. [`AccessClaims::subject`] checks that a token is exactly
/// one of the two. Claims this type does not know are ignored, so that Portcullis can add claims
/// without breaking resource servers built against an older crate. A missing `Option` claim is
/// `None` (serde's rule for `Option` fields).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccessClaims<I = String> {
    pub iss: String,
    pub aud: String,
    pub sub: I,
    pub jti: I,
    pub iat: i64,
    pub exp: i64,
    /// Not before (RFC 7519 §4.1.5): Portcullis does not set it, but a token that carries it is
    /// refused until then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<I>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
    /// A user's token: the client its session belongs to (`portcullis` or a registered client's
    /// id). A client's token: the client itself, the same id as `sub`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Space-separated permissions (RFC 9068 §2.2.3): a client's, or those a down-scoped user
    /// session may use (OpenID Connect values such as `openid` may stand beside them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// RFC 8176 authentication methods of a user's login: `["pwd"]`, or `["pwd","otp","mfa"]`
    /// after MFA; none in a client's token.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
}

/// Whom an access token speaks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject<'a, I = String> {
    /// A user in a session, with the roles in the token, and its scope when the session is
    /// down-scoped: the user's permissions are then those of the roles that `scope` names.
    User { user_id: &'a I, session_id: &'a I, roles: &'a [String], scope: Option<&'a str> },
    /// A service client, with the permissions in the token's scope.
    Client { client_id: &'a I, scope: &'a str },
}

impl<I: PartialEq + fmt::Display> AccessClaims<I> {
    /// The token's subject, or `None` when its claims mix the two kinds or lack one's claims.
    /// A user's token may name the client of its session; a client's must name itself.
    pub fn subject(&self) -> Option<Subject<'_, I>> {
        match (&self.sid, &self.roles, &self.client_id, &self.scope) {
            (Some(session_id), Some(roles), _, scope) => {
                Some(Subject::User { user_id: &self.sub, session_id, roles, scope: scope.as_deref() })
            }
            (None, None, Some(client_id), Some(scope)) if displays_as(&self.sub, client_id) => {
                Some(Subject::Client { client_id: &self.sub, scope })
            }
            _ => None,
        }
    }
}

/// Whether `value` is written exactly as `text`, compared as it is written (no allocation: the
/// check runs on every verification).
fn displays_as(value: &impl fmt::Display, text: &str) -> bool {
    struct Compare<'a>(&'a str);
    impl fmt::Write for Compare<'_> {
        fn write_str(&mut self, part: &str) -> fmt::Result {
            self.0 = self.0.strip_prefix(part).ok_or(fmt::Error)?;
            Ok(())
        }
    }
    let mut rest = Compare(text);
    fmt::write(&mut rest, format_args!("{value}")).is_ok() && rest.0.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(
        sid: Option<&str>,
        roles: Option<Vec<String>>,
        client_id: Option<&str>,
        scope: Option<&str>,
    ) -> AccessClaims {
        AccessClaims {
            iss: "iss".into(),
            aud: "aud".into(),
            sub: "s-1".into(),
            jti: "j".into(),
            iat: 0,
            exp: 1,
            nbf: None,
            sid: sid.map(str::to_owned),
            roles,
            client_id: client_id.map(str::to_owned),
            scope: scope.map(str::to_owned),
            amr: vec![],
        }
    }

    #[test]
    fn a_user_token_may_name_its_sessions_client_and_a_client_token_must_name_itself() {
        let user = |client: Option<&str>| claims(Some("sid"), Some(vec![]), client, None);
        assert!(matches!(user(None).subject(), Some(Subject::User { .. })));
        assert!(matches!(user(Some("portcullis")).subject(), Some(Subject::User { .. })));
        let client = |client: &str| claims(None, None, Some(client), Some("a:b"));
        assert!(matches!(client("s-1").subject(), Some(Subject::Client { client_id, .. }) if client_id == "s-1"));
        assert_eq!(client("s-2").subject(), None);
        assert_eq!(client("s-").subject(), None);
        assert_eq!(client("s-10").subject(), None);
        assert_eq!(claims(None, None, None, Some("a:b")).subject(), None, "a client token names its client");
        assert_eq!(claims(Some("sid"), None, Some("s-1"), Some("a:b")).subject(), None, "never both kinds");
    }

    #[test]
    fn a_users_token_with_a_scope_is_a_down_scoped_user_and_without_one_a_plain_one() {
        let roles = Some(vec!["user".to_owned()]);
        let scoped = claims(Some("sid"), roles.clone(), Some("portcullis"), Some("reports:read openid"));
        let Some(Subject::User { scope, roles, .. }) = scoped.subject() else { panic!("a user") };
        assert_eq!((scope, roles), (Some("reports:read openid"), &["user".to_owned()][..]));
        let plain = claims(Some("sid"), Some(vec![]), None, None);
        assert!(matches!(plain.subject(), Some(Subject::User { scope: None, .. })));
    }
}
