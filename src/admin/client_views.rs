//! Clients as the API shows them: never a secret digest, a secret only once.

use serde::Serialize;

use crate::clock::rfc3339;
use crate::db::Id;
use crate::models::Client;

/// A client as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = Client)]
pub struct ClientView {
    pub client_id: Id,
    pub name: String,
    #[schema(example = json!(["users:read"]))]
    pub permissions: Vec<String>,
    pub disabled: bool,
    #[schema(format = DateTime)]
    pub created_at: String,
    /// `confidential` (authenticates with its secret) or `public` (a browser or native app: no
    /// secret, identified by its `client_id`).
    #[serde(rename = "type")]
    #[schema(example = "confidential")]
    pub client_type: &'static str,
    /// Where the authorization-code grant may send the user back (compared byte for byte).
    #[schema(example = json!(["https://app.example/callback"]))]
    pub redirect_uris: Vec<String>,
    /// Where RP-initiated logout may send the user.
    pub post_logout_redirect_uris: Vec<String>,
    /// The grants of the token endpoint the client may use.
    #[schema(example = json!(["client_credentials"]))]
    pub grant_types: Vec<&'static str>,
    /// Whether users skip the consent page for this client.
    pub first_party: bool,
    /// `RS256` or `EdDSA`.
    #[schema(example = "RS256")]
    pub id_token_signed_response_alg: &'static str,
}

impl From<&Client> for ClientView {
    fn from(client: &Client) -> Self {
        let settings = &client.settings;
        ClientView {
            client_id: client.client_id,
            name: client.name.clone(),
            permissions: client.permissions.iter().cloned().collect(),
            disabled: client.disabled,
            created_at: rfc3339(client.created_at),
            client_type: settings.client_type.as_str(),
            redirect_uris: settings.redirect_uris.clone(),
            post_logout_redirect_uris: settings.post_logout_redirect_uris.clone(),
            grant_types: settings.grant_types.iter().map(|g| g.as_str()).collect(),
            first_party: settings.first_party,
            id_token_signed_response_alg: settings.id_token_alg.as_str(),
        }
    }
}

/// A new client with its secret, shown this once; a public client has none. `Debug` leaves the
/// secret out.
#[derive(Clone, Serialize, utoipa::ToSchema)]
pub struct CreatedClient {
    #[serde(flatten)]
    pub client: ClientView,
    /// Only for a confidential client.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
}

impl std::fmt::Debug for CreatedClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedClient").field("client", &self.client).finish_non_exhaustive()
    }
}

/// A client's new secret. `Debug` leaves the secret out.
#[derive(Clone, Serialize, utoipa::ToSchema)]
pub struct NewSecret {
    pub client_id: Id,
    pub client_secret: String,
}

impl std::fmt::Debug for NewSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewSecret").field("client_id", &self.client_id).finish_non_exhaustive()
    }
}

/// The body of `GET /admin/clients`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ClientList {
    pub clients: Vec<ClientView>,
    pub total: i64,
}
