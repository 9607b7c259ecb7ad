//! Roles and their permissions, and the version stamp other instances poll to notice changes.

use std::collections::BTreeSet;

use diesel::prelude::*;
use diesel::result::QueryResult;
use diesel_async::RunQueryDsl;

use super::for_each_backend;
use crate::db::schema::{role_permissions, roles, settings, user_roles};
use crate::db::Id;

/// The setting whose value changes whenever a role or its permissions change.
pub const ROLES_VERSION: &str = "roles_version";

/// A role with its permissions (sorted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    pub name: String,
    pub description: String,
    pub builtin: bool,
    pub permissions: BTreeSet<String>,
}

#[allow(async_fn_in_trait)]
pub trait RoleStore {
    /// Every role with its permissions, sorted by name.
    async fn all_roles(&mut self) -> QueryResult<Vec<Role>>;
    async fn find_role(&mut self, name: &str) -> QueryResult<Option<Role>>;
    /// Which of `names` exist.
    async fn existing_role_names(&mut self, names: &[String]) -> QueryResult<Vec<String>>;
    /// Inserts a role; a duplicate name is a unique violation.
    async fn insert_role(&mut self, role: &Role, now: i64) -> QueryResult<()>;
    /// Replaces description and permissions; `false` when there is no such role.
    async fn update_role(&mut self, role: &Role) -> QueryResult<bool>;
    async fn delete_role(&mut self, name: &str) -> QueryResult<usize>;
    /// How many users hold the role.
    async fn role_holders(&mut self, name: &str) -> QueryResult<i64>;
    /// The users the role is assigned to.
    async fn role_holder_ids(&mut self, name: &str) -> QueryResult<Vec<Id>>;
    /// Inserts the role's permissions (row by row: multi-row inserts do not compile for SQLite).
    async fn insert_grants(&mut self, role: &Role) -> QueryResult<()>;
    /// Stamps a new roles version so that other instances reload their role table.
    async fn bump_roles_version(&mut self) -> QueryResult<()>;
    async fn roles_version(&mut self) -> QueryResult<Option<String>>;
}

for_each_backend! {
impl RoleStore {
    async fn all_roles(&mut self) -> QueryResult<Vec<Role>> {
        let rows: Vec<(String, String, bool)> = roles::table
            .select((roles::name, roles::description, roles::builtin))
            .order(roles::name)
            .load(self)
            .await?;
        let grants: Vec<(String, String)> = role_permissions::table
            .select((role_permissions::role_name, role_permissions::permission))
            .load(self)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(name, description, builtin)| {
                let permissions = grants.iter().filter(|(r, _)| *r == name).map(|(_, p)| p.clone()).collect();
                Role { name, description, builtin, permissions }
            })
            .collect())
    }

    async fn find_role(&mut self, name: &str) -> QueryResult<Option<Role>> {
        let row: Option<(String, String, bool)> = roles::table
            .find(name)
            .select((roles::name, roles::description, roles::builtin))
            .get_result(self)
            .await
            .optional()?;
        let Some((name, description, builtin)) = row else { return Ok(None) };
        let permissions: Vec<String> = role_permissions::table
            .filter(role_permissions::role_name.eq(&name))
            .select(role_permissions::permission)
            .load(self)
            .await?;
        Ok(Some(Role { name, description, builtin, permissions: permissions.into_iter().collect() }))
    }

    async fn existing_role_names(&mut self, names: &[String]) -> QueryResult<Vec<String>> {
        roles::table.filter(roles::name.eq_any(names)).select(roles::name).load(self).await
    }

    async fn insert_role(&mut self, role: &Role, now: i64) -> QueryResult<()> {
        diesel::insert_into(roles::table)
            .values((
                roles::name.eq(&role.name),
                roles::description.eq(&role.description),
                roles::builtin.eq(false),
                roles::created_at.eq(now),
            ))
            .execute(self)
            .await?;
        self.insert_grants(role).await?;
        self.bump_roles_version().await
    }

    async fn update_role(&mut self, role: &Role) -> QueryResult<bool> {
        let updated = diesel::update(roles::table.find(&role.name))
            .set(roles::description.eq(&role.description))
            .execute(self)
            .await?;
        if updated == 0 {
            return Ok(false);
        }
        diesel::delete(role_permissions::table.filter(role_permissions::role_name.eq(&role.name)))
            .execute(self)
            .await?;
        self.insert_grants(role).await?;
        self.bump_roles_version().await?;
        Ok(true)
    }

    async fn delete_role(&mut self, name: &str) -> QueryResult<usize> {
        let deleted = diesel::delete(roles::table.find(name)).execute(self).await?;
        self.bump_roles_version().await?;
        Ok(deleted)
    }

    async fn role_holders(&mut self, name: &str) -> QueryResult<i64> {
        user_roles::table.filter(user_roles::role_name.eq(name)).count().get_result(self).await
    }

    async fn role_holder_ids(&mut self, name: &str) -> QueryResult<Vec<Id>> {
        user_roles::table.filter(user_roles::role_name.eq(name)).select(user_roles::user_id).load(self).await
    }

    async fn insert_grants(&mut self, role: &Role) -> QueryResult<()> {
        for permission in &role.permissions {
            diesel::insert_into(role_permissions::table)
                .values((role_permissions::role_name.eq(&role.name), role_permissions::permission.eq(permission)))
                .execute(self)
                .await?;
        }
        Ok(())
    }

    async fn bump_roles_version(&mut self) -> QueryResult<()> {
        let version = Id::new().to_string();
        diesel::insert_into(settings::table)
            .values((settings::name.eq(ROLES_VERSION), settings::value.eq(&version)))
            .on_conflict(settings::name)
            .do_update()
            .set(settings::value.eq(&version))
            .execute(self)
            .await
            .map(|_| ())
    }

    async fn roles_version(&mut self) -> QueryResult<Option<String>> {
        settings::table.find(ROLES_VERSION).select(settings::value).get_result(self).await.optional()
    }
}
}
