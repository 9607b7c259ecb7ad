//! The authorization-code grant (RFC 6749 §4.1.3, OpenID Connect Core §3.1.3): a code, its
//! `redirect_uri` and PKCE verifier become a session of the client, and with `openid` in the
//! granted scope an ID token.
//!
//! One write transaction redeems the code ([`redeem_in`]) and inserts the session under the id
//! the redemption recorded ([`Starting::record`](crate::auth::session::start::Starting)), so a
//! replay racing the exchange always finds the session to end. In that transaction the sign-in
//! behind the code must still stand: its browser session live (ending one voids its pending codes
//! without every ending path touching them) and the account enabled; otherwise the transaction
//! rolls back and nothing is spent.
//!
//! The session belongs to the client, is down-scoped to the granted scope (checked at the
//! authorization request: a permission lost since simply grants nothing, as in every down-scoped
//! session), bound to the code's `resource`, and records the code's `amr`, browser session and
//! `auth_time`. From then on it is a session like any other (rotation, reuse, cap, revocation).

use crate::auth::guards::RequestOrigin;
use crate::auth::oidc::codes::{presented_challenge, redeem_in, CodePresentation, CodeRefusal, CODE_REPLAYED};
use crate::auth::oidc::id_token::{EmailClaim, IdTokenRequest};
use crate::auth::oidc::key_set::IdTokenAlg;
use crate::auth::oidc::scope::scope_has;
use crate::auth::secrets::hash_token;
use crate::auth::session::cap::lock_code_owner_sessions;
use crate::auth::session::issued::IssuedTokens;
use crate::auth::session::login::Started;
use crate::auth::session::scope::Scope;
use crate::auth::session::start::Starting;
use crate::auth::Auth;
use crate::db::{DbConn, Id};
use crate::error::{ApiError, ApiResult};
use crate::models::{AuthorizationCode, ClientStore, CodeRedemption, CodeSessionOrigin, SessionStore, User, UserStore};

/// Why the exchange's transaction ends: a refusal that must roll back what the redemption
/// wrote, or a storage error.
enum Abort {
    Refused(CodeRefusal),
    Db(diesel::result::Error),
}

impl From<diesel::result::Error> for Abort {
    fn from(e: diesel::result::Error) -> Self {
        Abort::Db(e)
    }
}

/// What the exchange's transaction committed. Not boxed: one lives per request, briefly.
#[allow(clippy::large_enum_variant)]
enum Exchanged<'a> {
    /// The code was redeemed and its session recorded; the sessions the cap ended for it.
    /// With the account and its roles as the transaction read them.
    Started { starting: Starting<'a>, evicted: Vec<Id>, nonce: Option<String>, user: User, roles: Vec<String> },
    /// Not redeemed (a replay ended the first session, if this call ended it).
    Refused { redemption: CodeRedemption, ended: bool },
}

/// The account and its role names while the sign-in behind `code` stands: its browser session
/// lives (not ended, within its lifetime) and belongs to the code's user, and the account exists
/// and is enabled; `None` otherwise.
///
/// One query reads the browser session with its account and roles, and what it read serves the
/// new session's access token and ID token too: reading the account and the roles again after
/// the commit took two more round trips (bench/README.md, "Reading the code-flow figures").
async fn sign_in_stands<C: SessionStore>(
    c: &mut C,
    code: &AuthorizationCode,
    now: i64,
    refresh_ttl: i64,
) -> diesel::QueryResult<Option<(User, Vec<String>)>> {
    // The caller holds the user's session lock (see `Auth::exchange_code`).
    let Some(family) = c.find_session_family(code.browser_session_id).await? else { return Ok(None) };
    let browser = &family.session;
    let stands = browser.user_id == code.user_id && browser.is_live(now, refresh_ttl) && !family.user.disabled;
    Ok(stands.then_some((family.user, family.roles)))
}

/// When `tokens` get an ID token: a session a code started (`auth_time`) whose scope has
/// `openid`; its `auth_time` and scope.
fn id_token_basis(tokens: &IssuedTokens) -> Option<(i64, &str)> {
    let auth_time = tokens.auth_time?;
    let scope = tokens.scope.as_deref().filter(|scope| scope_has(scope, "openid"))?;
    Some((auth_time, scope))
}

impl Auth {
    /// `grant_type=authorization_code` for the client of `presented` (identified and allowed the
    /// grant by the route): the session's first tokens, with an ID token signed with `alg` when
    /// the granted scope has `openid`; or why the code was refused (every refusal is
    /// `invalid_grant`, RFC 6749 §5.2).
    pub async fn exchange_code(
        &self,
        conn: &mut DbConn,
        code: &str,
        presented: &CodePresentation<'_>,
        alg: IdTokenAlg,
        client: &RequestOrigin,
    ) -> ApiResult<Result<IssuedTokens, CodeRefusal>> {
        let (hash, challenge) = (hash_token(code), presented_challenge(presented.code_verifier));
        let binding = presented.binding(&challenge);
        let session_id = Id::new();
        let ending = self.ending(CODE_REPLAYED);
        let (now, refresh_ttl) = (ending.now, self.config.refresh_ttl as i64);
        let client_id = presented.client_id.to_string();
        let committed = crate::db::write_tx!(conn, |c| {
            // The user's session lock before the code's row, in the order of every path that ends
            // sessions (`Auth::end_browser_session` locks the user, then voids the codes of the
            // browser session it ends): on PostgreSQL the other order deadlocks against a racing
            // logout. Holding it, this exchange either sees the browser session ended, or commits
            // its session before logout lists the sessions that browser session started. The
            // same lock makes room under the session cap below: one update of the user's row.
            let held = lock_code_owner_sessions(c, &hash).await?;
            let (redemption, ended) = redeem_in(c, &hash, binding, session_id, ending, client).await?;
            let CodeRedemption::Redeemed(code) = redemption else {
                return Ok(Exchanged::Refused { redemption, ended });
            };
            let Some((user, roles)) = sign_in_stands(c, &code, now, refresh_ttl).await? else {
                return Err(Abort::Refused(CodeRefusal::SignInEnded));
            };
            let scope = Scope::stored(&code.scope);
            let started = Started {
                amr: &code.amr,
                resource: code.resource.as_deref(),
                scope: Some(&scope),
                reservation: None,
                client_id: &client_id,
            };
            let origin = CodeSessionOrigin { browser_session_id: code.browser_session_id, auth_time: code.auth_time };
            let starting = self.starting(session_id, code.user_id, &started, Some(origin), client, now);
            let evicted = starting.record(c, held).await?;
            Ok::<_, Abort>(Exchanged::Started { starting, evicted, nonce: code.nonce, user, roles })
        });
        let (starting, evicted, nonce, user, roles) = match committed {
            Ok(Exchanged::Started { starting, evicted, nonce, user, roles }) => (starting, evicted, nonce, user, roles),
            Ok(Exchanged::Refused { redemption, ended }) => {
                return Ok(Err(self
                    .settle(redemption, ended, session_id, &ending)
                    .err()
                    .unwrap_or(CodeRefusal::Unknown)))
            }
            Err(Abort::Refused(refusal)) => return Ok(Err(refusal)),
            Err(Abort::Db(e)) => return Err(e.into()),
        };
        let mut tokens = self.started_with_roles(starting, &evicted, roles)?;
        let email = EmailClaim { email: &user.email, verified: user.email_verified };
        self.sign_id_token(&mut tokens, alg, nonce.as_deref(), email)?;
        Ok(Ok(tokens))
    }

    /// Adds the ID token to `tokens` when a code started their session (it has an `auth_time`)
    /// and their scope has `openid`: at the code's exchange with its `nonce`, at a refresh
    /// without one (OpenID Connect Core §12.2), always with the original `auth_time`.
    pub async fn add_id_token(
        &self,
        conn: &mut DbConn,
        tokens: &mut IssuedTokens,
        alg: IdTokenAlg,
        nonce: Option<&str>,
    ) -> ApiResult<()> {
        if id_token_basis(tokens).is_none() {
            return Ok(());
        }
        let user = crate::db::with_conn!(conn, |c| c.find_user(tokens.user_id).await)?
            .ok_or_else(|| ApiError::invalid_grant("The account no longer exists."))?;
        let email = EmailClaim { email: &user.email, verified: user.email_verified };
        self.sign_id_token(tokens, alg, nonce, email)
    }

    /// [`add_id_token`](Self::add_id_token) with the account's `email` already read.
    fn sign_id_token(
        &self,
        tokens: &mut IssuedTokens,
        alg: IdTokenAlg,
        nonce: Option<&str>,
        email: EmailClaim<'_>,
    ) -> ApiResult<()> {
        let Some((auth_time, scope)) = id_token_basis(tokens) else { return Ok(()) };
        let request = IdTokenRequest {
            client_id: &tokens.client_id,
            user_id: tokens.user_id,
            session_id: tokens.session_id,
            auth_time,
            nonce,
            amr: &tokens.amr,
            scope,
            access_token: &tokens.access_token,
            email,
        };
        tokens.id_token = Some(self.id_token(&request, alg).map_err(ApiError::internal)?);
        Ok(())
    }

    /// The ID token of a refresh (contract v3, "Details": "a refresh of an `openid` session
    /// answers a new ID token with the original `auth_time`"), at `/oauth/token` and at
    /// `/auth/refresh` alike, signed with the algorithm of the session's client. Sessions no
    /// code started, or without `openid`, skip the client lookup.
    pub async fn add_refreshed_id_token(&self, conn: &mut DbConn, tokens: &mut IssuedTokens) -> ApiResult<()> {
        if id_token_basis(tokens).is_none() {
            return Ok(());
        }
        let alg = match tokens.client_id.parse::<Id>() {
            Ok(client_id) => crate::db::with_conn!(conn, |c| c.find_client(client_id).await)?
                .map(|(client, _)| client.settings.id_token_alg)
                .unwrap_or_default(),
            Err(_) => IdTokenAlg::default(), // `portcullis`'s own sessions
        };
        self.add_id_token(conn, tokens, alg, None).await
    }
}
