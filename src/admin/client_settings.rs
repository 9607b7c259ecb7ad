//! A client's type and registration metadata as requests set them (`POST` and `PUT
//! /admin/clients`, `portcullis client create`), checked: an unknown value or a grant the type
//! may not use is 422 naming the field, and so is a redirect URI that is not one of:
//! - an absolute `https` URL,
//! - `http` on a loopback host (`127.0.0.0/8`, `[::1]`, `localhost`; RFC 8252 §7.3: native apps
//!   listening on a local port),
//! - a private-use scheme, in reverse domain-name form (`com.example.app:/callback`, RFC 8252
//!   §7.1),
//!
//! always without a fragment (RFC 6749 §3.1.2) and without whitespace or control characters (URL
//! parsers drop some silently, and redirect URIs are compared byte for byte, RFC 9700 §2.1).
//! URIs are kept exactly as given.

use crate::error::{ApiError, ApiResult};
use crate::models::{ClientSettings, ClientType, GrantType, IdTokenAlg};

/// Most redirect URIs (of either kind) one client registers.
const MAX_URIS: usize = 32;
/// Longest redirect URI accepted, in bytes.
const MAX_URI_LEN: usize = 2000;

/// The fields of a client as a request carries them: each `None` when left out.
#[derive(Debug, Clone, Default)]
pub struct ClientFields {
    pub name: Option<String>,
    pub permissions: Option<Vec<String>>,
    pub client_type: Option<String>,
    pub redirect_uris: Option<Vec<String>>,
    pub post_logout_redirect_uris: Option<Vec<String>>,
    pub grant_types: Option<Vec<String>>,
    pub first_party: Option<bool>,
    pub id_token_signed_response_alg: Option<String>,
}

fn invalid(field: &str, problem: impl std::fmt::Display) -> ApiError {
    ApiError::invalid_field(format!("{field}: {problem}"))
}

/// The settings of a new client: the type's defaults where `fields` says nothing.
pub fn new_settings(fields: &ClientFields) -> ApiResult<ClientSettings> {
    let client_type = match fields.client_type.as_deref() {
        None => ClientType::Confidential,
        Some(name) => ClientType::parse(name).ok_or_else(|| invalid("type", "\"confidential\" or \"public\""))?,
    };
    changed_settings(&ClientSettings::of_type(client_type), fields)
}

/// `current` with what `fields` carries changed (`PUT` changes the fields it carries). The type
/// cannot change: the client's secret (or its absence) goes with it.
pub fn changed_settings(current: &ClientSettings, fields: &ClientFields) -> ApiResult<ClientSettings> {
    let mut settings = current.clone();
    if let Some(name) = &fields.client_type {
        if name != current.client_type.as_str() {
            return Err(invalid("type", "a client's type cannot change; create another client"));
        }
    }
    if let Some(uris) = &fields.redirect_uris {
        settings.redirect_uris = check_uris("redirect_uris", uris)?;
    }
    if let Some(uris) = &fields.post_logout_redirect_uris {
        settings.post_logout_redirect_uris = check_uris("post_logout_redirect_uris", uris)?;
    }
    if let Some(grants) = &fields.grant_types {
        settings.grant_types = check_grants(settings.client_type, grants)?;
    }
    if let Some(first_party) = fields.first_party {
        settings.first_party = first_party;
    }
    if let Some(alg) = &fields.id_token_signed_response_alg {
        settings.id_token_alg =
            IdTokenAlg::parse(alg).ok_or_else(|| invalid("id_token_signed_response_alg", "\"RS256\" or \"EdDSA\""))?;
    }
    Ok(settings)
}

/// Known grants the type may use, sorted and without duplicates.
fn check_grants(client_type: ClientType, names: &[String]) -> ApiResult<Vec<GrantType>> {
    let mut grants = Vec::with_capacity(names.len());
    for name in names {
        let grant = GrantType::parse(name).ok_or_else(|| invalid("grant_types", format!("unknown grant {name:?}")))?;
        if grant.confidential_only() && client_type == ClientType::Public {
            return Err(invalid("grant_types", format!("a public client cannot use the {grant} grant")));
        }
        grants.push(grant);
    }
    grants.sort_unstable();
    grants.dedup();
    Ok(grants)
}

fn check_uris(field: &str, uris: &[String]) -> ApiResult<Vec<String>> {
    if uris.len() > MAX_URIS {
        return Err(invalid(field, format!("at most {MAX_URIS}")));
    }
    let mut kept: Vec<String> = Vec::with_capacity(uris.len());
    for uri in uris {
        check_uri(uri).map_err(|problem| invalid(field, format!("{uri:?} {problem}")))?;
        if !kept.contains(uri) {
            kept.push(uri.clone());
        }
    }
    Ok(kept)
}

/// Why `uri` cannot be a redirect URI, if it cannot (see the module comment).
fn check_uri(uri: &str) -> Result<(), &'static str> {
    if uri.len() > MAX_URI_LEN {
        return Err("is too long");
    }
    if uri.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("contains whitespace or control characters");
    }
    if uri.contains('#') {
        return Err("has a fragment");
    }
    let url = url::Url::parse(uri).map_err(|_| "is not an absolute URL")?;
    match url.scheme() {
        "https" if url.host().is_some() => Ok(()),
        "http" if crate::config::issuer::is_loopback(&url) => Ok(()),
        "http" => Err("uses http on a host other than loopback (127.0.0.0/8, [::1], localhost)"),
        // A private-use scheme of a native app: a reverse domain name (RFC 8252 §7.1).
        scheme if scheme.contains('.') => Ok(()),
        _ => Err("is neither https, loopback http, nor a private-use scheme like com.example.app"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris_are_https_loopback_http_or_private_use_schemes_without_fragments() {
        for good in [
            "https://app.example/callback?x=1",
            "http://127.0.0.1:8080/cb",
            "http://[::1]/cb",
            "http://localhost:3000/",
            "com.example.app:/oauth2redirect",
        ] {
            assert_eq!(check_uri(good), Ok(()), "{good}");
        }
        for bad in [
            "http://app.example/cb",
            "https://app.example/cb#x",
            "/relative",
            "javascript:alert(1)",
            "data:text/html,x",
            "https://app.example/c b",
            "https://app.example/\tcb",
            "",
        ] {
            assert!(check_uri(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn public_clients_get_neither_confidential_grant_and_the_type_never_changes() {
        let public = ClientFields { client_type: Some("public".into()), ..Default::default() };
        let settings = new_settings(&public).unwrap();
        assert_eq!(settings.grant_types, [GrantType::AuthorizationCode, GrantType::RefreshToken]);
        for grant in ["password", "client_credentials"] {
            let fields = ClientFields { grant_types: Some(vec![grant.into()]), ..public.clone() };
            assert!(new_settings(&fields).is_err(), "{grant}");
        }
        let confidential = new_settings(&ClientFields::default()).unwrap();
        assert_eq!(confidential.grant_types, [GrantType::ClientCredentials]);
        assert!(changed_settings(&confidential, &public).is_err());
        let unknown = ClientFields { grant_types: Some(vec!["implicit".into()]), ..Default::default() };
        assert!(new_settings(&unknown).is_err());
    }
}
