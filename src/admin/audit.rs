//! Reading the audit log.

use serde::Serialize;

use crate::auth::Auth;
use crate::clock::rfc3339;
use crate::db::{DbConn, Id};
use crate::error::ApiResult;
use crate::models::{AuditEvent, AuditFilter, AuditStore};
use crate::page::Page;

/// An audit event as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = AuditEvent)]
pub struct AuditView {
    pub id: Id,
    #[schema(format = DateTime)]
    pub at: String,
    pub event: String,
    pub user_id: Option<Id>,
    pub actor_id: Option<Id>,
    pub ip: Option<String>,
    pub detail: serde_json::Value,
}

impl From<AuditEvent> for AuditView {
    fn from(e: AuditEvent) -> Self {
        AuditView {
            id: e.id,
            at: rfc3339(e.at),
            event: e.event,
            user_id: e.user_id,
            actor_id: e.actor_id,
            ip: e.ip,
            detail: serde_json::from_str(&e.detail).unwrap_or(serde_json::Value::Null),
        }
    }
}

impl Auth {
    /// Audit events, newest first, filtered by user and event name.
    pub async fn list_audit(
        &self,
        conn: &mut DbConn,
        user_id: Option<Id>,
        event: Option<String>,
        page: Page,
    ) -> ApiResult<Vec<AuditView>> {
        let filter = AuditFilter { user_id, event, limit: page.limit, offset: page.offset };
        let events = crate::db::with_conn!(conn, |c| c.list_audit(&filter).await)?;
        Ok(events.into_iter().map(AuditView::from).collect())
    }
}
