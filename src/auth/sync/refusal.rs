//! The service's answers to the verification core's refusal rule
//! ([`portcullis_rocket::core::refusal`]): ended sessions and deleted clients from the in-memory
//! revocation set, role changes from the in-memory role-change set. A resource server answers the
//! same questions from the change feed, so both refuse the same tokens for the same reasons.

use std::collections::BTreeSet;

use portcullis_rocket::core::ChangeState;

use crate::auth::Auth;
use crate::db::Id;

impl ChangeState<Id> for Auth {
    fn session_ended(&self, session: &Id) -> bool {
        self.revoked.contains(session)
    }

    /// A deleted client is in the same set as ended sessions (its id as the key).
    fn client_deleted(&self, client: &Id) -> bool {
        self.revoked.contains(client)
    }

    /// Secret rotations and RFC 7009 revocations, from the in-memory cutoffs.
    fn client_tokens_revoked(&self, client: &Id, iat: i64) -> bool {
        self.client_cutoffs.refuses(*client, iat)
    }

    fn with_current_roles(&self, user: &Id, check: &dyn Fn(&BTreeSet<String>) -> bool) -> Option<bool> {
        self.role_changes.with_current_roles(user, check)
    }
}
