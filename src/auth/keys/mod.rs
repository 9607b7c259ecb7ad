//! Keys: what signs and verifies access tokens, and what protects secrets at rest.
//! `tokens` is the JWT format; `signing` chooses and rotates the keys (generated ones in the
//! database, `files` from configuration); `ring` holds the keys in force; `kek` seals at rest.

pub mod files;
pub mod kek;
pub mod ring;
pub mod signing;
pub mod tokens;
