//! The one rule for refusing a token whose signature and claims verified: its session ended, its
//! client was deleted or cut its tokens off, or it names a role its user no longer holds. Portcullis answers the
//! questions from its in-memory revocation and role-change sets, a resource server from the
//! change feed; both guards call [`refusal`].

use std::collections::BTreeSet;

use super::claims::{AccessClaims, Subject};

/// What a source knows about changes since tokens were issued. An implementation that cannot
/// read its state must fail closed: answer `true`, and `Some(true)` for the roles.
pub trait ChangeState<I> {
    /// Whether the session `session` has ended (logout, revocation, a disabled account…).
    fn session_ended(&self, session: &I) -> bool;
    /// Whether the client `client` has been deleted.
    fn client_deleted(&self, client: &I) -> bool;
    /// Whether `client`'s access tokens issued at `iat` have been revoked (its secret rotated
    /// since, or the client revoked that token or a later one).
    fn client_tokens_revoked(&self, client: &I, iat: i64) -> bool;
    /// `check` applied to `user`'s roles since their last change, when they changed within an
    /// access-token lifetime; `None` when they did not.
    fn with_current_roles(&self, user: &I, check: &dyn Fn(&BTreeSet<String>) -> bool) -> Option<bool>;
}

/// Why a verified token must still be refused, as a sentence for `error_description`; `None` when
/// it may be used.
pub fn refusal<I: PartialEq + std::fmt::Display, S: ChangeState<I> + ?Sized>(
    claims: &AccessClaims<I>,
    state: &S,
) -> Option<&'static str> {
    match claims.subject() {
        Some(Subject::User { user_id, session_id, roles, .. }) => {
            if state.session_ended(session_id) {
                return Some("The session of this access token has ended.");
            }
            let stale = state.with_current_roles(user_id, &|current| names_removed_role(current, roles));
            (stale == Some(true)).then_some("A role of this access token was taken away; refresh it.")
        }
        Some(Subject::Client { client_id, .. }) => {
            if state.client_deleted(client_id) {
                return Some("The client of this access token has been deleted.");
            }
            state.client_tokens_revoked(client_id, claims.iat).then_some("This access token has been revoked.")
        }
        None => Some("The access token is invalid."),
    }
}

/// The role-change rule: a user's token naming a role the user no longer holds was issued before
/// the removal and must be refreshed. Tokens naming only current roles pass whatever their `iat`
/// (whole seconds would refuse fresh tokens issued in the second of the change otherwise).
pub fn names_removed_role(current_roles: &BTreeSet<String>, token_roles: &[String]) -> bool {
    token_roles.iter().any(|role| !current_roles.contains(role))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[derive(Default)]
    struct State {
        ended: Vec<String>,
        deleted: Vec<String>,
        cut_off: HashMap<String, i64>,
        roles: HashMap<String, BTreeSet<String>>,
    }

    impl ChangeState<String> for State {
        fn session_ended(&self, session: &String) -> bool {
            self.ended.contains(session)
        }
        fn client_deleted(&self, client: &String) -> bool {
            self.deleted.contains(client)
        }
        fn client_tokens_revoked(&self, client: &String, iat: i64) -> bool {
            self.cut_off.get(client).is_some_and(|through| iat <= *through)
        }
        fn with_current_roles(&self, user: &String, check: &dyn Fn(&BTreeSet<String>) -> bool) -> Option<bool> {
            self.roles.get(user).map(check)
        }
    }

    fn user(roles: &[&str]) -> AccessClaims {
        AccessClaims {
            iss: "p".into(),
            aud: "p".into(),
            sub: "u1".into(),
            jti: "j".into(),
            iat: 0,
            exp: 1,
            nbf: None,
            sid: Some("s1".into()),
            roles: Some(roles.iter().map(|r| r.to_string()).collect()),
            client_id: None,
            scope: None,
            amr: vec![],
        }
    }

    #[test]
    fn a_token_naming_a_removed_role_is_stale_and_one_naming_current_roles_is_not() {
        let current: BTreeSet<String> = ["user".to_owned()].into();
        assert!(names_removed_role(&current, &["admin".into(), "user".into()]));
        assert!(!names_removed_role(&current, &["user".into()]));
    }

    #[test]
    fn an_ended_session_a_removed_role_and_a_deleted_client_each_refuse_their_tokens() {
        let mut state = State::default();
        assert_eq!(refusal(&user(&["admin"]), &state), None);
        state.roles.insert("u1".into(), ["user".to_owned()].into());
        assert_eq!(refusal(&user(&["user"]), &state), None);
        assert!(refusal(&user(&["admin"]), &state).is_some_and(|r| r.contains("taken away")));
        state.ended.push("s1".into());
        assert!(refusal(&user(&["user"]), &state).is_some_and(|r| r.contains("session")));
        let mut client = user(&[]);
        (client.sid, client.roles, client.client_id, client.scope) =
            (None, None, Some("u1".into()), Some(String::new()));
        assert_eq!(refusal(&client, &state), None);
        state.cut_off.insert("u1".into(), 0);
        assert!(refusal(&client, &state).is_some_and(|r| r.contains("revoked")));
        state.cut_off.clear();
        state.deleted.push("u1".into());
        assert!(refusal(&client, &state).is_some_and(|r| r.contains("deleted")));
    }
}
