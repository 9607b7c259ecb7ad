//! User administration: listing, roles, disable/enable, delete, and their sessions.

use std::collections::{BTreeSet, HashMap};

use serde_json::json;

use crate::auth::accounts::Account;
use crate::auth::audit::audit_by;
use crate::auth::delegation::{self, Refused};
use crate::auth::guards::{self, RequestOrigin};
use crate::auth::permissions::{Permission, SessionsRevoke, UsersWrite, ADMIN_ROLE};
use crate::auth::sync::client_cutoffs::cut_off_clients_of;
use crate::auth::Auth;
use crate::db::{DbConn, Id};
use crate::error::{ApiError, ApiResult};
use crate::models::{AdminLock, AuditStore, RoleChangeStore, RoleStore, Session, SessionStore, User, UserStore};
use crate::page::Page;

/// One page of accounts and how many match in all (the HTTP shape is `routes::views::UserPage`).
#[derive(Debug)]
pub struct AccountPage {
    pub users: Vec<Account>,
    pub total: i64,
}

fn not_found() -> ApiError {
    ApiError::not_found("No such user.")
}

fn last_admin() -> ApiError {
    ApiError::conflict("This is the last enabled admin; make another admin first.")
}

/// Whether removing `user` from the enabled admins would leave none; call inside a transaction
/// that holds the admin-set lock.
fn would_remove_last_admin(user: &User, roles: &[String], admins: &[Id]) -> bool {
    !user.disabled && roles.iter().any(|r| r == ADMIN_ROLE) && admins.iter().all(|a| *a == user.id)
}

impl Auth {
    /// The user object of `id`, or 404.
    pub async fn user_view(&self, conn: &mut DbConn, id: Id) -> ApiResult<Account> {
        let (user, roles) = crate::db::with_conn!(conn, |c| c.find_user_with_roles(id).await)?.ok_or_else(not_found)?;
        Ok(Account::new(&user, roles))
    }

    pub async fn list_users(&self, conn: &mut DbConn, email: Option<&str>, page: Page) -> ApiResult<AccountPage> {
        let email = email.map(|e| e.trim().to_lowercase()).filter(|e| !e.is_empty());
        let (users, total, roles) = crate::db::with_conn!(conn, |c| {
            let (users, total) = c.list_users(email.as_deref(), page.limit, page.offset).await?;
            let ids: Vec<Id> = users.iter().map(|u| u.id).collect();
            let roles = c.roles_of_users(&ids).await?;
            Ok::<_, diesel::result::Error>((users, total, roles))
        })?;
        let mut by_user: HashMap<Id, Vec<String>> = HashMap::new();
        for (user, role) in roles {
            by_user.entry(user).or_default().push(role);
        }
        let users = users.iter().map(|u| Account::new(u, by_user.remove(&u.id).unwrap_or_default())).collect();
        Ok(AccountPage { users, total })
    }

    /// Replaces a user's roles: 422 for an unknown role, 403 beyond the actor's own power
    /// (delegation), 409 when it would demote the last admin. The roles held afterwards go to the
    /// role-change feed, so tokens naming a removed role stop working at once here and within a
    /// poll interval elsewhere.
    pub async fn set_roles(
        &self,
        conn: &mut DbConn,
        actor: &guards::Caller,
        target: Id,
        roles: Vec<String>,
        client: &RequestOrigin,
    ) -> ApiResult<Account> {
        let mut roles = roles;
        roles.sort();
        roles.dedup();
        let known = crate::db::with_conn!(conn, |c| c.existing_role_names(&roles).await)?;
        if let Some(unknown) = roles.iter().find(|r| !known.contains(r)) {
            return Err(ApiError::invalid_field(format!("roles: unknown role {unknown:?}")));
        }
        let now = self.clock.now();
        let until = self.revoke_until(now);
        let everything = self.scopes_supported();
        let after: BTreeSet<&String> = roles.iter().collect();
        let outcome = crate::db::write_tx!(conn, |c| {
            c.lock_admin_set().await?;
            let user = c.find_user(target).await?.ok_or_else(not_found)?;
            let before = c.user_role_names(target).await?;
            let before_set: BTreeSet<&String> = before.iter().collect();
            let attempt = json!({"action": "set_roles", "before": before, "after": roles});
            // Every permission the account holds before and after: the account's own (an account
            // action) and those of every role assigned or removed (a grant).
            if let Err(refused) =
                delegation::account_action(c, actor, target, UsersWrite::NAME, &roles, &everything, attempt).await?
            {
                return Ok(Err(refused));
            }
            let demoted = before_set.contains(&ADMIN_ROLE.to_string()) && !after.contains(&ADMIN_ROLE.to_string());
            if demoted && would_remove_last_admin(&user, &before, &c.active_admins().await?) {
                return Err(last_admin());
            }
            c.set_user_roles(target, &roles).await?;
            let change = match before_set == after {
                true => None,
                false => Some(c.record_role_change(target, &json!(roles).to_string(), now, until).await?),
            };
            // A role taken away: the account's clients lose what it lost, tokens included.
            let cutoffs = match before_set.is_subset(&after) {
                true => vec![],
                false => cut_off_clients_of(c, &[target], now, until).await?,
            };
            let detail = json!({"before": before, "after": roles});
            c.insert_audit(&audit_by("roles_changed", now, Some(target), Some(*actor.id()), client, detail)).await?;
            Ok::<_, ApiError>(Ok((change, cutoffs)))
        })?;
        match outcome {
            Err(refused) => return Err(self.refuse_account_action(conn, actor, target, client, refused).await),
            Ok((change, cutoffs)) => {
                if let Some(change) = change {
                    crate::auth::sync::role_changes::record(&self.role_changes, &change);
                    self.sync_wake.wake();
                }
                self.cut_all_off_locally(&cutoffs);
            }
        }
        self.user_view(conn, target).await
    }

    /// Disables (ending every session at once) or re-enables an account.
    pub async fn set_disabled(
        &self,
        conn: &mut DbConn,
        actor: &guards::Caller,
        target: Id,
        disabled: bool,
        client: &RequestOrigin,
    ) -> ApiResult<Account> {
        let everything = self.scopes_supported();
        let ending = self.ending("user_disabled");
        let action = if disabled { "disable_user" } else { "enable_user" };
        let outcome = crate::db::write_tx!(conn, |c| {
            c.lock_admin_set().await?;
            let user = c.find_user(target).await?.ok_or_else(not_found)?;
            let attempt = json!({"action": action});
            if let Err(refused) =
                delegation::account_action(c, actor, target, UsersWrite::NAME, &[], &everything, attempt).await?
            {
                return Ok(Err(refused));
            }
            if disabled && would_remove_last_admin(&user, &c.user_role_names(target).await?, &c.active_admins().await?)
            {
                return Err(last_admin());
            }
            c.set_disabled(target, disabled, ending.now).await?;
            let ended = if disabled { c.end_user_sessions(target, None, ending).await? } else { vec![] };
            let cutoffs = match disabled {
                true => cut_off_clients_of(c, &[target], ending.now, ending.revoke_until).await?,
                false => vec![],
            };
            let event = if disabled { "user_disabled" } else { "user_enabled" };
            let audit = audit_by(
                event,
                ending.now,
                Some(target),
                Some(*actor.id()),
                client,
                json!({"sessions_ended": ended.len()}),
            );
            c.insert_audit(&audit).await?;
            Ok::<_, ApiError>(Ok((ended, cutoffs)))
        })?;
        let (ended, cutoffs) = match outcome {
            Ok(done) => done,
            Err(refused) => return Err(self.refuse_account_action(conn, actor, target, client, refused).await),
        };
        self.revoke_locally(&ended, &ending);
        self.cut_all_off_locally(&cutoffs);
        self.user_view(conn, target).await
    }

    /// Deletes an account after ending its sessions; 409 for the last admin.
    pub async fn delete_user(
        &self,
        conn: &mut DbConn,
        actor: &guards::Caller,
        target: Id,
        client: &RequestOrigin,
    ) -> ApiResult<()> {
        let everything = self.scopes_supported();
        let ending = self.ending("user_deleted");
        let outcome = crate::db::write_tx!(conn, |c| {
            c.lock_admin_set().await?;
            let user = c.find_user(target).await?.ok_or_else(not_found)?;
            let attempt = json!({"action": "delete_user"});
            if let Err(refused) =
                delegation::account_action(c, actor, target, UsersWrite::NAME, &[], &everything, attempt).await?
            {
                return Ok(Err(refused));
            }
            if would_remove_last_admin(&user, &c.user_role_names(target).await?, &c.active_admins().await?) {
                return Err(last_admin());
            }
            let ended = c.end_user_sessions(target, None, ending).await?;
            let cutoffs = cut_off_clients_of(c, &[target], ending.now, ending.revoke_until).await?;
            c.delete_user(target).await?;
            let audit = audit_by(
                "user_deleted",
                ending.now,
                Some(target),
                Some(*actor.id()),
                client,
                json!({"email": user.email}),
            );
            c.insert_audit(&audit).await?;
            Ok::<_, ApiError>(Ok((ended, cutoffs)))
        })?;
        let (ended, cutoffs) = match outcome {
            Ok(done) => done,
            Err(refused) => return Err(self.refuse_account_action(conn, actor, target, client, refused).await),
        };
        self.revoke_locally(&ended, &ending);
        self.cut_all_off_locally(&cutoffs);
        Ok(())
    }

    /// A user's live sessions; 404 for an unknown user.
    pub async fn user_sessions(&self, conn: &mut DbConn, target: Id, page: Page) -> ApiResult<Vec<Session>> {
        self.user_view(conn, target).await?;
        self.list_sessions(conn, target, page).await
    }

    /// Ends every session of a user; 404 for an unknown user. The delegation check runs inside
    /// the transaction that ends them, after the admin-set lock, like every account action.
    pub async fn revoke_user_sessions(
        &self,
        conn: &mut DbConn,
        actor: &guards::Caller,
        target: Id,
        client: &RequestOrigin,
    ) -> ApiResult<()> {
        let everything = self.scopes_supported();
        let ending = self.ending("sessions_revoked");
        let outcome = crate::db::write_tx!(conn, |c| {
            c.lock_admin_set().await?;
            c.find_user(target).await?.ok_or_else(not_found)?;
            let attempt = json!({"action": "revoke_user_sessions"});
            if let Err(refused) =
                delegation::account_action(c, actor, target, SessionsRevoke::NAME, &[], &everything, attempt).await?
            {
                return Ok(Err(refused));
            }
            let ended = c.end_user_sessions(target, None, ending).await?;
            let detail = json!({"sessions": ended.len()});
            let audit = audit_by("sessions_revoked", ending.now, Some(target), Some(*actor.id()), client, detail);
            c.insert_audit(&audit).await?;
            Ok::<_, ApiError>(Ok(ended))
        })?;
        match outcome {
            Ok(ended) => self.revoke_locally(&ended, &ending),
            Err(refused) => return Err(self.refuse_account_action(conn, actor, target, client, refused).await),
        }
        Ok(())
    }

    /// Audits a refused account action as `grant_denied` and returns the 403.
    pub(crate) async fn refuse_account_action(
        &self,
        conn: &mut DbConn,
        actor: &guards::Caller,
        target: Id,
        client: &RequestOrigin,
        refused: Refused,
    ) -> ApiError {
        self.refuse_grant(conn, Some(*actor.id()), Some(target), client, &refused.grant, refused.denial).await
    }
}
