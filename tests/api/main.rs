//! The one integration-test binary: every HTTP and storage test, on SQLite and PostgreSQL.

mod helpers;

mod accounts;
mod admin_matrix;
mod admin_roles;
mod admin_support;
mod admin_users;
mod cli;
mod clients;
mod config;
mod delegation;
mod docs;
mod feed;
mod feed_notify;
mod foundation;
mod generated_keys;
mod hardening;
mod housekeeping;
mod metrics;
mod mfa_enrolment;
mod mfa_login;
mod mfa_policy;
mod mfa_support;
mod oauth;
mod operations;
mod outage;
mod revocation;
mod rotation;
mod session_cap;
mod session_storage;
mod sessions;
mod shutdown;
mod signing;
mod throttling;
mod tokens;
mod writer;
