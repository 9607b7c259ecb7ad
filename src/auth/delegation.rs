//! Delegation: nobody grants what they do not hold, and nobody acts on an account above them.
//!
//! Every grant passes through [`check`]: assigning or removing roles, creating, changing or
//! deleting a role, and creating, re-keying or deleting a service client. The actor's effective
//! permissions must include every permission of what it grants or takes away, and only a holder of
//! the `admin` role may assign or remove `admin` (holding every permission through other roles is
//! not enough: `admin` also carries permissions added to the catalogue later).
//!
//! Every action on an account (disable, enable, delete, end its sessions, reset its MFA, change
//! its roles) passes through [`account_action`]: the actor must hold every permission the account
//! holds, and only an `admin` acts on an account holding `admin` (docs/security.md, "Delegation"). Otherwise
//! a holder of `users:write` could lock an admin out, or re-enable one disabled after a leak.
//!
//! A client acts with its token's scope, bounded by what the account that created it holds now
//! ([`Auth::creator_bound`]): demoting a user also demotes the clients it made.
//!
//! A refused attempt is answered by [`Auth::refuse_grant`], which audits it as `grant_denied` and
//! returns 403 `insufficient_permissions`.

use std::collections::BTreeSet;

use serde_json::json;

use crate::auth::audit::audit_by;
use crate::auth::guards::{self, RequestOrigin};
use crate::auth::permissions::{RoleTable, ADMIN_ROLE};
use crate::auth::Auth;
use crate::db::{DbConn, Id};
use crate::error::{ApiError, ApiResult};
use crate::models::{AuditStore, ClientStore, Role, RoleStore, UserStore};

/// How many creators [`Auth::creator_bound`] follows (a client made by a client made by ...);
/// a longer chain is bounded to nothing rather than walked without end.
const MAX_CREATOR_CHAIN: usize = 16;

/// What an actor may grant: its effective permissions and whether it holds `admin`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grantor {
    pub admin: bool,
    pub permissions: BTreeSet<String>,
}

/// What an actor is about to grant or take away, described for the audit log.
#[derive(Debug, Clone)]
pub struct Delegated {
    /// Every permission the grant confers or removes.
    pub permissions: BTreeSet<String>,
    /// Whether the `admin` role is assigned or removed.
    pub admin_role: bool,
    /// What was attempted, as recorded in a `grant_denied` audit event.
    pub attempt: serde_json::Value,
}

impl Delegated {
    /// Assigning or removing `roles` (looked up in `defined`, the stored roles; `admin` holds
    /// `everything`).
    pub fn roles<'a>(
        roles: impl IntoIterator<Item = &'a String>,
        defined: &[Role],
        everything: &[String],
        attempt: serde_json::Value,
    ) -> Self {
        let mut grant = Delegated { permissions: BTreeSet::new(), admin_role: false, attempt };
        for name in roles {
            grant.admin_role |= name == ADMIN_ROLE;
            if let Some(role) = defined.iter().find(|r| &r.name == name) {
                grant.permissions.extend(RoleTable::effective_permissions(role, everything));
            }
        }
        grant
    }

    /// Conferring `permissions` directly (a role definition or a client).
    pub fn permissions<'a>(permissions: impl IntoIterator<Item = &'a String>, attempt: serde_json::Value) -> Self {
        Delegated { permissions: permissions.into_iter().cloned().collect(), admin_role: false, attempt }
    }
}

/// Why a grant was refused: what the grantor lacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    pub missing: Vec<String>,
}

/// A refused grant or account action: what was attempted and what the actor lacks.
#[derive(Debug, Clone)]
pub struct Refused {
    pub grant: Delegated,
    pub denial: Denial,
}

/// The one delegation rule: `Ok` when `grantor` holds everything `grant` confers or removes.
pub fn check(grantor: &Grantor, grant: &Delegated) -> Result<(), Denial> {
    let mut missing: Vec<String> = if grantor.admin {
        vec![]
    } else {
        grant.permissions.iter().filter(|p| !grantor.permissions.contains(*p)).cloned().collect()
    };
    if grant.admin_role && !grantor.admin {
        missing.insert(0, format!("role:{ADMIN_ROLE}"));
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Denial { missing })
    }
}

/// The one rule for actions on an account: `actor` must hold every permission `target` holds
/// (and `admin` when it holds `admin`), plus those of `granted`, the roles a role change assigns
/// or removes, plus `needs`, the action's own permission (which the bearer guard checked against
/// the token; checked again here because a client's token outlives its creator's demotion). Call
/// inside the action's transaction, after its admin-set lock (which every role change takes), so
/// the roles checked — the target's and the actor's — are the roles when the action is written: a
/// demotion committed meanwhile cannot slip between check and write. Answer a [`Refused`] with
/// [`Auth::refuse_grant`] after the transaction.
#[allow(clippy::too_many_arguments)]
pub async fn account_action<C: ClientStore + RoleStore + UserStore>(
    c: &mut C,
    actor: &guards::Caller,
    target: Id,
    needs: &str,
    granted: &[String],
    everything: &[String],
    attempt: serde_json::Value,
) -> diesel::QueryResult<Result<(), Refused>> {
    let grantor = grantor(c, actor, everything).await?;
    let held = c.user_role_names(target).await?;
    let defined = c.all_roles().await?;
    let mut grant = Delegated::roles(held.iter().chain(granted), &defined, everything, attempt);
    grant.permissions.insert(needs.to_owned());
    Ok(check(&grantor, &grant).map_err(|denial| Refused { grant, denial }))
}

/// What `actor` may grant now: for a client, the permissions of its token's scope within what
/// its creator holds ([`creator_bound`]; never `admin`); for a user, the roles of its token that
/// it still holds in storage, resolved through the stored role definitions (so a grant never
/// relies on a stale token or role table), within its scope when down-scoped. One function for users and clients, read on the
/// connection (or inside the transaction) it is given.
pub async fn grantor<C: ClientStore + RoleStore + UserStore>(
    c: &mut C,
    actor: &guards::Caller,
    everything: &[String],
) -> diesel::QueryResult<Grantor> {
    match actor {
        guards::Caller::User(user) => {
            let held = c.user_role_names(user.user_id).await?;
            let mut grantor = Grantor { admin: false, permissions: BTreeSet::new() };
            for role in c.all_roles().await?.iter().filter(|d| held.contains(&d.name) && user.roles.contains(&d.name)) {
                grantor.admin |= role.name == ADMIN_ROLE;
                grantor.permissions.extend(RoleTable::effective_permissions(role, everything));
            }
            // A down-scoped token grants only what its scope names, and never acts as `admin`
            // (which would reach permissions the scope does not name).
            if user.scope.is_some() {
                grantor.admin = false;
                grantor.permissions.retain(|p| user.scope_allows(p));
            }
            Ok(grantor)
        }
        guards::Caller::Client(client) => {
            let mut permissions: BTreeSet<String> = client.scope.iter().cloned().collect();
            if let Some(bound) = creator_bound(c, client.client_id, everything).await? {
                permissions.retain(|p| bound.contains(p));
            }
            Ok(Grantor { admin: false, permissions })
        }
    }
}

/// What `client_id`'s creators hold now; `None` when it was made from the command line.
async fn creator_bound<C: ClientStore + RoleStore + UserStore>(
    c: &mut C,
    client_id: Id,
    everything: &[String],
) -> diesel::QueryResult<Option<BTreeSet<String>>> {
    let narrow = |bound: Option<BTreeSet<String>>, held: BTreeSet<String>| match bound {
        Some(bound) => bound.intersection(&held).cloned().collect(),
        None => held,
    };
    let (mut bound, mut current) = (None, client_id);
    for _ in 0..MAX_CREATOR_CHAIN {
        let Some(creator) = c.client_creator(current).await? else { return Ok(Some(BTreeSet::new())) };
        let Some(creator) = creator else { return Ok(bound) };
        if let Some(user) = c.find_user(creator).await? {
            // A disabled account holds nothing: its clients must not outlive its lock-out.
            let mut held = BTreeSet::new();
            if !user.disabled {
                let roles = c.user_role_names(creator).await?;
                for role in c.all_roles().await?.iter().filter(|r| roles.contains(&r.name)) {
                    held.extend(RoleTable::effective_permissions(role, everything));
                }
            }
            return Ok(Some(narrow(bound, held)));
        }
        match c.find_client(creator).await? {
            Some((parent, _)) => (bound, current) = (Some(narrow(bound, parent.permissions)), creator),
            // A creator that is gone holds nothing.
            None => return Ok(Some(BTreeSet::new())),
        }
    }
    Ok(Some(BTreeSet::new()))
}

impl Auth {
    /// An actor's grantor ([`grantor`]), read outside any transaction: for grants whose
    /// transaction re-reads nothing the grantor depends on.
    pub async fn grantor_of(&self, conn: &mut DbConn, actor: &guards::Caller) -> ApiResult<Grantor> {
        let everything = self.scopes_supported();
        Ok(crate::db::with_conn!(conn, |c| grantor(c, actor, &everything).await)?)
    }

    /// The most a client may exercise: the permissions its creator holds now (through a chain of
    /// clients creating clients, what every link holds). `None` for a client made from the
    /// command line, which no account bounds. A deleted or disabled creator holds nothing.
    pub async fn creator_bound(&self, conn: &mut DbConn, client_id: Id) -> ApiResult<Option<BTreeSet<String>>> {
        let everything = self.scopes_supported();
        Ok(crate::db::with_conn!(conn, |c| creator_bound(c, client_id, &everything).await)?)
    }

    /// Audits a refused grant as `grant_denied` (in its own transaction: the refused change
    /// itself wrote nothing) and returns the 403 to answer with.
    pub async fn refuse_grant(
        &self,
        conn: &mut DbConn,
        actor: Option<Id>,
        subject: Option<Id>,
        client: &RequestOrigin,
        grant: &Delegated,
        denial: Denial,
    ) -> ApiError {
        let detail = json!({"attempt": grant.attempt, "missing": denial.missing});
        let audit = audit_by("grant_denied", self.clock.now(), subject, actor, client, detail);
        if let Err(e) = crate::db::write_tx!(conn, |c| c.insert_audit(&audit).await) {
            rocket::warn!("cannot audit a refused grant: {e}");
        }
        let lacking = denial.missing.join(", ");
        ApiError::forbidden(format!("Nobody grants what they do not hold; the caller lacks {lacking}."))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grantor(admin: bool, permissions: &[&str]) -> Grantor {
        Grantor { admin, permissions: permissions.iter().map(|p| p.to_string()).collect() }
    }

    fn grant(permissions: &[&str], admin_role: bool) -> Delegated {
        Delegated { permissions: permissions.iter().map(|p| p.to_string()).collect(), admin_role, attempt: json!({}) }
    }

    #[test]
    fn a_grantor_may_grant_a_subset_of_its_permissions() {
        assert_eq!(check(&grantor(false, &["users:read", "users:write"]), &grant(&["users:read"], false)), Ok(()));
        let denied = check(&grantor(false, &["users:write"]), &grant(&["audit:read", "users:write"], false));
        assert_eq!(denied, Err(Denial { missing: vec!["audit:read".into()] }));
    }

    #[test]
    fn only_an_admin_grants_admin_even_to_a_holder_of_every_permission() {
        let everything = crate::auth::permissions::CATALOGUE;
        assert!(check(&grantor(false, everything), &grant(&[], true)).is_err());
        assert_eq!(check(&grantor(true, &[]), &grant(&["audit:read"], true)), Ok(()));
    }
}
