//! Tables and their queries: the only place diesel DSL lives.
//!
//! Each file defines a store trait (`UserStore`, `SessionStore`, ...) whose methods are written
//! once inside `for_each_backend!` and implemented for both concrete connection types, so a
//! transaction body can compose them on whichever backend it runs. Outside code reaches them
//! through [`with_conn!`](crate::with_conn) / [`write_tx!`](crate::write_tx).
//!
//! Lookups by primary or unique key use `get_result`, not `first`: `first` binds `LIMIT ?`,
//! which makes SQLite re-prepare the statement on every call.

pub mod audit;
pub mod authorization_code;
pub mod browser_session;
pub mod client;
pub mod client_cutoff;
pub mod client_settings;
pub mod consent;
pub mod id_token_key;
pub mod mail_token;
pub mod mfa;
pub mod outbox;
pub mod passkey;
pub mod refresh_token;
pub mod revocation;
pub mod role;
pub mod role_change;
pub mod session;
pub mod session_pg;
pub mod session_row;
pub mod setting;
pub mod signing_key;
pub mod throttle;
pub mod user;

pub use audit::{AuditEvent, AuditFilter, AuditStore, NewAuditEvent};
pub use authorization_code::{AuthorizationCode, AuthorizationCodeStore, CodeBinding, CodeRedemption};
pub use browser_session::{BrowserSessionRow, BrowserSessionStore};
pub use client::{Client, ClientStore, ClientUpdate, NewClient};
pub use client_cutoff::{ClientCutoff, ClientCutoffStore};
pub use client_settings::{ClientSettings, ClientType, GrantType, IdTokenAlg};
pub use consent::{Consent, ConsentStore};
pub use id_token_key::{IdTokenKeyStore, StoredIdTokenKey};
pub use mail_token::{MailToken, MailTokenStore, NewMailToken};
pub use mfa::{MfaChallenge, MfaStore, TotpRow};
pub use outbox::{OutboxMessage, OutboxStore};
pub use passkey::{Ceremony, PasskeyRow, PasskeyStore};
pub use refresh_token::{NewRefreshToken, RefreshFamily, RefreshToken, RefreshTokenStore};
pub use revocation::RevocationStore;
pub use role::{Role, RoleStore};
pub use role_change::{RoleChange, RoleChangeStore};
pub use session::{
    Advance, CodeSessionOrigin, Ending, NewSession, Session, SessionFamily, SessionStore, FIRST_PARTY_CLIENT,
};
pub use setting::SettingStore;
pub use signing_key::{SigningKeyStore, StoredKey};
pub use throttle::{Throttle, ThrottleStore};
pub use user::{AdminLock, NewUser, User, UserStore};

/// The SQLite connection type the stores are implemented for: pooled readers and the writer
/// alike run statements inline (see [`Inline`](crate::db::Inline)).
pub type SqliteConn =
    diesel_async::sync_connection_wrapper::SyncConnectionWrapper<diesel::SqliteConnection, crate::db::Inline>;
/// The PostgreSQL connection type the stores are implemented for.
pub type PgConn = crate::db::PgConn;

/// Implements a store trait for both connection types with one body.
macro_rules! for_each_backend {
    (impl $store:ident { $($body:tt)* }) => {
        impl $store for $crate::models::SqliteConn { $($body)* }
        impl $store for $crate::models::PgConn { $($body)* }
    };
}
pub(crate) use for_each_backend;
