//! Clients (`clients`, `client_permissions`). A confidential client's secret is kept only as its
//! digest; a public client has none (an empty digest, which no secret's digest equals). Its type and
//! settings are `client_settings`.

use std::collections::BTreeSet;

use diesel::prelude::*;
use diesel::result::QueryResult;
use diesel_async::RunQueryDsl;

use super::client_settings::{ClientSettings, SettingsRow};
use super::for_each_backend;
use super::user::fold_roles;
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
    pub settings: ClientSettings,
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
    pub settings: &'a ClientSettings,
}

/// A client's new name, permissions and settings (`PUT /admin/clients/<id>`): every value is
/// written, so the caller fills in the ones the request left out.
#[derive(Debug)]
pub struct ClientUpdate<'a> {
    pub client_id: Id,
    pub name: &'a str,
    pub permissions: &'a BTreeSet<String>,
    pub settings: &'a ClientSettings,
}

type Row = (Id, String, bool, i64, SettingsRow);

/// The columns of a [`Row`].
macro_rules! row_columns {
    () => {
        (
            clients::client_id,
            clients::name,
            clients::disabled,
            clients::created_at,
            (
                clients::client_type,
                clients::redirect_uris,
                clients::post_logout_redirect_uris,
                clients::grant_types,
                clients::first_party,
                clients::id_token_signed_response_alg,
            ),
        )
    };
}

fn with_permissions(rows: Vec<Row>, grants: &[(Id, String)]) -> QueryResult<Vec<Client>> {
    rows.into_iter()
        .map(|(client_id, name, disabled, created_at, settings)| {
            let permissions = grants.iter().filter(|(c, _)| *c == client_id).map(|(_, p)| p.clone()).collect();
            let settings = ClientSettings::from_row(settings)?;
            Ok(Client { client_id, name, disabled, created_at, permissions, settings })
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
    /// Writes a client's name, settings and permissions; `false` when there is no such client.
    async fn update_client(&mut self, update: &ClientUpdate<'_>) -> QueryResult<bool>;
    /// Replaces the secret digest; `false` when there is no such client.
    async fn set_client_secret(&mut self, client_id: Id, secret_hash: &str) -> QueryResult<bool>;
    /// Deletes the client (its permissions cascade); `false` when there was none.
    async fn delete_client(&mut self, client_id: Id) -> QueryResult<bool>;
    /// The clients created by any of `creators` (users or clients).
    async fn clients_created_by(&mut self, creators: &[Id]) -> QueryResult<Vec<Id>>;
    /// The `redirect_uris` (stored JSON arrays) of every enabled client.
    async fn enabled_redirect_uris(&mut self) -> QueryResult<Vec<String>>;
}

for_each_backend! {
impl ClientStore {
    async fn insert_client(&mut self, client: &NewClient<'_>) -> QueryResult<()> {
        let (client_type, redirect_uris, post_logout, grant_types, first_party, alg) = client.settings.to_row();
        diesel::insert_into(clients::table)
            .values((
                clients::client_id.eq(client.client_id),
                clients::name.eq(client.name),
                clients::secret_hash.eq(client.secret_hash),
                clients::disabled.eq(false),
                clients::created_at.eq(client.created_at),
                clients::created_by.eq(client.created_by),
                clients::client_type.eq(client_type),
                clients::redirect_uris.eq(redirect_uris),
                clients::post_logout_redirect_uris.eq(post_logout),
                clients::grant_types.eq(grant_types),
                clients::first_party.eq(first_party),
                clients::id_token_signed_response_alg.eq(alg),
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

    async fn update_client(&mut self, update: &ClientUpdate<'_>) -> QueryResult<bool> {
        let (client_type, redirect_uris, post_logout, grant_types, first_party, alg) = update.settings.to_row();
        let updated = diesel::update(clients::table.find(update.client_id))
            .set((
                clients::name.eq(update.name),
                clients::client_type.eq(client_type),
                clients::redirect_uris.eq(redirect_uris),
                clients::post_logout_redirect_uris.eq(post_logout),
                clients::grant_types.eq(grant_types),
                clients::first_party.eq(first_party),
                clients::id_token_signed_response_alg.eq(alg),
            ))
            .execute(self)
            .await?;
        if updated != 1 {
            return Ok(false);
        }
        diesel::delete(client_permissions::table.filter(client_permissions::client_id.eq(update.client_id)))
            .execute(self)
            .await?;
        for permission in update.permissions {
            diesel::insert_into(client_permissions::table)
                .values((client_permissions::client_id.eq(update.client_id), client_permissions::permission.eq(permission)))
                .execute(self)
                .await?;
        }
        Ok(true)
    }

    async fn list_clients(&mut self, limit: i64, offset: i64) -> QueryResult<(Vec<Client>, i64)> {
        let rows: Vec<Row> = clients::table
            .select(row_columns!())
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
        Ok((with_permissions(rows, &grants)?, total))
    }

    async fn find_client(&mut self, client_id: Id) -> QueryResult<Option<(Client, String)>> {
        // One query (a left join, a row per permission): both OAuth requests of every code
        // sign-in read their client, and two statements each were two round trips (and two
        // transactions on PostgreSQL; bench/README.md, "Reading the code-flow figures").
        let rows: Vec<(Row, String, Option<String>)> = clients::table
            .left_join(client_permissions::table)
            .filter(clients::client_id.eq(client_id))
            .select((row_columns!(), clients::secret_hash, client_permissions::permission.nullable()))
            .load(self)
            .await?;
        let rows = rows.into_iter().map(|(row, secret_hash, permission)| ((row, secret_hash), permission));
        let Some(((row, secret_hash), permissions)) = fold_roles(rows) else { return Ok(None) };
        let grants: Vec<(Id, String)> = permissions.into_iter().map(|p| (row.0, p)).collect();
        let client = with_permissions(vec![row], &grants)?.remove(0);
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

    async fn enabled_redirect_uris(&mut self) -> QueryResult<Vec<String>> {
        clients::table.filter(clients::disabled.eq(false)).select(clients::redirect_uris).load(self).await
    }
}
}
