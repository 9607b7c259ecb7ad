//! The one integration-test binary: every HTTP and storage test, on SQLite and PostgreSQL.

mod helpers;

mod accounts;
mod cli;
mod config;
mod foundation;
mod housekeeping;
mod revocation;
mod rotation;
mod sessions;
mod throttling;
mod tokens;
