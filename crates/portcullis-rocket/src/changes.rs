//! What the change feed has told this server, kept in memory so that guards consult no network:
//! ended sessions, deleted clients, per-user role changes and the role → permission table.

use std::collections::{BTreeSet, HashMap};
use std::sync::RwLock;

use serde::Deserialize;

use crate::core::{names_removed_role, roles_grant, AccessClaims, Subject};

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

    /// Why a verified token must still be refused: its session ended, its client was deleted, or
    /// it names a role its user no longer holds. Fails closed if the lock is poisoned.
    pub fn refusal(&self, claims: &AccessClaims) -> Option<&'static str> {
        let Ok(known) = self.known.read() else { return Some("The authorization state is unavailable.") };
        match claims.subject()? {
            Subject::User { user_id, session_id, roles } => {
                if known.ended.contains_key(session_id) {
                    return Some("The session of this access token has ended.");
                }
                let stale = known.role_changes.get(user_id).is_some_and(|c| names_removed_role(&c.roles, roles));
                stale.then_some("A role of this access token was taken away; refresh it.")
            }
            Subject::Client { client_id, .. } => known
                .deleted_clients
                .contains_key(client_id)
                .then_some("The client of this access token has been deleted."),
        }
    }

    /// Whether any of a user's `roles` grants `permission` now.
    pub fn roles_grant(&self, roles: &[String], permission: &str) -> bool {
        self.known.read().is_ok_and(|known| roles_grant(&known.roles, roles, permission))
    }
}
