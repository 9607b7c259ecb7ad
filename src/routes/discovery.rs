//! What clients discover the service by: the authorization server metadata (RFC 8414) and the
//! same document as OpenID Connect Discovery 1.0 reads it, and the signing keys (RFC 7517).
//!
//! Both documents are built from the configured issuer (`auth.issuer`) alone, never from the
//! request's `Host` header: a metadata document that echoed the host a request named would send a
//! client, or a cache in between, to whatever host an attacker wrote there. With a path in the
//! issuer, the documents are also served where RFC 8414 §3 (`/.well-known/oauth-authorization-
//! server<path>`) and OpenID Connect Discovery §4 (`<path>/.well-known/openid-configuration`) look;
//! [`under_issuer_path`] mounts them there at ignite, once the issuer is known.
//!
//! The OpenID Connect fields describe browser sign-in (docs/browser-sign-in.md): the
//! authorization, userinfo and end-session endpoints, ID tokens signed RS256 (every provider's
//! algorithm, OpenID Connect Core §15.1) or EdDSA, PKCE with S256 only, and `iss` in authorization
//! responses (RFC 9207).

use rocket::fairing::AdHoc;
use rocket::http::Header;
use rocket::serde::json::{json, Json, Value};
use rocket::{get, Responder, State};

use crate::auth::oidc::key_set::IdTokenAlg;
use crate::auth::oidc::pkce::S256;
use crate::auth::session::scope::OPENID_VALUES;
use crate::auth::Auth;
use crate::config::AuthConfig;

/// The claims ID tokens and userinfo may carry (OpenID Connect Core §2, §5.1).
const CLAIMS_SUPPORTED: [&str; 13] = [
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "amr",
    "sid",
    "at_hash",
    "email",
    "email_verified",
    "client_id",
];

/// The OpenID scope values, then every permission (a down-scoped token names permissions).
/// What a `scope` may name: the OpenID Connect values, then every permission.
fn scopes_supported(auth: &Auth) -> Vec<String> {
    OPENID_VALUES.iter().map(|v| v.to_string()).chain(auth.scopes_supported()).collect()
}

/// Allows any origin (browser apps discover and verify from their own origin); the documents are
/// public and carry no credentials.
#[derive(Responder)]
pub struct AnyOrigin<R> {
    inner: R,
    allow_origin: Header<'static>,
}

impl<R> AnyOrigin<R> {
    fn new(inner: R) -> Self {
        AnyOrigin { inner, allow_origin: Header::new("Access-Control-Allow-Origin", "*") }
    }
}

/// The metadata changes only with the configuration (a restart), and discovery clients fetch it
/// often: shared caches may keep it five minutes, which also bounds how long a changed issuer
/// goes unseen. It carries nothing user-specific, so `public`.
#[derive(Responder)]
pub struct Cached<R> {
    inner: R,
    cache_control: Header<'static>,
}

type Document = AnyOrigin<Cached<Json<Value>>>;

/// The one document both discovery paths serve.
fn document(auth: &Auth) -> Document {
    let config = &auth.config;
    let issuer = config.issuer.as_str();
    let grants: &[&str] = if config.password_grant {
        &["authorization_code", "password", "refresh_token", "client_credentials"]
    } else {
        &["authorization_code", "refresh_token", "client_credentials"]
    };
    let body = json!({
        "issuer": issuer,
        "token_endpoint": format!("{issuer}/oauth/token"),
        "revocation_endpoint": format!("{issuer}/oauth/revoke"),
        "introspection_endpoint": format!("{issuer}/oauth/introspect"),
        "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
        "authorization_endpoint": format!("{issuer}/oauth/authorize"),
        "userinfo_endpoint": format!("{issuer}/oauth/userinfo"),
        "end_session_endpoint": format!("{issuer}/oauth/logout"),
        "grant_types_supported": grants,
        // The authorization-code flow only (RFC 9700 §2.1.2: no implicit grant).
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "code_challenge_methods_supported": [S256],
        "authorization_response_iss_parameter_supported": true,
        "id_token_signing_alg_values_supported": IdTokenAlg::ALL.map(IdTokenAlg::as_str),
        "claims_supported": CLAIMS_SUPPORTED,
        // `none` for public clients (the password and refresh grants), the others for clients
        // with a secret (RFC 6749 §2.3.1).
        "token_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        // `none` for users' tokens; a client authenticates to revoke its own access tokens.
        "revocation_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post"],
        "scopes_supported": scopes_supported(auth),
        // `sub` is the account's id, the same for every client (OpenID Connect Core §8).
        "subject_types_supported": ["public"],
        "service_documentation": format!("{issuer}/docs"),
    });
    AnyOrigin::new(Cached { inner: Json(body), cache_control: Header::new("Cache-Control", "public, max-age=300") })
}

/// The metadata document as the OpenAPI document shows it (both routes serve the same one).
fn document_example() -> Value {
    json!({"issuer": "https://auth.example.com",
        "token_endpoint": "https://auth.example.com/oauth/token",
        "jwks_uri": "https://auth.example.com/.well-known/jwks.json",
        "grant_types_supported": ["authorization_code", "password", "refresh_token", "client_credentials"],
        "authorization_endpoint": "https://auth.example.com/oauth/authorize",
        "userinfo_endpoint": "https://auth.example.com/oauth/userinfo",
        "response_types_supported": ["code"], "subject_types_supported": ["public"],
        "code_challenge_methods_supported": ["S256"],
        "id_token_signing_alg_values_supported": ["RS256", "EdDSA"],
        "token_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post"]})
}

/// Authorization server metadata (RFC 8414).
#[utoipa::path(tag = "oauth", responses((status = 200, description = "The metadata (any origin may read it).",
    body = serde_json::Value, example = document_example)))]
#[get("/.well-known/oauth-authorization-server")]
pub fn metadata(auth: &State<Auth>) -> Document {
    document(auth)
}

/// The same document for OpenID Connect Discovery 1.0 clients.
#[utoipa::path(tag = "oauth", responses((status = 200, description = "The metadata (any origin may read it).",
    body = serde_json::Value, example = document_example)))]
#[get("/.well-known/openid-configuration")]
pub fn openid_configuration(auth: &State<Auth>) -> Document {
    document(auth)
}

/// The metadata at `/.well-known/oauth-authorization-server<path>` (RFC 8414 §3).
#[get("/")]
fn metadata_for_path(auth: &State<Auth>) -> Document {
    document(auth)
}

/// The public signing keys (RFC 7517/8037): the access-token keys first (none when access tokens
/// are signed with HS256), then the ID-token keys, which are always published.
#[utoipa::path(tag = "oauth", responses((status = 200, description = "The JWK set (any origin may read it).",
    body = serde_json::Value, example = json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "2026-01",
        "x": "...", "use": "sig", "alg": "EdDSA"}, {"kty": "RSA", "kid": "id-rs256-...", "n": "...", "e": "AQAB",
        "use": "sig", "alg": "RS256"}]}))))]
#[get("/.well-known/jwks.json")]
pub fn jwks(auth: &State<Auth>) -> AnyOrigin<Json<Value>> {
    let now = auth.clock.now();
    let mut jwks = auth.keys.jwks(now);
    if let Some(keys) = jwks["keys"].as_array_mut() {
        keys.extend(auth.id_token_keys.current().jwks(now));
    }
    AnyOrigin::new(Json(jwks))
}

pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![metadata, openid_configuration, jwks]
}

/// Mounts the documents under the issuer's path, when it has one. It reads the configuration
/// itself (the auth state may not be managed yet); an invalid one is left to the auth stage,
/// which refuses to start naming the key.
pub fn under_issuer_path() -> AdHoc {
    AdHoc::on_ignite("Discovery under the issuer's path", |rocket| async move {
        let path = match AuthConfig::from_figment(rocket.figment()) {
            Ok(config) => config.issuer_path(),
            Err(_) => return rocket,
        };
        if path.is_empty() {
            return rocket;
        }
        rocket
            .mount(format!("/.well-known/oauth-authorization-server{path}"), rocket::routes![metadata_for_path])
            .mount(path, rocket::routes![openid_configuration])
    })
}
