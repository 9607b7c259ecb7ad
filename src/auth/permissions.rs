//! The permission catalogue and the in-memory role table that resolves roles to permissions.
//!
//! Every permission a route can require is declared once here, as a marker type for the
//! [`Authorized`](crate::auth::guards::Authorized) guard and as an entry of [`CATALOGUE`]; an
//! unknown permission in a role definition is therefore refused. The `admin` role holds every
//! permission of the catalogue, including ones added later.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;

use rocket_db_pools::Pool;

use crate::db::{DbConn, DbPool};
use crate::models::{Role, RoleStore};

/// A permission a route can require, as a type (`resource:action`): the trait of the
/// `portcullis-rocket` crate, so that permission types work with its guards and these alike.
pub use portcullis_rocket::Permission;

macro_rules! permissions {
    ($($(#[$doc:meta])* $marker:ident => $name:literal,)*) => {
        $(
            $(#[$doc])*
            #[derive(Debug, Clone, Copy)]
            pub struct $marker;
            impl Permission for $marker {
                const NAME: &'static str = $name;
            }
        )*
        /// Every permission there is.
        pub const CATALOGUE: &[&str] = &[$($name),*];
    };
}

permissions! {
    /// List and read accounts.
    UsersRead => "users:read",
    /// Change accounts: roles, disable, delete.
    UsersWrite => "users:write",
    /// List roles.
    RolesRead => "roles:read",
    /// Create, change and delete roles.
    RolesWrite => "roles:write",
    /// List any user's sessions.
    SessionsRead => "sessions:read",
    /// End any user's sessions.
    SessionsRevoke => "sessions:revoke",
    /// Read the audit log.
    AuditRead => "audit:read",
    /// List service clients.
    ClientsRead => "clients:read",
    /// Create, re-key and delete service clients.
    ClientsWrite => "clients:write",
    /// Read the Prometheus metrics (`GET /metrics`).
    MetricsRead => "metrics:read",
    /// Ask `POST /oauth/introspect` about any token (RFC 7662 §4: the endpoint must not answer
    /// just anyone, since an answer tells whose token it is).
    TokensIntrospect => "tokens:introspect",
    /// Follow the change feed (`GET /feed/changes`) as a resource server does.
    FeedRead => "feed:read",
}

/// The built-in role that holds every permission.
pub const ADMIN_ROLE: &str = "admin";

/// Whether `name` is in the catalogue.
pub fn is_known(name: &str) -> bool {
    CATALOGUE.contains(&name)
}

/// Role name → permissions, and the stored roles version they were loaded at.
#[derive(Debug, Default)]
struct Loaded {
    version: Option<String>,
    /// The ticket of the reload that produced this state; see [`RoleTable::refresh_on`].
    ticket: u64,
    permissions: HashMap<String, BTreeSet<String>>,
}

/// Role name → permissions, kept in memory so guards need no database round-trip.
#[derive(Debug, Default)]
pub struct RoleTable {
    state: RwLock<Loaded>,
    tickets: AtomicU64,
}

impl RoleTable {
    /// Whether any of `roles` grants `permission`.
    pub fn grants(&self, roles: &[String], permission: &str) -> bool {
        if roles.iter().any(|r| r == ADMIN_ROLE) {
            return true;
        }
        let Ok(state) = self.state.read() else { return false };
        roles.iter().any(|r| state.permissions.get(r).is_some_and(|perms| perms.contains(permission)))
    }

    /// The permissions a role holds: as stored, or for `admin` every permission there is
    /// (`everything`: [`Auth::scopes_supported`](crate::auth::Auth::scopes_supported), the catalogue and
    /// the application permissions of `auth.permissions`).
    pub fn effective_permissions(role: &Role, everything: &[String]) -> BTreeSet<String> {
        if role.name == ADMIN_ROLE {
            everything.iter().cloned().collect()
        } else {
            role.permissions.clone()
        }
    }

    /// Reloads the table when the stored roles version differs from the loaded one (or always
    /// when `force`). Returns whether it reloaded.
    pub async fn refresh(&self, pool: &DbPool, force: bool) -> Result<bool, String> {
        let mut conn = pool.get().await.map_err(|e| e.to_string())?;
        self.refresh_on(&mut conn, force).await
    }

    /// [`refresh`](Self::refresh) on a connection the caller holds.
    ///
    /// Each reload takes a ticket before reading, and a reload that finishes after a later-ticketed
    /// one leaves the table alone: the later one started reading later, so it saw every change
    /// committed before it began. (Without this, the poller's slow reload could put back the
    /// table from before a local change whose own reload had already finished.)
    pub async fn refresh_on(&self, conn: &mut DbConn, force: bool) -> Result<bool, String> {
        let ticket = self.tickets.fetch_add(1, Ordering::SeqCst) + 1;
        let version = crate::db::with_conn!(conn, |c| c.roles_version().await).map_err(|e| e.to_string())?;
        let loaded = self.state.read().map(|s| s.version.clone()).unwrap_or_default();
        if !force && loaded.is_some() && loaded == version {
            return Ok(false);
        }
        let roles = crate::db::with_conn!(conn, |c| c.all_roles().await).map_err(|e| e.to_string())?;
        let permissions = roles.into_iter().map(|r| (r.name, r.permissions)).collect();
        match self.state.write() {
            Ok(mut state) if state.ticket < ticket => {
                *state = Loaded { version: version.or(Some(String::new())), ticket, permissions };
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}
