//! Down-scoped sessions (RFC 6749 §3.3 and §6; README "Down-scoped tokens"). A login or refresh
//! may name a `scope`: permission names, with OpenID Connect values beside them that are not
//! permissions. The session keeps the scope it was first granted (`sessions.scope`) and every
//! access token of it carries one in `scope`. What a token may then use is decided where every
//! token is checked, the verification core of `portcullis-rocket` (`Caller::holds`): the
//! permissions of its roles, as the role table has them at the time of the request, that `scope`
//! names. This file only decides what may be asked for:
//!
//! - at login, permissions the user holds now through its roles (anything else, unknown names
//!   included, is 400 `invalid_scope`);
//! - at a refresh of a down-scoped session, a part of the scope it was first granted — never
//!   more, however the user's roles changed; without `scope`, that scope again (RFC 6749 §6). A
//!   permission the user has lost since stays named and simply grants nothing;
//! - at a refresh of a session without a scope, permissions the user holds now, for that
//!   access token only.
//!
//! The refresh's check reads the session before the exchange, so a refused request spends
//! nothing; the session's scope never changes, so nothing can come between.

use serde_json::json;

use crate::auth::audit::audit_event;
use crate::auth::guards::RequestOrigin;
use crate::auth::permissions::RoleTable;
use crate::auth::throttle::{self, Reservation};
use crate::auth::Auth;
use crate::db::{DbConn, Id};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::models::{AuditStore, RoleStore, UserStore};

/// OpenID Connect scope values a session keeps (OpenID Connect Core 1.0 §3.1.2.1, §5.4, §11):
/// they ask for claims or a refresh token, not for permissions.
pub const OPENID_VALUES: &[&str] = &["openid", "email", "profile", "offline_access"];

/// Standard OpenID Connect values for claims Portcullis does not have: accepted and dropped.
const IGNORED_OPENID_VALUES: &[&str] = &["address", "phone"];

/// The longest `scope` accepted, in bytes: far more than every permission there is, and little
/// enough to store in a session row.
const MAX_LEN: usize = 2048;

/// A requested or granted scope: its values in the order first named, without duplicates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    values: Vec<String>,
}

/// 400 `invalid_scope` (RFC 6749 §5.2).
pub fn invalid_scope(description: impl Into<String>) -> ApiError {
    ApiError::new(rocket::http::Status::BadRequest, ErrorCode::InvalidScope, description.into())
}

impl Scope {
    /// `raw` checked for syntax: space-separated values of the characters RFC 6749 §3.3 allows
    /// (printable ASCII but `"` and `\`), at most [`MAX_LEN`] bytes; 400 `invalid_scope`
    /// otherwise. `None` when it is absent or blank: no scope was asked for.
    pub fn parse(raw: Option<&str>) -> ApiResult<Option<Scope>> {
        let Some(raw) = raw.filter(|raw| !raw.trim_matches(' ').is_empty()) else { return Ok(None) };
        if raw.len() > MAX_LEN {
            return Err(invalid_scope(format!("The scope is longer than {MAX_LEN} bytes.")));
        }
        let allowed = |c: char| c == '\x21' || ('\x23'..='\x5b').contains(&c) || ('\x5d'..='\x7e').contains(&c);
        if !raw.chars().all(|c| c == ' ' || allowed(c)) {
            return Err(invalid_scope("The scope holds characters RFC 6749 section 3.3 does not allow."));
        }
        Ok(Some(Scope::stored(raw)))
    }

    /// A scope as stored or carried in a token (written by [`to_claim`](Self::to_claim)).
    pub fn stored(raw: &str) -> Scope {
        let mut values: Vec<String> = Vec::new();
        for value in raw.split(' ').filter(|v| !v.is_empty() && !IGNORED_OPENID_VALUES.contains(v)) {
            if !values.iter().any(|v| v == value) {
                values.push(value.to_owned());
            }
        }
        Scope { values }
    }

    /// The permission names of the scope (every value that is not an OpenID Connect one).
    pub fn permissions(&self) -> impl Iterator<Item = &str> {
        self.values.iter().map(String::as_str).filter(|v| !OPENID_VALUES.contains(v))
    }

    /// The first value not in `granted`: what would widen it.
    pub fn beyond<'a>(&'a self, granted: &Scope) -> Option<&'a str> {
        self.values.iter().map(String::as_str).find(|v| !granted.values.iter().any(|g| g == v))
    }

    /// The scope as the `scope` claim and token response carry it: space-separated.
    pub fn to_claim(&self) -> String {
        self.values.join(" ")
    }
}

impl Auth {
    /// 400 `invalid_scope` unless `user` holds every permission `scope` names now, through its
    /// roles as stored (not the role table of this instance, which may lag another's change by
    /// up to a poll interval).
    /// A scope naming no permission (`openid email`, the usual sign-in of a client) is held
    /// whatever the roles: the check below could only pass, so it reads nothing.
    pub(crate) async fn check_scope_held(&self, conn: &mut DbConn, user: Id, scope: &Scope) -> ApiResult<()> {
        if scope.permissions().next().is_none() {
            return Ok(());
        }
        let (roles, defined) = crate::db::with_conn!(conn, |c| {
            let roles = c.user_role_names(user).await?;
            Ok::<_, diesel::result::Error>((roles, c.all_roles().await?))
        })?;
        let everything = self.scopes_supported();
        let held: std::collections::BTreeSet<String> = defined
            .iter()
            .filter(|role| roles.contains(&role.name))
            .flat_map(|role| RoleTable::effective_permissions(role, &everything))
            .collect();
        match scope.permissions().find(|p| !held.contains(*p)) {
            Some(missing) => Err(invalid_scope(format!("'{missing}' is not a permission this account holds."))),
            None => Ok(()),
        }
    }

    /// The last step of a sign-in with a `scope`, once the password (and second factor) passed:
    /// [`check_scope_held`](Self::check_scope_held). A refusal gives the login's throttle
    /// reservation back (the password was right) and is audited as a failed login.
    pub(crate) async fn admit_scope(
        &self,
        conn: &mut DbConn,
        user: Id,
        scope: &Scope,
        reservation: Option<&Reservation>,
        client: &RequestOrigin,
        now: i64,
    ) -> ApiResult<()> {
        let Err(refused) = self.check_scope_held(conn, user, scope).await else { return Ok(()) };
        let event = audit_event("login_failed", now, Some(user), client, json!({"reason": "invalid_scope"}));
        crate::db::write_tx!(conn, |c| {
            if let Some(reservation) = reservation {
                throttle::release(c, reservation).await?;
            }
            c.insert_audit(&event).await
        })?;
        Err(refused)
    }

    /// 400 `invalid_scope` when a refresh of `presented` asks for more than it may: beyond the
    /// scope its session was first granted, or, for a session without one, a permission the user
    /// does not hold now. Only a token an exchange would accept is judged; anything else passes,
    /// for the exchange to refuse (or to detect as reuse) as without a scope.
    pub(crate) async fn check_refresh_scope(
        &self,
        conn: &mut DbConn,
        presented: &str,
        requested: Option<&Scope>,
    ) -> ApiResult<()> {
        let Some(requested) = requested else { return Ok(()) };
        let Some(session) = self.live_refresh_session(conn, presented).await? else { return Ok(()) };
        match session.scope.as_deref().map(Scope::stored) {
            Some(granted) => match requested.beyond(&granted) {
                Some(wider) => Err(invalid_scope(format!(
                    "'{wider}' is beyond the scope this session was granted; a refresh may only narrow it."
                ))),
                None => Ok(()),
            },
            None => self.check_scope_held(conn, session.user_id, requested).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(raw: &str) -> Scope {
        Scope::parse(Some(raw)).expect("well formed").expect("not blank")
    }

    #[test]
    fn a_scope_keeps_its_values_once_in_order_and_drops_the_ignored_openid_values() {
        let scope = parsed("users:read  openid address users:read audit:read");
        assert_eq!(scope.to_claim(), "users:read openid audit:read");
        assert_eq!(scope.permissions().collect::<Vec<_>>(), ["users:read", "audit:read"]);
        assert_eq!(Scope::parse(Some("   ")).unwrap(), None);
        assert_eq!(Scope::parse(None).unwrap(), None);
    }

    #[test]
    fn characters_rfc_6749_does_not_allow_and_overlong_scopes_are_invalid_scope() {
        for bad in ["users:read\u{0}", "users:\"read\"", "a\\b", "users:read\tx", "é", &"a".repeat(MAX_LEN + 1)] {
            let error = Scope::parse(Some(bad)).expect_err(bad);
            assert_eq!(error.code, ErrorCode::InvalidScope);
        }
    }

    #[test]
    fn what_widens_a_scope_is_any_value_it_lacks_openid_ones_included() {
        let granted = parsed("users:read audit:read");
        assert_eq!(parsed("audit:read").beyond(&granted), None);
        assert_eq!(parsed("audit:read users:write").beyond(&granted), Some("users:write"));
        assert_eq!(parsed("openid").beyond(&granted), Some("openid"));
    }
}
