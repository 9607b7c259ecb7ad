//! Taking power away from tokens already issued (contract v2): the in-memory view of the
//! role-change feed that the bearer guard consults.
//!
//! Design: an access token carries the roles its user held when it was issued. When a user's
//! roles change, the roles held afterwards are recorded in the `role_changes` feed (in the same
//! transaction as the change) and kept in memory here, at once on the instance that made the
//! change and through the revocation poller on every other instance. A token naming a role the
//! user no longer holds was issued before the removal, so the guard refuses it with 401
//! `invalid_token`; the client refreshes and the new token carries the current roles. Tokens
//! issued after the change name only roles still held and pass, whatever their `iat` (whole
//! seconds would make an `iat` comparison refuse fresh tokens issued in the same second).
//! An entry lives as long as a token issued before it can: `access_ttl + leeway` after the change.
//!
//! Removing a permission from a role needs nothing here: guards resolve roles to permissions
//! through the role table, which every instance reloads when the roles version changes.

use std::collections::{BTreeSet, HashMap};
use std::sync::RwLock;

use crate::db::{DbPool, Id};
use crate::models::{RoleChange, RoleChangeStore};
use rocket_db_pools::Pool;

#[derive(Debug)]
struct Current {
    version: i64,
    roles: BTreeSet<String>,
    until: i64,
}

/// Users whose roles changed within the last access-token lifetime, with their current roles.
#[derive(Debug, Default)]
pub struct RoleChanges {
    entries: RwLock<HashMap<Id, Current>>,
}

impl RoleChanges {
    /// Whether a token of `user` naming `token_roles` names a role the user no longer holds
    /// (the verification core's rule, shared with resource servers). Fails closed. The guards
    /// ask through `core::refusal`; this is the same question for the tests below.
    #[cfg(test)]
    pub fn is_stale(&self, user: Id, token_roles: &[String]) -> bool {
        self.with_current_roles(user, &|current| portcullis_rocket::core::names_removed_role(current, token_roles))
            == Some(true)
    }

    /// `check` applied to `user`'s roles since their last change, if they changed within an
    /// access-token lifetime. Fails closed (`Some(true)`) if the lock is poisoned.
    pub fn with_current_roles(&self, user: Id, check: &dyn Fn(&BTreeSet<String>) -> bool) -> Option<bool> {
        let Ok(entries) = self.entries.read() else { return Some(true) };
        entries.get(&user).map(|current| check(&current.roles))
    }

    /// Takes in a feed row unless a newer change of the same user is already known.
    pub fn record(&self, change: &RoleChange) {
        let roles: BTreeSet<String> = match serde_json::from_str(&change.roles) {
            Ok(roles) => roles,
            Err(e) => {
                rocket::warn!("role-change feed: unreadable roles for {}: {e}", change.user_id);
                return;
            }
        };
        if let Ok(mut entries) = self.entries.write() {
            let newer = entries.get(&change.user_id).is_none_or(|known| known.version < change.version);
            if newer {
                entries.insert(change.user_id, Current { version: change.version, roles, until: change.expires_at });
            }
        }
    }

    /// Forgets changes older than every token they could concern.
    pub fn prune(&self, now: i64) {
        if let Ok(mut entries) = self.entries.write() {
            entries.retain(|_, current| current.until >= now);
        }
    }

    pub fn len(&self) -> usize {
        self.entries.read().map(|e| e.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reads the changes recorded since `since`; returns how many rows it read.
    pub async fn load_since(&self, pool: &DbPool, since: i64) -> Result<usize, String> {
        let mut conn = pool.get().await.map_err(|e| e.to_string())?;
        let rows = crate::db::with_conn!(conn, |c| c.role_changes_since(since).await).map_err(|e| e.to_string())?;
        for row in &rows {
            self.record(row);
        }
        Ok(rows.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(user: Id, version: i64, roles: &str) -> RoleChange {
        RoleChange { user_id: user, version, changed_at: 0, roles: roles.into(), expires_at: 100 }
    }

    #[test]
    fn a_token_naming_a_removed_role_is_stale_and_one_with_current_roles_is_not() {
        let (changes, user) = (RoleChanges::default(), Id::new());
        changes.record(&change(user, 1, r#"["user"]"#));
        assert!(changes.is_stale(user, &["admin".into(), "user".into()]));
        assert!(!changes.is_stale(user, &["user".into()]));
        assert!(!changes.is_stale(Id::new(), &["admin".into()]), "other users are untouched");
    }

    #[test]
    fn an_older_change_never_replaces_a_newer_one() {
        let (changes, user) = (RoleChanges::default(), Id::new());
        changes.record(&change(user, 2, r#"["admin","user"]"#));
        changes.record(&change(user, 1, r#"["user"]"#));
        assert!(!changes.is_stale(user, &["admin".into()]));
        changes.prune(101);
        assert!(changes.is_empty());
    }
}
