//! Roles and their permissions.

use std::collections::BTreeSet;

use diesel::prelude::*;
use diesel::result::QueryResult;
use diesel_async::RunQueryDsl;

use super::for_each_backend;
use crate::db::schema::{role_permissions, roles};

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
    /// Which of `names` exist.
    async fn existing_role_names(&mut self, names: &[String]) -> QueryResult<Vec<String>>;
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

    async fn existing_role_names(&mut self, names: &[String]) -> QueryResult<Vec<String>> {
        roles::table.filter(roles::name.eq_any(names)).select(roles::name).load(self).await
    }
}
}
