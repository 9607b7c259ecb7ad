//! Refresh tokens are bound to their client (RFC 6749 §6, §10.4; RFC 9700 §4.14.2): a session
//! belongs to the client that started it, and its refresh token is exchanged only by that
//! client — at the token endpoint, authenticated when it is confidential (the route identifies
//! it, `auth::token_client`) — or at `/auth/refresh`, which has no client authentication, only
//! for sessions of `portcullis` and of public clients (which could not authenticate anyway).
//! Anything else is refused like an unknown token, before the exchange, so it changes nothing:
//! the session keeps working for its own client. [`may_exchange`] is the one rule.
//!
//! Revocation (RFC 7009 §2.1) follows the same binding: the session of a confidential client is
//! ended only at that client's authenticated request ([`may_revoke`]); anyone holding a token
//! of a first-party or public client's session may end it, as before.

use crate::auth::token_client::TokenClient;
use crate::db::Id;
use crate::models::{ClientStore, ClientType, Session, FIRST_PARTY_CLIENT};

/// Who presents a refresh token for exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refresher<'a> {
    /// `POST /auth/refresh`.
    FirstParty,
    /// The token endpoint, by the client it identified: its `client_id` (`portcullis` when the
    /// request named no registered client).
    Client(&'a str),
}

impl Refresher<'_> {
    /// The session client whose sessions this refresher exchanges without looking anything up:
    /// the one the PostgreSQL single-statement exchange may accept (`models::session_pg`).
    pub fn plain_client(&self) -> &str {
        match self {
            Refresher::FirstParty => FIRST_PARTY_CLIENT,
            Refresher::Client(id) => id,
        }
    }
}

/// Whether `refresher` may exchange the refresh token of `session`. Reads the session's client
/// only for a first-party refresh of a registered client's session (is it public?).
pub async fn may_exchange<C: ClientStore>(
    c: &mut C,
    session: &Session,
    refresher: Refresher<'_>,
) -> diesel::QueryResult<bool> {
    if session.client_id == refresher.plain_client() {
        return Ok(true);
    }
    if refresher != Refresher::FirstParty {
        return Ok(false);
    }
    let Ok(client_id) = session.client_id.parse::<Id>() else { return Ok(false) };
    let found = c.find_client(client_id).await?;
    Ok(found.is_some_and(|(client, _)| client.settings.client_type == ClientType::Public))
}

/// Whether `revoker` may end a session of the client `owner` (a session's `client_id`).
pub async fn may_revoke<C: ClientStore>(c: &mut C, owner: &str, revoker: &TokenClient) -> diesel::QueryResult<bool> {
    if owner == FIRST_PARTY_CLIENT {
        return Ok(true);
    }
    let Ok(owner_id) = owner.parse::<Id>() else { return Ok(true) };
    if let TokenClient::Confidential(client) = revoker {
        if client.client_id == owner_id {
            return Ok(true);
        }
    }
    // A deleted client has no sessions left to protect; a public one has no secret to show.
    let found = c.find_client(owner_id).await?;
    Ok(found.is_none_or(|(client, _)| client.settings.client_type == ClientType::Public))
}
