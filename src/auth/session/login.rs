//! Sessions and their token families: login, listing and password change. The JSON endpoints
//! and the OAuth token endpoint share these functions. Rotation lives in [`crate::auth::session::rotation`],
//! ending sessions in [`crate::auth::session::end`], the live-session cap in [`crate::auth::session::cap`].

use serde_json::json;

use crate::auth::accounts::check_password;
use crate::auth::audit::audit_event;
use crate::auth::guards::{self, RequestOrigin};
use crate::auth::keys::tokens::AccessClaims;
use crate::auth::mfa::methods::MfaMethod;
use crate::auth::password::Verdict;
use crate::auth::session::issued::IssuedTokens;
use crate::auth::session::password_step::PasswordStep;
use crate::auth::session::scope::Scope;
use crate::auth::throttle::{self, Reservation, ThrottleKeys};
use crate::auth::Auth;
use crate::config::Secret;
use crate::db::{DbConn, DbPool, Id};
use crate::error::{ApiError, ApiResult};
use crate::models::{AuditStore, Session, SessionStore, UserStore};
use crate::page::Page;

/// What a correct password leads to: a session, or (the account has MFA on) the second step.
#[derive(Debug)]
pub enum LoginOutcome {
    /// The session's first token pair.
    Session(IssuedTokens),
    /// The password was only the first step: its `mfa_token` and a code complete the login at
    /// `POST /auth/mfa/verify`. `Secret` keeps the token out of Debug output and logs.
    /// `methods`: the account's second factors (`mfa_methods` of the answer).
    SecondFactor { mfa_token: Secret, methods: Vec<MfaMethod> },
}

/// `amr` of a session started by a password alone (RFC 8176).
pub const AMR_PASSWORD: &str = "pwd";

/// How a session starts: the login's methods (`amr`, RFC 8176, space-separated), the resource
/// server its tokens are for (RFC 8707), the scope it asked for (`auth::session::scope`), the
/// throttle reservation the login made, if any, and the client the session belongs to
/// (`FIRST_PARTY_CLIENT` or a registered client's id).
pub(crate) struct Started<'a> {
    pub amr: &'a str,
    pub resource: Option<&'a str>,
    pub scope: Option<&'a Scope>,
    pub reservation: Option<&'a Reservation>,
    pub client_id: &'a str,
}

impl Auth {
    /// Issues the token pair for a session whose new refresh token is `refresh`; `session.scope`
    /// is the scope of this access token (a refresh may narrow it).
    pub(crate) fn token_response(
        &self,
        session: &Session,
        user_id: Id,
        roles: Vec<String>,
        refresh: String,
        refresh_expires: i64,
        now: i64,
    ) -> ApiResult<IssuedTokens> {
        let exp = (now + self.keys.ttl()).min(session.expires_at);
        let claims = AccessClaims {
            iss: self.config.issuer.clone(),
            aud: self.audience(session.resource.as_deref()),
            sub: user_id,
            jti: Id::new(),
            iat: now,
            exp,
            nbf: None,
            sid: Some(session.id),
            roles: Some(roles),
            client_id: Some(session.client_id.clone()),
            scope: session.scope.clone(),
            amr: session.amr.split_whitespace().map(str::to_owned).collect(),
        };
        Ok(IssuedTokens {
            access_token: self.keys.sign(&claims).map_err(ApiError::internal)?,
            expires_in: exp - now,
            refresh_token: refresh,
            refresh_expires_in: refresh_expires - now,
            session_id: session.id,
            scope: session.scope.clone(),
            user_id,
            client_id: session.client_id.clone(),
            amr: session.amr.clone(),
            auth_time: session.auth_time,
            id_token: None,
        })
    }

    /// `POST /auth/login`: checks the `resource`, throttling and the password, then starts a
    /// session (bound to `resource` when given, down-scoped to `scope` when given: its syntax is
    /// checked first, whether the user holds it last) of `client_id` (`FIRST_PARTY_CLIENT`, or the
    /// registered client whose password grant this is). Takes the pool, not a connection: no
    /// connection is held while the password hash is computed.
    #[allow(clippy::too_many_arguments)]
    pub async fn login(
        &self,
        pool: &DbPool,
        email: &str,
        password: &str,
        resource: Option<&str>,
        scope: Option<&str>,
        client_id: &str,
        client: &RequestOrigin,
    ) -> ApiResult<LoginOutcome> {
        let scope = Scope::parse(scope)?;
        self.check_resource(resource)?;
        match self.password_step(pool, email, password, resource, scope.as_ref(), client).await? {
            PasswordStep::SecondFactor { mfa_token, methods } => Ok(LoginOutcome::SecondFactor { mfa_token, methods }),
            PasswordStep::Admitted { user, reservation, now } => {
                let mut conn = pool.conn().await?;
                let started = Started {
                    amr: AMR_PASSWORD,
                    resource,
                    scope: scope.as_ref(),
                    reservation: Some(&reservation),
                    client_id,
                };
                let tokens = self.start_session(&mut conn, user.id, started, client, now).await?;
                Ok(LoginOutcome::Session(tokens))
            }
        }
    }

    /// Starts a session of `user` as `started` says, and issues its first token pair. Every
    /// completed login ends here.
    pub(crate) async fn start_session(
        &self,
        conn: &mut DbConn,
        user_id: Id,
        started: Started<'_>,
        client: &RequestOrigin,
        now: i64,
    ) -> ApiResult<IssuedTokens> {
        if let Some(scope) = started.scope {
            self.admit_scope(conn, user_id, scope, started.reservation, client, now).await?;
        }
        let starting = self.starting(Id::new(), user_id, &started, None, client, now);
        let reservation = started.reservation;
        let evicted = crate::db::write_tx!(conn, |c| {
            if let Some(reservation) = reservation {
                throttle::release(c, reservation).await?;
            }
            starting.record(c, None).await
        })?;
        self.started(conn, starting, &evicted).await
    }

    /// One page of the user's live sessions, newest first.
    pub async fn list_sessions(&self, conn: &mut DbConn, user: Id, page: Page) -> ApiResult<Vec<Session>> {
        let now = self.clock.now();
        let refresh_ttl = self.config.refresh_ttl as i64;
        let window = (page.limit, page.offset);
        Ok(crate::db::with_conn!(conn, |c| c.live_sessions(user, now, refresh_ttl, window).await)?)
    }

    /// `PUT /users/me/password`: checks the current password, stores the new one, and ends
    /// every other session of the user.
    pub async fn change_password(
        &self,
        pool: &DbPool,
        principal: &guards::User,
        current: &str,
        new: &str,
        client: &RequestOrigin,
    ) -> ApiResult<()> {
        check_password("new_password", new)?;
        let (user, reservation) = {
            let mut conn = pool.conn().await?;
            let user = crate::db::with_conn!(conn, |c| c.find_user(principal.user_id).await)?
                .ok_or_else(|| ApiError::invalid_token("The account of this access token no longer exists."))?;
            // Guessing the current password with a stolen access token is throttled like logins.
            let keys = ThrottleKeys::new(&user.email, client.ip.as_deref());
            (user, throttle::reserve(&mut conn, &keys, &self.config, self.clock.now_ms()).await?)
        };
        if self.hasher.verify(current, Some(&user.password_hash)).await == Verdict::Mismatch {
            throttle::failed(&mut pool.conn().await?, &reservation, self.clock.now_ms()).await?;
            return Err(ApiError::invalid_credentials());
        }
        let hash = self.hasher.hash(new).await.map_err(ApiError::internal)?;
        let mut owned = pool.conn().await?;
        let conn = &mut owned;
        let ending = self.ending("password_changed");
        let audit = audit_event("password_changed", ending.now, Some(user.id), client, json!({}));
        let ended = crate::db::write_tx!(conn, |c| {
            throttle::release(c, &reservation).await?;
            c.set_password_hash(user.id, &hash, ending.now).await?;
            // Reset links mailed before the change would undo it.
            crate::auth::recovery::void_reset_links(c, &user).await?;
            let ended = c.end_user_sessions(user.id, Some(principal.session_id), ending).await?;
            c.insert_audit(&audit).await?;
            Ok::<_, diesel::result::Error>(ended)
        })?;
        self.revoke_locally(&ended, &ending);
        Ok(())
    }
}
