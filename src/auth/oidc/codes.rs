//! Authorization codes (RFC 6749 §4.1.2, RFC 9700 §2.1.1): 256 random bits, stored only as a
//! SHA-256 digest, living [`CODE_TTL`] seconds, redeemed once by the client they were issued to,
//! with the `redirect_uri` and the PKCE verifier of their request (RFC 7636 §4.6).
//!
//! Redemption is one conditional UPDATE ([`AuthorizationCodeStore::redeem_code`]): of concurrent
//! redemptions exactly one succeeds. A code presented again after its redemption is a replay: it
//! is refused, and the session the first redemption started ends (RFC 6749 §4.1.2, "SHOULD
//! revoke all tokens previously issued based on that authorization code") — [`Auth::redeem_code`]
//! is the one place that decides it.

use serde_json::json;

use crate::auth::audit::audit_event;
use crate::auth::guards::RequestOrigin;
use crate::auth::secrets::{hash_token, OpaqueToken};
use crate::auth::Auth;
use crate::config::Secret;
use crate::db::{DbConn, Id};
use crate::error::ApiResult;
use crate::models::{
    AuditStore, AuthorizationCode, AuthorizationCodeStore, CodeBinding, CodeRedemption, Ending, SessionStore,
};

use super::pkce;

/// How long a code lives: RFC 6749 §4.1.2 recommends at most ten minutes; one is plenty for a
/// redirect and a token request.
pub const CODE_TTL: i64 = 60;

/// What the authorization request decided, to be bound to the code.
#[derive(Debug, Clone)]
pub struct CodeRequest<'a> {
    pub client_id: Id,
    pub redirect_uri: &'a str,
    /// An S256 challenge ([`pkce::is_s256_challenge`]).
    pub code_challenge: &'a str,
    /// The granted scope, space-separated.
    pub scope: &'a str,
    pub nonce: Option<&'a str>,
    pub resource: Option<&'a str>,
    pub user_id: Id,
    pub auth_time: i64,
    /// Space-separated (RFC 8176).
    pub amr: &'a str,
    pub browser_session_id: Id,
}

/// What the token request presents with the code.
#[derive(Debug, Clone, Copy)]
pub struct CodePresentation<'a> {
    pub client_id: Id,
    pub redirect_uri: &'a str,
    pub code_verifier: &'a str,
}

/// A redeemed code: what it carried, and the id the session it starts must have (recorded on the
/// code, so that a replay can end that session).
#[derive(Debug, Clone)]
pub struct CodeGrant {
    pub code: AuthorizationCode,
    pub session_id: Id,
}

/// Why a code was not redeemed. Every variant is `invalid_grant` at the token endpoint (RFC 6749
/// §5.2); they differ for the audit log and for the replay's consequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeRefusal {
    /// No such code (never issued, or deleted long after it expired).
    Unknown,
    /// Its 60 seconds are over.
    Expired,
    /// Issued to another client, for another `redirect_uri`, or the verifier does not match the
    /// challenge; the code is not spent.
    Mismatch,
    /// Redeemed before: the session that redemption started, now ended (`None` when the
    /// redemption had not recorded one).
    Replayed { user_id: Id, session_id: Option<Id> },
    /// The sign-in behind the code no longer stands: its browser session ended or expired, or
    /// the account was disabled or deleted since. Nothing is spent.
    SignInEnded,
}

/// `end_reason` of a session ended because its code was replayed.
pub const CODE_REPLAYED: &str = "code_replayed";

/// The S256 challenge of a presented verifier. A verifier outside RFC 7636's grammar can match
/// no challenge: it is compared as an impossible one (empty), so a replay with any verifier is
/// still detected, and a verifier without a challenge (a PKCE downgrade) matches nothing.
pub fn presented_challenge(code_verifier: &str) -> String {
    if pkce::is_verifier(code_verifier) {
        pkce::s256_challenge(code_verifier)
    } else {
        String::new()
    }
}

impl<'a> CodePresentation<'a> {
    /// What the stored code must match: this client and `redirect_uri`, and `challenge`
    /// ([`presented_challenge`] of the verifier).
    pub fn binding(&self, challenge: &'a str) -> CodeBinding<'a> {
        CodeBinding { client_id: self.client_id, redirect_uri: self.redirect_uri, code_challenge: challenge }
    }
}

/// The one redemption, inside the caller's write transaction: redeems the code of `hash` for
/// `binding` recording `session_id`, or, when it was redeemed before (a replay), ends the session
/// that redemption started and audits `code_replayed`. Returns the redemption and whether this
/// call ended a session; [`Auth::settle`] says what it means once committed.
pub(crate) async fn redeem_in<C: AuthorizationCodeStore + SessionStore + AuditStore>(
    c: &mut C,
    hash: &str,
    binding: CodeBinding<'_>,
    session_id: Id,
    ending: Ending<'_>,
    client: &RequestOrigin,
) -> diesel::QueryResult<(CodeRedemption, bool)> {
    let redemption = c.redeem_code(hash, binding, ending.now, session_id).await?;
    let mut ended = false;
    if let CodeRedemption::Replayed { user_id, session_id } = &redemption {
        if let Some(session) = session_id {
            ended = c.end_session(*session, ending).await?;
        }
        let detail = json!({"client_id": binding.client_id, "session_id": session_id, "session_ended": ended});
        c.insert_audit(&audit_event(CODE_REPLAYED, ending.now, Some(*user_id), client, detail)).await?;
    }
    Ok((redemption, ended))
}

impl Auth {
    /// Stores a new code for `request`; returns the code for the redirect (never stored).
    pub async fn issue_code(&self, conn: &mut DbConn, request: &CodeRequest<'_>) -> ApiResult<Secret> {
        let token = OpaqueToken::generate();
        let now = self.clock.now();
        let row = AuthorizationCode {
            code_hash: token.hash().to_owned(),
            client_id: request.client_id,
            redirect_uri: request.redirect_uri.to_owned(),
            code_challenge: request.code_challenge.to_owned(),
            scope: request.scope.to_owned(),
            nonce: request.nonce.map(str::to_owned),
            resource: request.resource.map(str::to_owned),
            user_id: request.user_id,
            auth_time: request.auth_time,
            amr: request.amr.to_owned(),
            browser_session_id: request.browser_session_id,
            created_at: now,
            expires_at: now + CODE_TTL,
            redeemed_at: None,
            session_id: None,
        };
        crate::db::write_one!(conn, |c| c.insert_code(&row).await)?;
        Ok(Secret::new(token.into_plaintext()))
    }

    /// Redeems `code` as `presented`. On a replay, ends the session the first redemption started
    /// (in the transaction that detects it, and at once in this instance's memory).
    ///
    /// The session a grant starts must take [`CodeGrant::session_id`] as its id. The token grant
    /// runs [`redeem_in`] in the transaction that inserts that session instead
    /// (`auth::oidc::code_grant`), so a replay racing the first redemption always finds it.
    pub async fn redeem_code(
        &self,
        conn: &mut DbConn,
        code: &str,
        presented: &CodePresentation<'_>,
        client: &RequestOrigin,
    ) -> ApiResult<Result<CodeGrant, CodeRefusal>> {
        let (hash, challenge) = (hash_token(code), presented_challenge(presented.code_verifier));
        let binding = presented.binding(&challenge);
        let session_id = Id::new();
        let ending = self.ending(CODE_REPLAYED);
        let (redemption, ended) =
            crate::db::write_tx!(conn, |c| redeem_in(c, &hash, binding, session_id, ending, client).await)?;
        Ok(self.settle(redemption, ended, session_id, &ending))
    }

    /// What a redemption [`redeem_in`] committed means; a session a replay ended is revoked in
    /// this instance's memory at once.
    pub(crate) fn settle(
        &self,
        redemption: CodeRedemption,
        ended: bool,
        session_id: Id,
        ending: &Ending<'_>,
    ) -> Result<CodeGrant, CodeRefusal> {
        match redemption {
            CodeRedemption::Redeemed(code) => Ok(CodeGrant { code, session_id }),
            CodeRedemption::Replayed { user_id, session_id } => {
                if let (true, Some(session)) = (ended, session_id) {
                    self.revoke_locally(&[session], ending);
                }
                Err(CodeRefusal::Replayed { user_id, session_id })
            }
            CodeRedemption::Refused(code) if code.expires_at <= ending.now => Err(CodeRefusal::Expired),
            CodeRedemption::Refused(_) => Err(CodeRefusal::Mismatch),
            CodeRedemption::Unknown => Err(CodeRefusal::Unknown),
        }
    }

    /// Voids the unredeemed codes of a browser session that ended (every path that ends one
    /// calls this in its transaction once browser sessions exist).
    pub async fn void_codes_of(&self, conn: &mut DbConn, browser_session_id: Id) -> ApiResult<usize> {
        Ok(crate::db::write_tx!(conn, |c| c.void_browser_session_codes(browser_session_id).await)?)
    }
}
