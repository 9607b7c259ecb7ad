//! Keys: what signs and verifies access tokens, and what protects secrets at rest.
//! `tokens` is the JWT format; `signing` chooses and rotates the keys (generated ones in the
//! database, `files` from configuration); `ring` holds the keys in force; `kek` seals at rest
//! under the key `sealing` chooses and checks at start-up (`kek_file` for SQLite's generated one).

pub mod files;
/// The sealing itself lives below `auth` (`crate::at_rest`), so the mail outbox can seal its
/// links without importing `auth`.
pub use crate::at_rest as kek;
pub mod kek_file;
pub mod ring;
pub mod sealing;
pub mod signing;
pub mod tokens;
