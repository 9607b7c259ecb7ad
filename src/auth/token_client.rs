//! Who asks at the token and revocation endpoints, by client type (RFC 6749 §2.1): a confidential
//! client authenticates with its secret (§2.3.1), a public client identifies with its
//! `client_id` alone (§3.2.1), and a request naming no registered client is Portcullis's own
//! first-party client, `portcullis` (what every app was before version 3, so an id an app chose
//! itself is ignored as before). Presenting the wrong kind of credentials for the client's type
//! is 401 `invalid_client`: a secret for a public client, none for a confidential one.
//!
//! What each may do is [`TokenClient::check_grant`]: a registered client only the grants of its
//! `grant_types` (RFC 7591 §2), 400 `unauthorized_client` otherwise (RFC 6749 §5.2).

use rocket::http::Status;

use crate::auth::client_auth::{find_presented, PresentedClient};
use crate::auth::guards::RequestOrigin;
use crate::auth::Auth;
use crate::db::DbConn;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::models::{Client, ClientType, GrantType, FIRST_PARTY_CLIENT};

/// The client of a request at the token or revocation endpoint.
#[derive(Debug, Clone)]
pub enum TokenClient {
    /// No registered client's credentials: Portcullis itself (`portcullis`).
    FirstParty,
    /// A public client, identified by its `client_id`.
    Public(Client),
    /// A confidential client, authenticated by its secret.
    Confidential(Client),
}

impl TokenClient {
    /// The `client_id` of the sessions this client starts, and may refresh.
    pub fn session_client_id(&self) -> String {
        match self {
            TokenClient::FirstParty => FIRST_PARTY_CLIENT.to_owned(),
            TokenClient::Public(client) | TokenClient::Confidential(client) => client.client_id.to_string(),
        }
    }

    /// Whether the client may use `grant` (see [`check_grant`](Self::check_grant)).
    pub fn may(&self, grant: GrantType) -> bool {
        match self {
            TokenClient::FirstParty => matches!(grant, GrantType::Password | GrantType::RefreshToken),
            TokenClient::Public(client) | TokenClient::Confidential(client) => client.settings.allows(grant),
        }
    }

    /// The registered client, if the request named one.
    pub fn registered(&self) -> Option<&Client> {
        match self {
            TokenClient::FirstParty => None,
            TokenClient::Public(client) | TokenClient::Confidential(client) => Some(client),
        }
    }

    /// 400 `unauthorized_client` unless the client may use `grant`. The first-party client may
    /// use the password and refresh-token grants (whether the password grant is on at all is
    /// `auth.password_grant`'s business) and nothing that needs a registered client.
    pub fn check_grant(&self, grant: GrantType) -> ApiResult<()> {
        if self.may(grant) {
            return Ok(());
        }
        let description = format!("This client may not use the {grant} grant.");
        Err(ApiError::new(Status::BadRequest, ErrorCode::UnauthorizedClient, description))
    }
}

impl Auth {
    /// Identifies the client of a request from what it presented (see the module comment):
    /// 401 `invalid_client` for wrong or wrong-kind credentials of a registered client, or a
    /// disabled one; secrets are checked, and throttled, as at the client-credentials grant.
    pub async fn identify_client(
        &self,
        conn: &mut DbConn,
        presented: Option<&PresentedClient>,
        from: &RequestOrigin,
    ) -> ApiResult<TokenClient> {
        let Some(presented) = presented else { return Ok(TokenClient::FirstParty) };
        let Some((client, digest)) = find_presented(conn, presented).await? else {
            return Ok(TokenClient::FirstParty);
        };
        match (client.settings.client_type, &presented.secret) {
            (ClientType::Public, None) if !client.disabled => Ok(TokenClient::Public(client)),
            (ClientType::Confidential, Some(_)) => {
                let client = self.check_secret(conn, presented, Some((client, digest)), from).await?;
                Ok(TokenClient::Confidential(client))
            }
            _ => Err(ApiError::invalid_client(presented.basic)),
        }
    }
}
