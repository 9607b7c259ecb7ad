//! Taking power away from tokens already issued (docs/administration.md): the in-memory view of the
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

use std::collections::BTreeSet;

use rocket_db_pools::Pool;

use crate::db::{DbPool, Id};
use crate::models::{RoleChange, RoleChangeStore};

/// Users whose roles changed within the last access-token lifetime, with their current roles: the
/// verification core's set, the one a resource server keeps from the change feed.
pub type RoleChanges = portcullis_rocket::core::RoleChanges<Id>;

/// Takes a feed row into `set` unless a newer change of the same user is already known.
pub fn record(set: &RoleChanges, change: &RoleChange) {
    match serde_json::from_str::<BTreeSet<String>>(&change.roles) {
        Ok(roles) => set.record(change.user_id, change.version, roles, change.expires_at),
        Err(e) => rocket::warn!("role-change feed: unreadable roles for {}: {e}", change.user_id),
    }
}

/// Reads into `set` the changes recorded since `since`; returns how many rows it read.
pub async fn load_since(set: &RoleChanges, pool: &DbPool, since: i64) -> Result<usize, String> {
    let mut conn = pool.get().await.map_err(|e| e.to_string())?;
    let rows = crate::db::with_conn!(conn, |c| c.role_changes_since(since).await).map_err(|e| e.to_string())?;
    for row in &rows {
        record(set, row);
    }
    Ok(rows.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_rocket::core::names_removed_role;

    fn change(user: Id, version: i64, roles: &str) -> RoleChange {
        RoleChange { user_id: user, version, changed_at: 0, roles: roles.into(), expires_at: 100 }
    }

    fn is_stale(changes: &RoleChanges, user: Id, token_roles: &[String]) -> bool {
        changes.with_current_roles(&user, &|current| names_removed_role(current, token_roles)) == Some(true)
    }

    #[test]
    fn a_feed_row_names_the_roles_held_since_and_an_unreadable_one_is_skipped() {
        let (changes, user) = (RoleChanges::default(), Id::new());
        record(&changes, &change(user, 1, r#"["user"]"#));
        assert!(is_stale(&changes, user, &["admin".into(), "user".into()]));
        assert!(!is_stale(&changes, user, &["user".into()]));
        record(&changes, &change(Id::new(), 1, "not json"));
        assert_eq!(changes.len(), 1);
    }
}
