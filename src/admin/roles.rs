//! Role administration: list, create, change and delete roles.

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::json;

use crate::auth::audit::audit_by;
use crate::auth::delegation::{self, Delegated};
use crate::auth::guards::{self, RequestOrigin};
use crate::auth::permissions::{RoleTable, ADMIN_ROLE};
use crate::auth::sync::client_cutoffs::cut_off_clients_of;
use crate::auth::Auth;
use crate::db::DbConn;
use crate::error::{ApiError, ApiResult};
use crate::models::{AuditStore, Role, RoleStore};

/// A role as the API shows it; `admin` lists the whole catalogue.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[schema(as = Role)]
pub struct RoleView {
    pub name: String,
    pub description: String,
    pub permissions: Vec<String>,
    pub builtin: bool,
}

impl RoleView {
    /// `role` as shown, with the permissions it holds (`everything` for `admin`).
    pub fn new(role: &Role, everything: &[String]) -> Self {
        RoleView {
            name: role.name.clone(),
            description: role.description.clone(),
            permissions: RoleTable::effective_permissions(role, everything).into_iter().collect(),
            builtin: role.builtin,
        }
    }
}

/// Role names: 1 to 64 of `a-z 0-9 _ - .`, starting with a letter.
fn check_name(name: &str) -> ApiResult<()> {
    let valid = name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_-.".contains(c));
    if valid {
        Ok(())
    } else {
        Err(ApiError::invalid_field("name: 1 to 64 characters of a-z, 0-9, '_', '-', '.', starting with a letter"))
    }
}

/// Permissions must be built in or application permissions; 422 naming the first unknown one.
fn check_permissions(auth: &Auth, permissions: &[String]) -> ApiResult<BTreeSet<String>> {
    if let Some(unknown) = permissions.iter().find(|p| !auth.permission_exists(p)) {
        return Err(ApiError::invalid_field(format!("permissions: unknown permission {unknown:?}")));
    }
    Ok(permissions.iter().cloned().collect())
}

fn check_description(description: &str) -> ApiResult<()> {
    if description.chars().count() > 256 {
        return Err(ApiError::invalid_field("description: must be at most 256 characters"));
    }
    Ok(())
}

fn not_found() -> ApiError {
    ApiError::not_found("No such role.")
}

impl Auth {
    pub async fn list_roles(&self, conn: &mut DbConn) -> ApiResult<Vec<RoleView>> {
        let roles = crate::db::with_conn!(conn, |c| c.all_roles().await)?;
        let everything = self.scopes_supported();
        Ok(roles.iter().map(|role| RoleView::new(role, &everything)).collect())
    }

    /// Reloads this instance's role table at once after a change it made.
    async fn reload_roles(&self, conn: &mut DbConn) -> ApiResult<()> {
        self.roles.refresh_on(conn, true).await.map_err(ApiError::internal)?;
        self.sync_wake.wake();
        Ok(())
    }

    pub async fn create_role(
        &self,
        conn: &mut DbConn,
        actor: &guards::Caller,
        name: &str,
        description: &str,
        permissions: &[String],
        client: &RequestOrigin,
    ) -> ApiResult<RoleView> {
        check_name(name)?;
        check_description(description)?;
        let role = Role {
            name: name.into(),
            description: description.into(),
            builtin: false,
            permissions: check_permissions(self, permissions)?,
        };
        let attempt = json!({"action": "create_role", "role": name, "permissions": role.permissions});
        let grant = Delegated::permissions(&role.permissions, attempt);
        let grantor = self.grantor_of(conn, actor).await?;
        if let Err(denial) = delegation::check(&grantor, &grant) {
            return Err(self.refuse_grant(conn, Some(*actor.id()), None, client, &grant, denial).await);
        }
        let now = self.clock.now();
        let audit = audit_by(
            "role_created",
            now,
            None,
            Some(*actor.id()),
            client,
            json!({"role": name, "permissions": role.permissions}),
        );
        let created = crate::db::write_tx!(conn, |c| {
            if c.find_role(name).await?.is_some() {
                return Ok(false);
            }
            c.insert_role(&role, now).await?;
            c.insert_audit(&audit).await?;
            Ok::<_, diesel::result::Error>(true)
        })?;
        if !created {
            return Err(ApiError::conflict("name: a role with this name exists"));
        }
        self.reload_roles(conn).await?;
        Ok(RoleView::new(&role, &self.scopes_supported()))
    }

    /// Replaces a role's description and/or permissions (an absent one is kept); `admin` keeps
    /// every permission (409 for anything else).
    pub async fn update_role(
        &self,
        conn: &mut DbConn,
        actor: &guards::Caller,
        name: &str,
        description: Option<&str>,
        permissions: Option<&[String]>,
        client: &RequestOrigin,
    ) -> ApiResult<RoleView> {
        description.map(check_description).transpose()?;
        let permissions = permissions.map(|p| check_permissions(self, p)).transpose()?;
        let grantor = self.grantor_of(conn, actor).await?;
        let (now, everything) = (self.clock.now(), self.scopes_supported());
        let until = self.revoke_until(now);
        let outcome = crate::db::write_tx!(conn, |c| {
            let existing = c.find_role(name).await?.ok_or_else(not_found)?;
            let effective = RoleTable::effective_permissions(&existing, &everything);
            if name == ADMIN_ROLE && permissions.as_ref().is_some_and(|p| *p != effective) {
                return Err(ApiError::conflict("The admin role always holds every permission."));
            }
            // Changing a role touches every permission it holds now and will hold.
            let touched = effective.iter().chain(permissions.iter().flatten());
            let attempt = json!({"action": "update_role", "role": name, "permissions": permissions});
            let grant = Delegated::permissions(touched, attempt);
            if let Err(denial) = delegation::check(&grantor, &grant) {
                return Ok(Err((grant, denial)));
            }
            let role = Role {
                permissions: permissions.clone().unwrap_or_else(|| existing.permissions.clone()),
                description: description.map(str::to_owned).unwrap_or_else(|| existing.description.clone()),
                ..existing
            };
            c.update_role(&role).await?;
            let held = RoleTable::effective_permissions(&role, &everything);
            // A permission taken away: the clients of the role's holders lose it, tokens included.
            let cutoffs = match effective.is_subset(&held) {
                true => vec![],
                false => {
                    let holders = c.role_holder_ids(name).await?;
                    cut_off_clients_of(c, &holders, now, until).await?
                }
            };
            let detail = json!({"role": name, "permissions": held});
            c.insert_audit(&audit_by("role_updated", now, None, Some(*actor.id()), client, detail)).await?;
            Ok::<_, ApiError>(Ok((role, cutoffs)))
        })?;
        let role = match outcome {
            Ok((role, cutoffs)) => {
                self.cut_all_off_locally(&cutoffs);
                role
            }
            Err((grant, denial)) => {
                return Err(self.refuse_grant(conn, Some(*actor.id()), None, client, &grant, denial).await)
            }
        };
        self.reload_roles(conn).await?;
        Ok(RoleView::new(&role, &self.scopes_supported()))
    }

    /// Deletes a role: 404 unknown, 409 built-in or still assigned.
    pub async fn delete_role(
        &self,
        conn: &mut DbConn,
        actor: &guards::Caller,
        name: &str,
        client: &RequestOrigin,
    ) -> ApiResult<()> {
        let grantor = self.grantor_of(conn, actor).await?;
        let now = self.clock.now();
        let outcome = crate::db::write_tx!(conn, |c| {
            let role = c.find_role(name).await?.ok_or_else(not_found)?;
            if role.builtin {
                return Err(ApiError::conflict("Built-in roles cannot be deleted."));
            }
            let attempt = json!({"action": "delete_role", "role": name});
            let grant = Delegated::permissions(&role.permissions, attempt);
            if let Err(denial) = delegation::check(&grantor, &grant) {
                return Ok(Err((grant, denial)));
            }
            let holders = c.role_holders(name).await?;
            if holders > 0 {
                return Err(ApiError::conflict(format!("The role is still assigned to {holders} user(s).")));
            }
            c.delete_role(name).await?;
            c.insert_audit(&audit_by("role_deleted", now, None, Some(*actor.id()), client, json!({"role": name})))
                .await?;
            Ok::<_, ApiError>(Ok(()))
        })?;
        if let Err((grant, denial)) = outcome {
            return Err(self.refuse_grant(conn, Some(*actor.id()), None, client, &grant, denial).await);
        }
        self.reload_roles(conn).await
    }
}
