//! Sync: what every instance must know at once about power taken away.
//! `revocation` (ended sessions), `client_cutoffs` (client tokens issued before a change) and
//! `role_changes` are the in-memory sets the guards consult
//! through `refusal`; `poller` and `wake` keep them current; `feed` serves them to resource servers.

pub mod client_cutoffs;
pub mod feed;
pub mod poller;
pub(crate) mod refusal;
pub mod revocation;
pub mod role_changes;
pub mod wake;
