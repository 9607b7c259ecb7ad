//! Browser sessions of the hosted sign-in (docs/browser-sign-in.md, contract "(v3) Browser
//! sign-in" and "Browser sessions"): what a browser's cookie stands for once the person has signed
//! in, so a second client signs in without the password (single sign-on).
//!
//! A browser session is a row of `sessions` with `client_id = 'portcullis'`: it is listed in
//! `/auth/sessions`, counted by the cap, and ended by every path that ends sessions (logout-all,
//! password change or reset, disable, MFA confirmation, admin revocation) with no code of its
//! own there. It can never be refreshed: no refresh token is ever minted for it, and refresh
//! tokens are MACs of the session id and generation under a server key (`auth::session::chain`),
//! so none can be made up. A `browser_sessions` row marks it and holds the SHA-256 digest of the
//! cookie's 256-bit token and `auth_time`.
//!
//! `sign_in` runs the sign-in form's steps, `start` begins a session after them, `lookup` finds
//! the live one a cookie names, `end` ends one with the sessions it started, and `logout` is
//! RP-initiated logout (a new sign-in in the same browser replaces a session too).

pub mod end;
pub mod logout;
pub mod logout_params;
pub mod lookup;
pub mod sign_in;
pub mod start;

use crate::auth::Auth;
use crate::db::Id;

/// A live browser session, as its cookie found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrowserSession {
    /// The `sessions` row's id: the `browser_session_id` of the codes it issues.
    pub id: Id,
    pub user_id: Id,
    /// When the password or second factor was last presented (Unix seconds).
    pub auth_time: i64,
    /// RFC 8176 methods of that sign-in, space-separated (`pwd`, `pwd otp mfa`).
    pub amr: String,
}

/// `end_reason` of a browser session replaced by a new sign-in in the same browser.
pub const REPLACED: &str = "browser_signin_replaced";

impl Auth {
    /// How long a new browser session lives: `browser_session_ttl`, never past `session_max_age`.
    pub fn browser_session_ttl(&self) -> i64 {
        self.config.browser_session_ttl.min(self.config.session_max_age) as i64
    }

    /// A MAC of `parts` for the hosted pages under the server's refresh-token key, separated from
    /// refresh tokens and other purposes by `purpose` (CSRF tokens bound to a browser session).
    pub fn page_tag(&self, purpose: &str, parts: &[&[u8]]) -> String {
        self.chain.tag(purpose, parts)
    }
}
