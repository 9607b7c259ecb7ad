//! Service clients (`clients`, `client_permissions`). The secret is kept only as its digest.

use std::collections::BTreeSet;

use diesel::prelude::*;
use diesel::result::QueryResult;
use diesel_async::RunQueryDsl;

use super::for_each_backend;
use crate::db::schema::{client_permissions, clients};
use crate::db::Id;

/// A client with its permissions (sorted); never its secret digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    pub client_id: Id,
    pub name: String,
    pub disabled: bool,
    pub created_at: i64,
    pub permissions: BTreeSet<String>,
}

/// A client to insert.
#[derive(Debug)]
pub struct NewClient<'a> {
    pub client_id: Id,
    pub name: &'a str,
    pub secret_hash: &'a str,
    pub created_at: i64,
    pub created_by: Option<Id>,
    pub permissions: &'a BTreeSet<String>,
}

type Row = (Id, String, bool, i64);

fn with_permissions(rows: Vec<Row>, grants: &[(Id, String)]) -> Vec<Client> {
    rows.into_iter()
        .map(|(client_id, name, disabled, created_at)| {
            let permissions = grants.iter().filter(|(c, _)| *c == client_id).map(|(_, p)| p.clone()).collect();
            Client { client_id, name, disabled, created_at, permissions }
        })
        .collect()
}

#[allow(async_fn_in_trait)]
pub trait ClientStore {
    async fn insert_client(&mut self, client: &NewClient<'_>) -> QueryResult<()>;
    /// One page of clients, oldest first, and how many there are.
    async fn list_clients(&mut self, limit: i64, offset: i64) -> QueryResult<(Vec<Client>, i64)>;
    /// The client and its secret digest.
    async fn find_client(&mut self, client_id: Id) -> QueryResult<Option<(Client, String)>>;
    /// Who created the client (a user or a client; `Some(None)` from the command line), `None`
    /// when there is no such client.
    async fn client_creator(&mut self, client_id: Id) -> QueryResult<Option<Option<Id>>>;
    /// Replaces the secret digest; `false` when there is no such client.
    async fn set_client_secret(&mut self, client_id: Id, secret_hash: &str) -> QueryResult<bool>;
    /// Deletes the client (its permissions cascade); `false` when there was none.
    async fn delete_client(&mut self, client_id: Id) -> QueryResult<bool>;
    /// The clients created by any of `creators` (users or clients).
    async fn clients_created_by(&mut self, creators: &[Id]) -> QueryResult<Vec<Id>>;
}

for_each_backend! {
impl ClientStore {
    async fn insert_client(&mut self, client: &NewClient<'_>) -> QueryResult<()> {
        diesel::insert_into(clients::table)
            .values((
                clients::client_id.eq(client.client_id),
                clients::name.eq(client.name),
                clients::secret_hash.eq(client.secret_hash),
                clients::disabled.eq(false),
                clients::created_at.eq(client.created_at),
                clients::created_by.eq(client.created_by),
            ))
            .execute(self)
            .await?;
        // Row by row: multi-row inserts do not compile for SQLite.
        for permission in client.permissions {
            diesel::insert_into(client_permissions::table)
                .values((client_permissions::client_id.eq(client.client_id), client_permissions::permission.eq(permission)))
                .execute(self)
                .await?;
        }
        Ok(())
    }

    async fn list_clients(&mut self, limit: i64, offset: i64) -> QueryResult<(Vec<Client>, i64)> {
        let rows: Vec<Row> = clients::table
            .select((clients::client_id, clients::name, clients::disabled, clients::created_at))
            .order(clients::client_id)
            .limit(limit)
            .offset(offset)
            .load(self)
            .await?;
        let ids: Vec<Id> = rows.iter().map(|r| r.0).collect();
        let grants: Vec<(Id, String)> = client_permissions::table
            .filter(client_permissions::client_id.eq_any(&ids))
            .select((client_permissions::client_id, client_permissions::permission))
            .load(self)
            .await?;
        let total = clients::table.count().get_result(self).await?;
        Ok((with_permissions(rows, &grants), total))
    }

    async fn find_client(&mut self, client_id: Id) -> QueryResult<Option<(Client, String)>> {
        let row: Option<(Id, String, bool, i64, String)> = clients::table
            .find(client_id)
            .select((clients::client_id, clients::name, clients::disabled, clients::created_at, clients::secret_hash))
            .get_result(self)
            .await
            .optional()?;
        let Some((id, name, disabled, created_at, secret_hash)) = row else { return Ok(None) };
        let grants: Vec<(Id, String)> = client_permissions::table
            .filter(client_permissions::client_id.eq(id))
            .select((client_permissions::client_id, client_permissions::permission))
            .load(self)
            .await?;
        let client = with_permissions(vec![(id, name, disabled, created_at)], &grants).remove(0);
        Ok(Some((client, secret_hash)))
    }

    async fn client_creator(&mut self, client_id: Id) -> QueryResult<Option<Option<Id>>> {
        clients::table.find(client_id).select(clients::created_by).get_result(self).await.optional()
    }

    async fn set_client_secret(&mut self, client_id: Id, secret_hash: &str) -> QueryResult<bool> {
        let updated = diesel::update(clients::table.find(client_id))
            .set(clients::secret_hash.eq(secret_hash))
            .execute(self)
            .await?;
        Ok(updated == 1)
    }

    async fn delete_client(&mut self, client_id: Id) -> QueryResult<bool> {
        Ok(diesel::delete(clients::table.find(client_id)).execute(self).await? == 1)
    }

    async fn clients_created_by(&mut self, creators: &[Id]) -> QueryResult<Vec<Id>> {
        clients::table.filter(clients::created_by.eq_any(creators)).select(clients::client_id).load(self).await
    }
}
}
