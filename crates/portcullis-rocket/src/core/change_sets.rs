//! The in-memory change state the refusal rule ([`refusal`](fn@super::refusal)) reads, kept the
//! same way by Portcullis (fed from its database and its own changes) and by a resource server
//! (fed from the change feed):
//!
//! - [`Revoked`]: ended sessions and deleted clients, each until every access token it could
//!   have had has expired;
//! - [`RoleChanges`]: users whose roles changed within an access-token lifetime, with the roles
//!   they hold since (the newest change wins, whatever order changes arrive in);
//! - [`Cutoffs`]: clients whose access tokens issued up to a time are revoked (a secret rotation,
//!   RFC 7009 revocation by the client).
//!
//! Entries are dropped once no token they concern can still be valid, so the sets hold at most
//! the changes of one access-token lifetime. Both fail closed when their lock is poisoned.

use std::collections::{BTreeSet, HashMap};
use std::hash::Hash;
use std::sync::RwLock;

/// Ids (sessions, clients) whose tokens are refused, with the time they can be forgotten.
#[derive(Debug)]
pub struct Revoked<I> {
    entries: RwLock<HashMap<I, i64>>,
}

impl<I> Default for Revoked<I> {
    fn default() -> Self {
        Revoked { entries: RwLock::default() }
    }
}

impl<I: Eq + Hash> Revoked<I> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether tokens of `id` must be refused (`true` if the set cannot be read).
    pub fn contains(&self, id: &I) -> bool {
        self.entries.read().map_or(true, |entries| entries.contains_key(id))
    }

    /// Records that `id` ended; its tokens expire by `until`. Idempotent: the later time wins.
    pub fn insert(&self, id: I, until: i64) {
        if let Ok(mut entries) = self.entries.write() {
            let slot = entries.entry(id).or_insert(until);
            *slot = (*slot).max(until);
        }
    }

    /// Forgets ids whose tokens have all expired by `now`.
    pub fn prune(&self, now: i64) {
        if let Ok(mut entries) = self.entries.write() {
            entries.retain(|_, until| *until >= now);
        }
    }

    pub fn len(&self) -> usize {
        self.entries.read().map_or(0, |entries| entries.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Per client, the last `iat` (Unix seconds) whose access tokens are refused, until every such
/// token has expired. Cutoffs only ever rise, whatever order they arrive in.
#[derive(Debug)]
pub struct Cutoffs<I> {
    entries: RwLock<HashMap<I, (i64, i64)>>,
}

impl<I> Default for Cutoffs<I> {
    fn default() -> Self {
        Cutoffs { entries: RwLock::default() }
    }
}

impl<I: Eq + Hash> Cutoffs<I> {
    /// Whether a token of `client` issued at `iat` must be refused (`true` if the set cannot be
    /// read).
    pub fn refuses(&self, client: &I, iat: i64) -> bool {
        self.entries.read().map_or(true, |entries| entries.get(client).is_some_and(|(through, _)| iat <= *through))
    }

    /// The last refused `iat` of `client`, if it has a cutoff.
    pub fn through(&self, client: &I) -> Option<i64> {
        self.entries.read().ok().and_then(|entries| entries.get(client).map(|(through, _)| *through))
    }

    /// Refuses `client`'s tokens issued at or before `through`, until `until`; a lower cutoff or
    /// an earlier time changes nothing.
    pub fn raise(&self, client: I, through: i64, until: i64) {
        if let Ok(mut entries) = self.entries.write() {
            let slot = entries.entry(client).or_insert((through, until));
            *slot = (slot.0.max(through), slot.1.max(until));
        }
    }

    /// Forgets cutoffs whose tokens have all expired by `now`.
    pub fn prune(&self, now: i64) {
        if let Ok(mut entries) = self.entries.write() {
            entries.retain(|_, (_, until)| *until >= now);
        }
    }

    pub fn len(&self) -> usize {
        self.entries.read().map_or(0, |entries| entries.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A user's roles since their last change, and until when a token from before it can live.
#[derive(Debug)]
struct Current {
    version: i64,
    roles: BTreeSet<String>,
    until: i64,
}

/// Users whose roles changed within the last access-token lifetime, with their current roles.
#[derive(Debug)]
pub struct RoleChanges<I> {
    entries: RwLock<HashMap<I, Current>>,
}

impl<I> Default for RoleChanges<I> {
    fn default() -> Self {
        RoleChanges { entries: RwLock::default() }
    }
}

impl<I: Eq + Hash> RoleChanges<I> {
    /// Takes in change `version` of `user` (now holding `roles`, concerning tokens until
    /// `until`) unless a newer change of the same user is already known.
    pub fn record(&self, user: I, version: i64, roles: BTreeSet<String>, until: i64) {
        if let Ok(mut entries) = self.entries.write() {
            if entries.get(&user).is_none_or(|known| known.version < version) {
                entries.insert(user, Current { version, roles, until });
            }
        }
    }

    /// `check` applied to `user`'s roles since their last change, if they changed within an
    /// access-token lifetime. Fails closed (`Some(true)`) if the set cannot be read.
    pub fn with_current_roles(&self, user: &I, check: &dyn Fn(&BTreeSet<String>) -> bool) -> Option<bool> {
        let Ok(entries) = self.entries.read() else { return Some(true) };
        entries.get(user).map(|current| check(&current.roles))
    }

    /// Forgets changes older than every token they could concern.
    pub fn prune(&self, now: i64) {
        if let Ok(mut entries) = self.entries.write() {
            entries.retain(|_, current| current.until >= now);
        }
    }

    pub fn len(&self) -> usize {
        self.entries.read().map_or(0, |entries| entries.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::names_removed_role;

    fn roles(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|r| r.to_string()).collect()
    }

    fn stale(changes: &RoleChanges<&'static str>, user: &'static str, token_roles: &[&str]) -> bool {
        let token_roles: Vec<String> = token_roles.iter().map(|r| r.to_string()).collect();
        changes.with_current_roles(&user, &|current| names_removed_role(current, &token_roles)) == Some(true)
    }

    #[test]
    fn an_ended_id_is_refused_until_its_latest_time_and_then_forgotten() {
        let revoked = Revoked::new();
        revoked.insert("s1", 100);
        revoked.insert("s1", 90);
        assert!(revoked.contains(&"s1") && !revoked.contains(&"s2"));
        revoked.prune(100);
        assert!(revoked.contains(&"s1"), "tokens may live until 100 inclusive");
        revoked.prune(101);
        assert!(revoked.is_empty());
    }

    #[test]
    fn a_token_naming_a_removed_role_is_stale_and_one_with_current_roles_is_not() {
        let changes = RoleChanges::default();
        changes.record("u1", 1, roles(&["user"]), 100);
        assert!(stale(&changes, "u1", &["admin", "user"]));
        assert!(!stale(&changes, "u1", &["user"]));
        assert!(!stale(&changes, "u2", &["admin"]), "other users are untouched");
    }

    #[test]
    fn a_cutoff_refuses_tokens_up_to_its_second_only_rises_and_is_forgotten_after_its_tokens() {
        let cutoffs = Cutoffs::default();
        cutoffs.raise("c1", 50, 100);
        cutoffs.raise("c1", 40, 90);
        assert!(cutoffs.refuses(&"c1", 50) && !cutoffs.refuses(&"c1", 51));
        assert!(!cutoffs.refuses(&"c2", 0), "other clients are untouched");
        assert_eq!(cutoffs.through(&"c1"), Some(50));
        cutoffs.prune(100);
        assert!(cutoffs.refuses(&"c1", 50));
        cutoffs.prune(101);
        assert!(cutoffs.is_empty());
    }

    #[test]
    fn an_older_change_never_replaces_a_newer_one() {
        let changes = RoleChanges::default();
        changes.record("u1", 2, roles(&["admin", "user"]), 100);
        changes.record("u1", 1, roles(&["user"]), 100);
        assert!(!stale(&changes, "u1", &["admin"]));
        changes.prune(101);
        assert!(changes.is_empty());
    }
}
