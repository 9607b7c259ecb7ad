//! Sessions: one per sign-in, each with its chain of refresh tokens.
//! `login` starts them (and lists them, and changes passwords); `chain` is the refresh-token
//! format; `rotation` exchanges tokens (`binding` says who may, `lookup` reads without
//! exchanging); `end` and `cap` end sessions; `audience` says whom their access tokens are for
//! (RFC 8707); `scope` what a down-scoped session may ask for.

pub mod audience;
pub mod binding;
pub mod cap;
pub mod chain;
pub mod end;
pub mod issued;
pub mod login;
pub mod lookup;
pub mod password_step;
pub mod rotation;
pub mod scope;
pub mod start;
