//! What the change feed has told this server, kept in memory so that guards consult no network:
//! ended sessions, deleted clients, cut-off client tokens, per-user role changes and the role →
//! permission table.

use std::collections::{BTreeSet, HashMap};
use std::sync::RwLock;

use serde::Deserialize;

use crate::core::{self, roles_grant, AccessClaims, ChangeState, Cutoffs, Revoked, RoleChanges};

/// One answer of `GET /feed/changes` (see Portcullis's docs/services.md, "The change feed").
#[derive(Debug, Clone, Deserialize)]
pub struct FeedAnswer {
    pub cursor: i64,
    pub snapshot: bool,
    pub ended_sessions: Vec<Ended>,
    pub deleted_clients: Vec<DeletedClient>,
    /// Absent from a Portcullis older than the cutoffs: then none are known.
    #[serde(default)]
    pub client_cutoffs: Vec<ClientCutoff>,
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

/// A client's access tokens issued at or before `revoked_through` are refused until `until`.
#[derive(Debug, Clone, Deserialize)]
pub struct ClientCutoff {
    pub client_id: String,
    pub revoked_through: i64,
    pub until: i64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RoleChange {
    pub sub: String,
    pub version: i64,
    pub roles: BTreeSet<String>,
    pub until: i64,
}

/// The in-memory view of the feed: the verification core's change sets, and the role table.
#[derive(Debug, Default)]
pub struct Changes {
    ended: Revoked<String>,
    deleted_clients: Revoked<String>,
    cutoffs: Cutoffs<String>,
    role_changes: RoleChanges<String>,
    roles: RwLock<HashMap<String, BTreeSet<String>>>,
}

impl Changes {
    /// Takes in an answer (idempotent: entries repeat across answers) and forgets entries whose
    /// tokens have all expired by `now`.
    pub fn apply(&self, answer: FeedAnswer, now: i64) {
        for e in answer.ended_sessions {
            self.ended.insert(e.sid, e.until);
        }
        for c in answer.deleted_clients {
            self.deleted_clients.insert(c.client_id, c.until);
        }
        for c in answer.client_cutoffs {
            self.cutoffs.raise(c.client_id, c.revoked_through, c.until);
        }
        for change in answer.role_changes {
            self.role_changes.record(change.sub, change.version, change.roles, change.until);
        }
        if let Ok(mut roles) = self.roles.write() {
            *roles = answer.roles;
        }
        self.ended.prune(now);
        self.deleted_clients.prune(now);
        self.cutoffs.prune(now);
        self.role_changes.prune(now);
    }

    /// Why a verified token must still be refused ([`core::refusal`](fn@core::refusal), the rule
    /// Portcullis's own guards apply). Fails closed if a set cannot be read.
    pub fn refusal(&self, claims: &AccessClaims) -> Option<&'static str> {
        core::refusal(claims, self)
    }

    /// Whether any of a user's `roles` grants `permission` now.
    pub fn roles_grant(&self, roles: &[String], permission: &str) -> bool {
        self.roles.read().is_ok_and(|table| roles_grant(&table, roles, permission))
    }
}

/// The feed's answers to the refusal rule's questions.
impl ChangeState<String> for Changes {
    fn session_ended(&self, session: &String) -> bool {
        self.ended.contains(session)
    }

    fn client_deleted(&self, client: &String) -> bool {
        self.deleted_clients.contains(client)
    }

    fn client_tokens_revoked(&self, client: &String, iat: i64) -> bool {
        self.cutoffs.refuses(client, iat)
    }

    fn with_current_roles(&self, user: &String, check: &dyn Fn(&BTreeSet<String>) -> bool) -> Option<bool> {
        self.role_changes.with_current_roles(user, check)
    }
}
