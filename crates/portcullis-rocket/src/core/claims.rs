//! The claims of a Portcullis access token, one type for both sides: generic over the id type,
//! so Portcullis reads `sub`, `sid`, `jti` and `client_id` as its UUIDs (a token whose ids are not
//! UUIDs is refused as it is parsed) and a resource server as strings.

use serde::{Deserialize, Serialize};

/// The claims of a Portcullis access token. A user's token carries `sid` and `roles` (and `amr`
/// once Portcullis records how the user authenticated), and `scope` when its session is
/// down-scoped; a client's carries `client_id` (= `sub`) and `scope`, and neither of the user's. [`AccessClaims::subject`] checks that a token is exactly
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<I>,
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

impl<I: PartialEq> AccessClaims<I> {
    /// The token's subject, or `None` when its claims mix the two kinds or lack one's claims.
    pub fn subject(&self) -> Option<Subject<'_, I>> {
        match (&self.sid, &self.roles, &self.client_id, &self.scope) {
            (Some(session_id), Some(roles), None, scope) => {
                Some(Subject::User { user_id: &self.sub, session_id, roles, scope: scope.as_deref() })
            }
            (None, None, Some(client_id), Some(scope)) if *client_id == self.sub => {
                Some(Subject::Client { client_id, scope })
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(scope: Option<&str>) -> AccessClaims {
        AccessClaims {
            iss: "p".into(),
            aud: "p".into(),
            sub: "u1".into(),
            jti: "j".into(),
            iat: 0,
            exp: 1,
            nbf: None,
            sid: Some("s1".into()),
            roles: Some(vec!["user".into()]),
            client_id: None,
            scope: scope.map(str::to_owned),
            amr: vec![],
        }
    }

    #[test]
    fn a_users_token_with_a_scope_is_a_down_scoped_user_and_without_one_a_plain_one() {
        let scoped = claims(Some("reports:read openid"));
        let Some(Subject::User { scope, roles, .. }) = scoped.subject() else { panic!("a user") };
        assert_eq!((scope, roles), (Some("reports:read openid"), &["user".to_owned()][..]));
        assert!(matches!(claims(None).subject(), Some(Subject::User { scope: None, .. })));
    }
}
