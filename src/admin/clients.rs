//! Service-client administration: create (with delegation), list, rotate the secret, delete.
//!
//! A client's secret is 256 random bits, shown once and stored as its SHA-256 digest (a fast
//! hash is right for a secret with that much entropy; see `auth::client_auth` for the check).
//! Deleting a client rejects its access tokens at once here and, through the revocation feed
//! (the client id in place of a session id), within a poll interval on other instances.
//! Rotating a secret rejects the access tokens issued under the old one the same way, through a
//! cutoff by `iat` (`auth::sync::client_cutoffs`).

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::json;

use crate::auth::audit::audit_by;
use crate::auth::delegation::{self, Delegated};
use crate::auth::guards::{self, RequestOrigin};
use crate::auth::permissions::{ClientsWrite, Permission};
use crate::auth::secrets::OpaqueToken;
use crate::auth::Auth;
use crate::clock::rfc3339;
use crate::db::{DbConn, DbPool, Id};
use crate::error::{ApiError, ApiResult};
use crate::models::{AuditStore, Client, ClientCutoff, ClientCutoffStore, ClientStore, NewClient, RevocationStore};
use crate::page::Page;

/// A client as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = Client)]
pub struct ClientView {
    pub client_id: Id,
    pub name: String,
    #[schema(example = json!(["users:read"]))]
    pub permissions: Vec<String>,
    pub disabled: bool,
    #[schema(format = DateTime)]
    pub created_at: String,
}

impl From<&Client> for ClientView {
    fn from(client: &Client) -> Self {
        ClientView {
            client_id: client.client_id,
            name: client.name.clone(),
            permissions: client.permissions.iter().cloned().collect(),
            disabled: client.disabled,
            created_at: rfc3339(client.created_at),
        }
    }
}

/// A new client with its secret, shown this once. `Debug` leaves the secret out.
#[derive(Clone, Serialize, utoipa::ToSchema)]
pub struct CreatedClient {
    #[serde(flatten)]
    pub client: ClientView,
    pub client_secret: String,
}

impl std::fmt::Debug for CreatedClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedClient").field("client", &self.client).finish_non_exhaustive()
    }
}

/// A client's new secret. `Debug` leaves the secret out.
#[derive(Clone, Serialize, utoipa::ToSchema)]
pub struct NewSecret {
    pub client_id: Id,
    pub client_secret: String,
}

impl std::fmt::Debug for NewSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewSecret").field("client_id", &self.client_id).finish_non_exhaustive()
    }
}

/// The body of `GET /admin/clients`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ClientList {
    pub clients: Vec<ClientView>,
    pub total: i64,
}

/// Delegation for clients, through the one rule of `auth::delegation`: an actor may create,
/// re-key or delete only a client whose permissions it holds itself (whoever has a client's
/// secret has its permissions), and must still hold `clients:write` (a client's token outlives
/// its creator's demotion; the bearer guard checked only the token). 403
/// `insufficient_permissions`, audited as `grant_denied`.
async fn check_delegation(
    auth: &Auth,
    conn: &mut DbConn,
    actor: &guards::Caller,
    permissions: &BTreeSet<String>,
    attempt: serde_json::Value,
    client: &RequestOrigin,
) -> ApiResult<()> {
    let mut grant = Delegated::permissions(permissions, attempt);
    grant.permissions.insert(ClientsWrite::NAME.to_owned());
    let grantor = auth.grantor_of(conn, actor).await?;
    match delegation::check(&grantor, &grant) {
        Ok(()) => Ok(()),
        Err(denial) => Err(auth.refuse_grant(conn, Some(*actor.id()), None, client, &grant, denial).await),
    }
}

fn check_name(name: &str) -> ApiResult<()> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 128 || name.chars().any(char::is_control) {
        return Err(ApiError::invalid_field("name: 1 to 128 characters, no control characters"));
    }
    Ok(())
}

fn check_permissions(auth: &Auth, permissions: &[String]) -> ApiResult<BTreeSet<String>> {
    if let Some(unknown) = permissions.iter().find(|p| !auth.permission_exists(p)) {
        return Err(ApiError::invalid_field(format!("permissions: unknown permission {unknown:?}")));
    }
    Ok(permissions.iter().cloned().collect())
}

fn not_found() -> ApiError {
    ApiError::not_found("No such client.")
}

/// Inserts a client with its audit row; `actor` is `None` from the command line.
async fn insert(
    auth: &Auth,
    conn: &mut DbConn,
    actor: Option<Id>,
    name: &str,
    permissions: &BTreeSet<String>,
    client: &RequestOrigin,
) -> ApiResult<CreatedClient> {
    let secret = OpaqueToken::generate();
    let now = auth.clock.now();
    let new = NewClient {
        client_id: Id::new(),
        name: name.trim(),
        secret_hash: secret.hash(),
        created_at: now,
        created_by: actor,
        permissions,
    };
    let detail = json!({"client_id": new.client_id, "name": new.name, "permissions": permissions});
    let audit = audit_by("client_created", now, None, actor, client, detail);
    crate::db::write_tx!(conn, |c| {
        c.insert_client(&new).await?;
        c.insert_audit(&audit).await
    })?;
    let view = ClientView {
        client_id: new.client_id,
        name: new.name.to_owned(),
        permissions: permissions.iter().cloned().collect(),
        disabled: false,
        created_at: rfc3339(now),
    };
    Ok(CreatedClient { client: view, client_secret: secret.into_plaintext() })
}

/// `portcullis client create`: no actor, so no delegation (whoever runs it has the database).
pub async fn create_client_unchecked(
    auth: &Auth,
    pool: &DbPool,
    name: &str,
    permissions: &[String],
) -> ApiResult<CreatedClient> {
    check_name(name)?;
    let permissions = check_permissions(auth, permissions)?;
    let mut conn = rocket_db_pools::Pool::get(pool).await.map_err(ApiError::unavailable)?;
    insert(auth, &mut conn, None, name, &permissions, &RequestOrigin::default()).await
}

impl Auth {
    /// `POST /admin/clients`: 422 for a bad name or unknown permission, 403 beyond the actor's.
    pub async fn create_client(
        &self,
        conn: &mut DbConn,
        actor: &guards::Caller,
        name: &str,
        permissions: &[String],
        client: &RequestOrigin,
    ) -> ApiResult<CreatedClient> {
        check_name(name)?;
        let permissions = check_permissions(self, permissions)?;
        let attempt = json!({"action": "create_client", "name": name, "permissions": permissions});
        check_delegation(self, conn, actor, &permissions, attempt, client).await?;
        insert(self, conn, Some(*actor.id()), name, &permissions, client).await
    }

    pub async fn list_clients(&self, conn: &mut DbConn, page: Page) -> ApiResult<ClientList> {
        let (clients, total) = crate::db::with_conn!(conn, |c| c.list_clients(page.limit, page.offset).await)?;
        Ok(ClientList { clients: clients.iter().map(ClientView::from).collect(), total })
    }

    /// `POST /admin/clients/<id>/secret`: a new secret; the old one stops working at once, and so
    /// do the access tokens issued under it (every one issued up to this second: tokens issued
    /// later in the second carry the next one as `iat`, see `auth::sync::client_cutoffs`).
    pub async fn rotate_client_secret(
        &self,
        conn: &mut DbConn,
        actor: &guards::Caller,
        client_id: Id,
        client: &RequestOrigin,
    ) -> ApiResult<NewSecret> {
        let (found, _) = crate::db::with_conn!(conn, |c| c.find_client(client_id).await)?.ok_or_else(not_found)?;
        let attempt = json!({"action": "rotate_client_secret", "client_id": client_id});
        check_delegation(self, conn, actor, &found.permissions, attempt, client).await?;
        let secret = OpaqueToken::generate();
        let now = self.clock.now();
        let cutoff = ClientCutoff { client_id, revoked_through: now, expires_at: self.revoke_until(now) };
        let audit =
            audit_by("client_secret_rotated", now, None, Some(*actor.id()), client, json!({"client_id": client_id}));
        let updated = crate::db::write_tx!(conn, |c| {
            let updated = c.set_client_secret(client_id, secret.hash()).await?;
            if updated {
                c.raise_client_cutoff(cutoff, now).await?;
                c.insert_audit(&audit).await?;
            }
            Ok::<_, diesel::result::Error>(updated)
        })?;
        if !updated {
            return Err(not_found());
        }
        self.cut_off_locally(cutoff);
        Ok(NewSecret { client_id, client_secret: secret.into_plaintext() })
    }

    /// `DELETE /admin/clients/<id>`: the client and its tokens stop working.
    pub async fn delete_client(
        &self,
        conn: &mut DbConn,
        actor: &guards::Caller,
        client_id: Id,
        client: &RequestOrigin,
    ) -> ApiResult<()> {
        let (found, _) = crate::db::with_conn!(conn, |c| c.find_client(client_id).await)?.ok_or_else(not_found)?;
        let attempt = json!({"action": "delete_client", "client_id": client_id});
        check_delegation(self, conn, actor, &found.permissions, attempt, client).await?;
        let ending = self.ending("client_deleted");
        let audit = audit_by(
            "client_deleted",
            ending.now,
            None,
            Some(*actor.id()),
            client,
            json!({"client_id": client_id, "name": found.name}),
        );
        let deleted = crate::db::write_tx!(conn, |c| {
            let deleted = c.delete_client(client_id).await?;
            if deleted {
                // The feed is keyed by session id; a client id cannot collide with one.
                c.insert_revocation(client_id, client_id, ending.now, ending.revoke_until).await?;
                c.insert_audit(&audit).await?;
            }
            Ok::<_, diesel::result::Error>(deleted)
        })?;
        if !deleted {
            return Err(not_found());
        }
        self.revoke_locally(&[client_id], &ending);
        Ok(())
    }
}
