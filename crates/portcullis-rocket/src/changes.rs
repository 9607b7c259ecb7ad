//! What the change feed has told this server, kept in memory so that guards consult no network:
//! ended sessions, deleted clients, per-user role changes and the role → permission table.

use std::collections::{BTreeSet, HashMap};
use std::sync::RwLock;

use serde::Deserialize;

use crate::core::{self, roles_grant, AccessClaims, ChangeState};

/// One answer of `GET /feed/changes` (see the Portcullis README, "The change feed").
#[derive(Debug, Clone, Deserialize)]
pub struct FeedAnswer {
    pub cursor: i64,
    pub snapshot: bool,
    pub ended_sessions: Vec<Ended>,
    pub deleted_clients: Vec<DeletedClient>,
    pub role_changes: Vec<RoleChange>,
    pub roles: HashMap<String, BTreeSet<String>>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Ended {
    pub sid: String,
    pub until: i64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DeletedClient {
    pub client_id: String,
    pub until: i64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RoleChange {
    pub sub: String,
    pub version: i64,
    pub roles: BTreeSet<String>,
    pub until: i64,
}

#[derive(Debug, Default)]
struct Known {
    ended: HashMap<String, i64>,
    deleted_clients: HashMap<String, i64>,
    role_changes: HashMap<String, RoleChange>,
    roles: HashMap<String, BTreeSet<String>>,
}

/// The in-memory view of the feed.
#[derive(Debug, Default)]
pub struct Changes {
    known: RwLock<Known>,
}

impl Changes {
    /// Takes in an answer (idempotent: entries repeat across answers) and forgets entries whose
    /// tokens have all expired by `now`.
    pub fn apply(&self, answer: FeedAnswer, now: i64) {
        let Ok(mut known) = self.known.write() else { return };
        for e in answer.ended_sessions {
            let until = known.ended.entry(e.sid).or_insert(e.until);
            *until = (*until).max(e.until);
        }
        for c in answer.deleted_clients {
            let until = known.deleted_clients.entry(c.client_id).or_insert(c.until);
            *until = (*until).max(c.until);
        }
        for change in answer.role_changes {
            let newer = known.role_changes.get(&change.sub).is_none_or(|k| k.version < change.version);
            if newer {
                known.role_changes.insert(change.sub.clone(), change);
            }
        }
        known.roles = answer.roles;
        known.ended.retain(|_, until| *until >= now);
        known.deleted_clients.retain(|_, until| *until >= now);
        known.role_changes.retain(|_, change| change.until >= now);
    }

    /// Why a verified token must still be refused ([`core::refusal`](fn@core::refusal), the rule Portcullis's own
    /// guards apply). Fails closed if the lock is poisoned.
    pub fn refusal(&self, claims: &AccessClaims) -> Option<&'static str> {
        let Ok(known) = self.known.read() else { return Some("The authorization state is unavailable.") };
        core::refusal(claims, &*known)
    }

    /// Whether any of a user's `roles` grants `permission` now.
    pub fn roles_grant(&self, roles: &[String], permission: &str) -> bool {
        self.known.read().is_ok_and(|known| roles_grant(&known.roles, roles, permission))
    }
}

/// The feed's answers to the refusal rule's questions, read under one lock.
impl ChangeState<String> for Known {
    fn session_ended(&self, session: &String) -> bool {
        self.ended.contains_key(session)
    }

    fn client_deleted(&self, client: &String) -> bool {
        self.deleted_clients.contains_key(client)
    }

    fn with_current_roles(&self, user: &String, check: &dyn Fn(&BTreeSet<String>) -> bool) -> Option<bool> {
        self.role_changes.get(user).map(|change| check(&change.roles))
    }
}
