//! Browser sign-in's building blocks (OpenID Connect, docs/browser-sign-in.md): the keys that
//! sign ID tokens and the tokens themselves, authorization codes with PKCE, consents, and what
//! the UserInfo endpoint answers. The authorization endpoint, the hosted pages and the
//! authorization-code grant are built on them.

pub mod authorize;
pub mod authorize_decide;
pub mod authorize_params;
pub mod code_grant;
pub mod codes;
pub mod consent;
pub mod cors;
pub mod id_token;
pub mod id_token_hint;
pub mod key_set;
pub mod keys;
pub mod pkce;
pub mod redirect_uri;
pub mod request_params;
pub mod scope;
pub mod userinfo;

#[cfg(test)]
mod id_token_tests;
