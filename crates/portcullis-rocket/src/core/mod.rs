//! The verification core, shared with Portcullis's own guards: the claims of an access token
//! ([`claims`]), their verification ([`verify`](mod@verify)) and the cache of verified tokens
//! ([`cache`]), the refusal rule for ended sessions, deleted clients, revoked client tokens and
//! removed roles ([`refusal`](mod@refusal)) over the sets that hold them ([`change_sets`]), the
//! RFC 6750 challenge of a refusal ([`challenge`]), and permissions. Nothing here knows where keys or
//! changes come from: Portcullis feeds it from its database and in-process state, the fairing
//! of this crate from the JWKS and the change feed.

use std::collections::{BTreeSet, HashMap};

pub mod cache;
pub mod challenge;
pub mod change_sets;
pub mod claims;
pub mod jwks;
pub mod refusal;
pub mod verify;

pub use cache::{VerifiedTokens, VERIFIED_CAPACITY};
pub use challenge::{presents_bearer, Challenge};
pub use change_sets::{Cutoffs, Revoked, RoleChanges};
pub use claims::{AccessClaims, Subject};
pub use jwks::{parse_jwks, KeySet};
pub use refusal::{names_removed_role, refusal, ChangeState};
pub use verify::{
    check_time, verify, verify_signed, Expected, KeyLookup, SignatureKey, Undecodable, VerifyError, ACCESS_TOKEN_TYP,
};

/// A permission as a type, for `Authorized<P>` guards — the same trait for Portcullis's own guards
/// and this crate's; declare one with [`permission!`](crate::permission!).
pub trait Permission: Send + Sync + 'static {
    /// The permission's name as configured in Portcullis (`auth.permissions`), e.g. `reports:read`.
    const NAME: &'static str;
}

/// Whether any of `roles` grants `permission` through `table` (role → permissions).
pub fn roles_grant(table: &HashMap<String, BTreeSet<String>>, roles: &[String], permission: &str) -> bool {
    roles.iter().any(|role| table.get(role).is_some_and(|perms| perms.contains(permission)))
}
