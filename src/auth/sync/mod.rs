//! Sync: what every instance must know at once about power taken away.
//! `revocation` (ended sessions) and `role_changes` are the in-memory sets the guards consult
//! through `refusal`; `poller` and `wake` keep them current; `feed` serves them to resource servers.

pub mod feed;
pub mod poller;
pub(crate) mod refusal;
pub mod revocation;
pub mod role_changes;
pub mod wake;
