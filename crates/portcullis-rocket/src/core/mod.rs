//! The verification core, shared with Portcullis's own guards: the claims of an access token
//! ([`claims`]), their verification ([`verify`]), the refusal rule for ended sessions, deleted
//! clients and removed roles ([`refusal`]), and permissions. Nothing here knows where keys or
//! changes come from: Portcullis feeds it from its database and in-process state, the fairing
//! of this crate from the JWKS and the change feed.

use std::collections::{BTreeSet, HashMap};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

pub mod claims;
pub mod refusal;
pub mod verify;

pub use claims::{AccessClaims, Subject};
pub use refusal::{names_removed_role, refusal, ChangeState};
pub use verify::{
    check_time, verify, verify_signed, Expected, KeyLookup, KeySet, SignatureKey, Undecodable, VerifyError,
    ACCESS_TOKEN_TYP,
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

/// Parses a JWKS document into Ed25519 keys (`kty` OKP, `crv` Ed25519); other keys are skipped.
pub fn parse_jwks(document: &serde_json::Value) -> KeySet {
    let keys = document["keys"].as_array().map(Vec::as_slice).unwrap_or_default();
    keys.iter()
        .filter(|k| k["kty"] == "OKP" && k["crv"] == "Ed25519")
        .filter_map(|k| {
            let kid = k["kid"].as_str()?.to_owned();
            let x: [u8; 32] = URL_SAFE_NO_PAD.decode(k["x"].as_str()?).ok()?.try_into().ok()?;
            Some((kid, ed25519_dalek::VerifyingKey::from_bytes(&x).ok()?))
        })
        .collect()
}
