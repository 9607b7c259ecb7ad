//! What a client is and may do (RFC 6749 §2.1 client types, RFC 7591 §2 registration metadata),
//! as stored in the `clients` row: names as text, lists as JSON arrays of strings.

use std::fmt;

/// RFC 6749 §2.1: a confidential client authenticates with its secret; a public one (a browser
/// or native app) cannot keep a secret, has none, and identifies by its `client_id` alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientType {
    Confidential,
    Public,
}

impl ClientType {
    pub const ALL: [ClientType; 2] = [ClientType::Confidential, ClientType::Public];

    pub fn as_str(self) -> &'static str {
        match self {
            ClientType::Confidential => "confidential",
            ClientType::Public => "public",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }
}

/// The grants of the token endpoint a client may use (RFC 7591 §2 `grant_types`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GrantType {
    AuthorizationCode,
    ClientCredentials,
    Password,
    RefreshToken,
}

impl GrantType {
    pub const ALL: [GrantType; 4] =
        [GrantType::AuthorizationCode, GrantType::ClientCredentials, GrantType::Password, GrantType::RefreshToken];

    pub fn as_str(self) -> &'static str {
        match self {
            GrantType::AuthorizationCode => "authorization_code",
            GrantType::ClientCredentials => "client_credentials",
            GrantType::Password => "password",
            GrantType::RefreshToken => "refresh_token",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|g| g.as_str() == name)
    }

    /// Grants only a client that authenticates may use: the client-credentials grant has no
    /// other proof of who asks (RFC 6749 §4.4), and the password grant hands a user's password
    /// to the client, which only a trusted, authenticated one may see (RFC 9700 §2.4).
    pub fn confidential_only(self) -> bool {
        matches!(self, GrantType::ClientCredentials | GrantType::Password)
    }

    /// The grants a client of `client_type` gets when its registration names none.
    pub fn defaults(client_type: ClientType) -> Vec<GrantType> {
        match client_type {
            ClientType::Confidential => vec![GrantType::ClientCredentials],
            ClientType::Public => vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        }
    }
}

impl fmt::Display for GrantType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the client's ID tokens are signed (OpenID Connect Dynamic Client Registration §2): RS256,
/// which every OpenID provider must offer (OpenID Connect Core §15.1), or EdDSA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum IdTokenAlg {
    #[default]
    Rs256,
    EdDsa,
}

impl IdTokenAlg {
    /// Every supported algorithm, RS256 first (discovery's `id_token_signing_alg_values_supported`).
    pub const ALL: [IdTokenAlg; 2] = [IdTokenAlg::Rs256, IdTokenAlg::EdDsa];

    /// The JWS `alg` name (RFC 7518 §3.1, RFC 8037 §3.1).
    pub fn as_str(self) -> &'static str {
        match self {
            IdTokenAlg::Rs256 => "RS256",
            IdTokenAlg::EdDsa => "EdDSA",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == name)
    }
}

/// A client's type and registration metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSettings {
    pub client_type: ClientType,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    /// Sorted, without duplicates.
    pub grant_types: Vec<GrantType>,
    /// First-party clients are trusted like Portcullis's own pages: no consent page.
    pub first_party: bool,
    pub id_token_alg: IdTokenAlg,
}

impl ClientSettings {
    /// The settings of a client of `client_type` registered with nothing else.
    pub fn of_type(client_type: ClientType) -> Self {
        ClientSettings {
            client_type,
            redirect_uris: vec![],
            post_logout_redirect_uris: vec![],
            grant_types: GrantType::defaults(client_type),
            first_party: false,
            id_token_alg: IdTokenAlg::Rs256,
        }
    }

    pub fn allows(&self, grant: GrantType) -> bool {
        self.grant_types.contains(&grant)
    }
}

/// The stored form of the settings: `(client_type, redirect_uris, post_logout_redirect_uris,
/// grant_types, first_party, id_token_signed_response_alg)`.
pub type SettingsRow = (String, String, String, String, bool, String);

fn json_list(values: impl IntoIterator<Item = impl Into<String>>) -> String {
    serde_json::Value::from(values.into_iter().map(Into::into).collect::<Vec<String>>()).to_string()
}

fn corrupt(what: &str) -> diesel::result::Error {
    diesel::result::Error::DeserializationError(format!("clients.{what} holds an unknown value").into())
}

impl ClientSettings {
    pub fn to_row(&self) -> SettingsRow {
        (
            self.client_type.as_str().to_owned(),
            json_list(self.redirect_uris.iter().cloned()),
            json_list(self.post_logout_redirect_uris.iter().cloned()),
            json_list(self.grant_types.iter().map(|g| g.as_str())),
            self.first_party,
            self.id_token_alg.as_str().to_owned(),
        )
    }

    pub fn from_row(row: SettingsRow) -> diesel::QueryResult<Self> {
        let (client_type, redirect_uris, post_logout, grant_types, first_party, alg) = row;
        let list = |text: &str, what: &str| serde_json::from_str::<Vec<String>>(text).map_err(|_| corrupt(what));
        let grant_types = list(&grant_types, "grant_types")?
            .iter()
            .map(|g| GrantType::parse(g).ok_or_else(|| corrupt("grant_types")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ClientSettings {
            client_type: ClientType::parse(&client_type).ok_or_else(|| corrupt("client_type"))?,
            redirect_uris: list(&redirect_uris, "redirect_uris")?,
            post_logout_redirect_uris: list(&post_logout, "post_logout_redirect_uris")?,
            grant_types,
            first_party,
            id_token_alg: IdTokenAlg::parse(&alg).ok_or_else(|| corrupt("id_token_signed_response_alg"))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_survive_their_stored_form() {
        let mut settings = ClientSettings::of_type(ClientType::Public);
        settings.redirect_uris = vec!["https://app.example/cb".into(), "com.example.app:/cb".into()];
        settings.first_party = true;
        settings.id_token_alg = IdTokenAlg::EdDsa;
        assert_eq!(ClientSettings::from_row(settings.to_row()).unwrap(), settings);
        let row = ClientSettings::of_type(ClientType::Confidential).to_row();
        assert_eq!(
            (row.0.as_str(), row.3.as_str(), row.5.as_str()),
            ("confidential", r#"["client_credentials"]"#, "RS256")
        );
    }
}
