//! Service clients at the OAuth endpoints: client authentication (RFC 6749 §2.3.1, Basic or
//! form fields), throttled per client address, and the client-credentials grant (§4.4).
//!
//! A `client_id` is no secret, so failed client authentication is counted per (address, client)
//! and per address only, in counters no user login can touch ([`ThrottleKeys::client`]): a
//! stranger guessing secrets locks out only their own address, never the client itself.
//!
//! Secrets have 256 bits of entropy, so the stored SHA-256 digest is enough (no slow hash), and
//! the comparison of digests runs in constant time.

use subtle::ConstantTimeEq;

use crate::auth::guards::RequestOrigin;
use crate::auth::keys::tokens::AccessClaims;
use crate::auth::secrets::hash_token;
use crate::auth::throttle::{self, ThrottleKeys};
use crate::auth::Auth;
use crate::db::{DbConn, Id};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::models::{Client, ClientStore, ClientType};

/// Client credentials as presented: a `client_id` with a secret (a confidential client's
/// authentication), or without one (a public client's identification, RFC 6749 §3.2.1).
/// `Debug` leaves the secret out.
pub struct PresentedClient {
    pub client_id: String,
    pub secret: Option<String>,
    /// Whether they came in an `Authorization: Basic` header (the failure then carries the
    /// `WWW-Authenticate: Basic` challenge).
    pub basic: bool,
}

impl std::fmt::Debug for PresentedClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PresentedClient").field("client_id", &self.client_id).field("basic", &self.basic).finish()
    }
}

/// Percent-decodes a part of Basic credentials (RFC 6749 §2.3.1 form-encodes them first).
fn form_decode(part: &str) -> String {
    form_urlencoded::parse(format!("x={part}").as_bytes()).next().map(|(_, v)| v.into_owned()).unwrap_or_default()
}

/// The encoded credentials of an `Authorization: Basic …` header, if that is what it is.
pub fn basic_credentials(authorization: Option<&str>) -> Option<&str> {
    let (scheme, value) = authorization?.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("basic").then(|| value.trim())
}

impl PresentedClient {
    /// From an `Authorization: Basic` header value and/or the form's `client_id` and
    /// `client_secret`. `Ok(None)` when neither is there; using both is `invalid_request`; a
    /// secret without a `client_id` is `invalid_client`. An empty Basic password is no secret
    /// (what some libraries send for public clients).
    pub fn from_request(
        authorization: Option<&str>,
        form_id: Option<&str>,
        form_secret: Option<&str>,
    ) -> ApiResult<Option<PresentedClient>> {
        match (basic_credentials(authorization), form_id, form_secret) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
                Err(ApiError::bad_request("Use one client authentication method, not both."))
            }
            (Some(encoded), None, None) => {
                use base64::Engine;
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(encoded)
                    .ok()
                    .and_then(|d| String::from_utf8(d).ok())
                    .ok_or_else(|| ApiError::invalid_client(true))?;
                let (id, secret) = decoded.split_once(':').ok_or_else(|| ApiError::invalid_client(true))?;
                let secret = Some(form_decode(secret)).filter(|s| !s.is_empty());
                Ok(Some(PresentedClient { client_id: form_decode(id), secret, basic: true }))
            }
            (None, Some(id), secret) => {
                Ok(Some(PresentedClient { client_id: id.to_owned(), secret: secret.map(str::to_owned), basic: false }))
            }
            (None, None, Some(_)) => Err(ApiError::invalid_client(false)),
            (None, None, None) => Ok(None),
        }
    }
}

/// The stored client a presented `client_id` names, with its secret digest.
pub(crate) async fn find_presented(
    conn: &mut DbConn,
    presented: &PresentedClient,
) -> ApiResult<Option<(Client, String)>> {
    match presented.client_id.parse::<Id>() {
        Ok(id) => Ok(crate::db::with_conn!(conn, |c| c.find_client(id).await)?),
        Err(_) => Ok(None),
    }
}

/// A client-credentials access token: no refresh token. `Debug` leaves the token out; the route
/// turns it into the JSON body (`routes::views::ClientTokenResponse`).
#[derive(Clone)]
pub struct IssuedClientToken {
    pub access_token: String,
    /// Seconds until the token expires.
    pub expires_in: i64,
    /// The granted permissions, space-separated.
    pub scope: String,
}

impl std::fmt::Debug for IssuedClientToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedClientToken").field("scope", &self.scope).finish_non_exhaustive()
    }
}

impl Auth {
    /// Authenticates a confidential client: 401 `invalid_client` for an unknown id, a missing
    /// or wrong secret, a public or a disabled client, and 429 once the failures from this address (for this client, or in all)
    /// pass the throttle's thresholds. The client's permissions come back bounded by what its
    /// creator holds now (`Auth::creator_bound`), so a demoted creator's clients are demoted too.
    pub async fn authenticate_client(
        &self,
        conn: &mut DbConn,
        presented: &PresentedClient,
        from: &RequestOrigin,
    ) -> ApiResult<Client> {
        if presented.secret.is_none() {
            return Err(ApiError::invalid_client(presented.basic));
        }
        let found = find_presented(conn, presented).await?;
        let mut client = self.check_secret(conn, presented, found, from).await?;
        if let Some(bound) = self.creator_bound(conn, client.client_id).await? {
            client.permissions.retain(|p| bound.contains(p));
        }
        Ok(client)
    }

    /// The secret check of `presented` against `found` (its stored client and secret digest, if
    /// any), throttled like a login: the attempt is counted before the secret is checked (atomic
    /// under concurrency), per client and address and per address; never per client alone.
    pub(crate) async fn check_secret(
        &self,
        conn: &mut DbConn,
        presented: &PresentedClient,
        found: Option<(Client, String)>,
        from: &RequestOrigin,
    ) -> ApiResult<Client> {
        let keys = ThrottleKeys::client(&presented.client_id, from.ip.as_deref());
        let reservation = throttle::reserve(conn, &keys, &self.config, self.clock.now_ms()).await?;
        let presented_hash = hash_token(presented.secret.as_deref().unwrap_or_default());
        // Compare against a digest even for an unknown client, so the time taken says nothing.
        let stored = found.as_ref().map_or("0".repeat(64), |(_, hash)| hash.clone());
        let matches: bool = presented_hash.as_bytes().ct_eq(stored.as_bytes()).into();
        match found {
            // A public client has no secret (its stored digest is empty and matches nothing).
            Some((client, _))
                if matches && !client.disabled && client.settings.client_type == ClientType::Confidential =>
            {
                crate::db::write_tx!(conn, |c| throttle::release(c, &reservation).await)?;
                Ok(client)
            }
            _ => {
                throttle::failed(conn, &reservation, self.clock.now_ms()).await?;
                Err(ApiError::invalid_client(presented.basic))
            }
        }
    }

    /// The client-credentials grant: a token for `scope` (space-separated permissions, all of
    /// the client's when absent); a permission the client lacks is 400 `invalid_scope`. With
    /// `resource` (already checked, [`Auth::check_resource`]) the token's `aud` is that resource.
    pub fn client_token(
        &self,
        client: &Client,
        scope: Option<&str>,
        resource: Option<&str>,
    ) -> ApiResult<IssuedClientToken> {
        let granted: Vec<&str> = match scope {
            Some(scope) => {
                let mut requested: Vec<&str> = scope.split_ascii_whitespace().collect();
                if let Some(missing) = requested.iter().find(|p| !client.permissions.contains(**p)) {
                    let description = format!("The client does not hold '{missing}'.");
                    return Err(ApiError::new(rocket::http::Status::BadRequest, ErrorCode::InvalidScope, description));
                }
                requested.sort_unstable();
                requested.dedup();
                requested
            }
            None => client.permissions.iter().map(String::as_str).collect(),
        };
        let now = self.clock.now();
        let exp = now + self.keys.ttl();
        let scope = granted.join(" ");
        // Past the client's cutoff: a token issued in the second of a rotation is not refused.
        let iat = self.client_cutoffs.issued_at(client.client_id, now);
        let claims = AccessClaims {
            iss: self.config.issuer.clone(),
            aud: self.audience(resource),
            sub: client.client_id,
            jti: Id::new(),
            iat,
            exp,
            nbf: None,
            sid: None,
            roles: None,
            client_id: Some(client.client_id.to_string()),
            scope: Some(scope.clone()),
            amr: vec![],
        };
        let access_token = self.keys.sign(&claims).map_err(ApiError::internal)?;
        Ok(IssuedClientToken { access_token, expires_in: exp - now, scope })
    }
}
