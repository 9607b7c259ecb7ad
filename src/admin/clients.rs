//! Service-client administration: create and change (with delegation), list, rotate the secret,
//! delete. What a client's type and settings may be is `client_settings`.
//!
//! A confidential client's secret is 256 random bits, shown once and stored as its SHA-256
//! digest (a fast hash is right for a secret with that much entropy; see `auth::client_auth` for
//! the check). A public client has none: its stored digest is empty, which no digest equals.
//! Deleting a client rejects its access tokens at once here and, through the revocation feed
//! (the client id in place of a session id), within a poll interval on other instances.
//! Rotating a secret rejects the access tokens issued under the old one the same way, through a
//! cutoff by `iat` (`auth::sync::client_cutoffs`).

use std::collections::BTreeSet;

use serde_json::json;

use super::client_settings::{changed_settings, new_settings, ClientFields};
pub use super::client_views::{ClientList, ClientView, CreatedClient, NewSecret};
use crate::auth::audit::audit_by;
use crate::auth::delegation::{self, Delegated};
use crate::auth::guards::{self, RequestOrigin};
use crate::auth::permissions::{ClientsWrite, Permission};
use crate::auth::secrets::OpaqueToken;
use crate::auth::Auth;
use crate::db::{DbConn, DbPool, Id};
use crate::error::{ApiError, ApiResult};
use crate::models::{
    AuditStore, ClientCutoff, ClientCutoffStore, ClientSettings, ClientStore, ClientType, ClientUpdate, NewClient,
    RevocationStore, SessionStore,
};
use crate::page::Page;

/// Delegation for clients, through the one rule of `auth::delegation`: an actor may create,
/// change, re-key or delete only a client whose permissions it holds itself (whoever has a
/// client's secret has its permissions), only an `admin` makes a client first-party (its users
/// are never asked for consent), and the actor must still hold `clients:write` (a client's token
/// outlives its creator's demotion; the bearer guard checked only the token). 403
/// `insufficient_permissions`, audited as `grant_denied`.
async fn check_delegation(
    auth: &Auth,
    conn: &mut DbConn,
    actor: &guards::Caller,
    (permissions, first_party): (&BTreeSet<String>, bool),
    attempt: serde_json::Value,
    client: &RequestOrigin,
) -> ApiResult<()> {
    let mut grant = Delegated::permissions(permissions, attempt);
    grant.permissions.insert(ClientsWrite::NAME.to_owned());
    grant.admin_role = first_party;
    let grantor = auth.grantor_of(conn, actor).await?;
    match delegation::check(&grantor, &grant) {
        Ok(()) => Ok(()),
        Err(denial) => Err(auth.refuse_grant(conn, Some(*actor.id()), None, client, &grant, denial).await),
    }
}

fn check_name(name: Option<&str>) -> ApiResult<&str> {
    let name = name.ok_or_else(|| ApiError::bad_request("The field 'name' is required."))?;
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 128 || name.chars().any(char::is_control) {
        return Err(ApiError::invalid_field("name: 1 to 128 characters, no control characters"));
    }
    Ok(name.trim())
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

/// A new client, checked: its name, permissions and settings.
struct Checked<'a> {
    name: &'a str,
    permissions: BTreeSet<String>,
    settings: ClientSettings,
}

fn check_new<'a>(auth: &Auth, fields: &'a ClientFields) -> ApiResult<Checked<'a>> {
    let name = check_name(fields.name.as_deref())?;
    let permissions = check_permissions(auth, fields.permissions.as_deref().unwrap_or_default())?;
    Ok(Checked { name, permissions, settings: new_settings(fields)? })
}

/// Inserts a client with its audit row; `actor` is `None` from the command line.
async fn insert(
    auth: &Auth,
    conn: &mut DbConn,
    actor: Option<Id>,
    new: Checked<'_>,
    client: &RequestOrigin,
) -> ApiResult<CreatedClient> {
    let secret = (new.settings.client_type == ClientType::Confidential).then(OpaqueToken::generate);
    let now = auth.clock.now();
    let row = NewClient {
        client_id: Id::new(),
        name: new.name,
        secret_hash: secret.as_ref().map_or("", |s| s.hash()),
        created_at: now,
        created_by: actor,
        permissions: &new.permissions,
        settings: &new.settings,
    };
    let stored = crate::models::Client {
        client_id: row.client_id,
        name: new.name.to_owned(),
        disabled: false,
        created_at: now,
        permissions: new.permissions.clone(),
        settings: new.settings.clone(),
    };
    let view = ClientView::from(&stored);
    let detail = json!({"client_id": row.client_id, "name": row.name, "permissions": new.permissions,
        "type": view.client_type, "grant_types": view.grant_types, "first_party": view.first_party});
    let audit = audit_by("client_created", now, None, actor, client, detail);
    crate::db::write_tx!(conn, |c| {
        c.insert_client(&row).await?;
        c.insert_audit(&audit).await
    })?;
    Ok(CreatedClient { client: view, client_secret: secret.map(OpaqueToken::into_plaintext) })
}

/// `portcullis client create`: no actor, so no delegation (whoever runs it has the database).
pub async fn create_client_unchecked(auth: &Auth, pool: &DbPool, fields: &ClientFields) -> ApiResult<CreatedClient> {
    let new = check_new(auth, fields)?;
    let mut conn = rocket_db_pools::Pool::get(pool).await.map_err(ApiError::unavailable)?;
    insert(auth, &mut conn, None, new, &RequestOrigin::default()).await
}

impl Auth {
    /// `POST /admin/clients`: 422 for a bad name, unknown permission or bad setting, 403 beyond
    /// the actor's.
    pub async fn create_client(
        &self,
        conn: &mut DbConn,
        actor: &guards::Caller,
        fields: &ClientFields,
        client: &RequestOrigin,
    ) -> ApiResult<CreatedClient> {
        let new = check_new(self, fields)?;
        let attempt = json!({"action": "create_client", "name": new.name, "permissions": new.permissions,
            "first_party": new.settings.first_party});
        let needs = (&new.permissions, new.settings.first_party);
        check_delegation(self, conn, actor, needs, attempt, client).await?;
        insert(self, conn, Some(*actor.id()), new, client).await
    }

    /// `PUT /admin/clients/<id>`: changes the fields `fields` carries. Delegation covers the
    /// permissions the client holds and those it is given; making it first-party, or changing
    /// that of a first-party client, needs `admin`. 422 for a bad value or a type change.
    pub async fn update_client(
        &self,
        conn: &mut DbConn,
        actor: &guards::Caller,
        client_id: Id,
        fields: &ClientFields,
        client: &RequestOrigin,
    ) -> ApiResult<ClientView> {
        let (mut found, _) = crate::db::with_conn!(conn, |c| c.find_client(client_id).await)?.ok_or_else(not_found)?;
        let name = match &fields.name {
            Some(name) => check_name(Some(name))?.to_owned(),
            None => found.name.clone(),
        };
        let permissions = match &fields.permissions {
            Some(permissions) => check_permissions(self, permissions)?,
            None => found.permissions.clone(),
        };
        let settings = changed_settings(&found.settings, fields)?;
        let first_party = settings.first_party || found.settings.first_party;
        let touched: BTreeSet<String> = found.permissions.union(&permissions).cloned().collect();
        let attempt = json!({"action": "update_client", "client_id": client_id, "permissions": permissions,
            "first_party": settings.first_party});
        check_delegation(self, conn, actor, (&touched, first_party && fields.first_party.is_some()), attempt, client)
            .await?;
        let update = ClientUpdate { client_id, name: &name, permissions: &permissions, settings: &settings };
        let now = self.clock.now();
        (found.name, found.permissions, found.settings) = (name.clone(), permissions.clone(), settings.clone());
        let view = ClientView::from(&found);
        let detail = json!({"client_id": client_id, "name": name, "permissions": permissions,
            "grant_types": view.grant_types, "first_party": view.first_party});
        let audit = audit_by("client_updated", now, None, Some(*actor.id()), client, detail);
        let updated = crate::db::write_tx!(conn, |c| {
            let updated = c.update_client(&update).await?;
            if updated {
                c.insert_audit(&audit).await?;
            }
            Ok::<_, diesel::result::Error>(updated)
        })?;
        if !updated {
            return Err(not_found());
        }
        Ok(view)
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
        check_delegation(self, conn, actor, (&found.permissions, false), attempt, client).await?;
        if found.settings.client_type == ClientType::Public {
            return Err(ApiError::conflict("A public client has no secret."));
        }
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
        check_delegation(self, conn, actor, (&found.permissions, false), attempt, client).await?;
        let ending = self.ending("client_deleted");
        let audit = audit_by(
            "client_deleted",
            ending.now,
            None,
            Some(*actor.id()),
            client,
            json!({"client_id": client_id, "name": found.name}),
        );
        let owner = client_id.to_string();
        let ended = crate::db::write_tx!(conn, |c| {
            if !c.delete_client(client_id).await? {
                return Ok(None);
            }
            // The feed is keyed by session id; a client id cannot collide with one.
            c.insert_revocation(client_id, client_id, ending.now, ending.revoke_until).await?;
            // Its users' sessions end with it (RFC 7009 §2.1: its grants go with the client).
            let mut ended = c.end_client_sessions(&owner, None, ending).await?;
            c.insert_audit(&audit).await?;
            ended.push(client_id);
            Ok::<_, diesel::result::Error>(Some(ended))
        })?;
        let Some(ended) = ended else { return Err(not_found()) };
        self.revoke_locally(&ended, &ending);
        Ok(())
    }
}
