//! Scope values (RFC 6749 §3.3): space-separated, order and repetition meaningless. The OpenID
//! values (`openid`, `email`, ...) decide what ID tokens and userinfo say.

use crate::auth::keys::tokens::AccessClaims;

/// Whether the space-separated `scope` contains `value`.
pub fn scope_has(scope: &str, value: &str) -> bool {
    scope.split_whitespace().any(|v| v == value)
}

/// Whether the access token's `scope` claim contains `value`; a token without one (a session not
/// down-scoped) contains nothing.
pub fn claims_scope_has(claims: &AccessClaims, value: &str) -> bool {
    claims.scope.as_deref().is_some_and(|scope| scope_has(scope, value))
}

/// Whether every value of `requested` is in `granted` (a consent covers a request).
pub fn scope_covers(granted: &str, requested: &str) -> bool {
    requested.split_whitespace().all(|v| scope_has(granted, v))
}

/// The union of two scopes, each value once, sorted (a consent remembered across requests).
pub fn scope_union(a: &str, b: &str) -> String {
    let mut values: Vec<&str> = a.split_whitespace().chain(b.split_whitespace()).collect();
    values.sort_unstable();
    values.dedup();
    values.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_whole_words() {
        assert!(scope_has("openid email", "email"));
        assert!(!scope_has("openid emails", "email"));
        assert!(!scope_has("", "openid"));
    }

    #[test]
    fn a_consent_covers_subsets_and_grows_by_union() {
        assert!(scope_covers("openid email users:read", "email openid"));
        assert!(!scope_covers("openid", "openid email"));
        assert!(scope_covers("openid", ""));
        assert_eq!(scope_union("openid email", "users:read openid"), "email openid users:read");
    }
}
