//! The API's self-description: `GET /openapi.json`, generated from the `#[utoipa::path]`
//! annotations on the handlers (so it cannot drift from them; `tests/api/docs.rs` checks that
//! every mounted route is documented and every documented one mounted), and `GET /docs`,
//! Swagger UI served entirely by the binary.
//!
//! Swagger UI comes from the `utoipa-swagger-ui` crate with its `vendored` feature: its build
//! script unpacks the zip shipped inside the `utoipa-swagger-ui-vendored` crate and embeds the
//! files with `include_bytes!`, so nothing is downloaded at build time, and the page (whose
//! Content-Security-Policy allows only this origin) loads nothing from anywhere else.

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use rocket::http::{ContentType, Header};
use rocket::Responder;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{Object, Type};
use utoipa::openapi::security::{
    ClientCredentials, Flow, HttpAuthScheme, HttpBuilder, OAuth2, Password, Scopes, SecurityScheme,
};
use utoipa::openapi::{ContentBuilder, HeaderBuilder, Ref};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::Config;

use super::responses::{ErrorObject, ERROR_RESPONSES};
use super::{
    admin, auth, consents, discovery, feed, health, mail, metrics, mfa, oauth, oauth_tokens, passkeys, userinfo, users,
};
use crate::error::ApiError;

/// The OpenAPI document. Every handler of `routes::all()` is listed in `paths`, except the
/// documentation routes of this file (the hosted HTML pages of `crate::pages` are not API).
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Portcullis",
        description = "Authentication and authorization service: accounts, JWT access tokens, \
            refresh-token rotation, RBAC and OAuth 2.0 interoperability.\n\n\
            Every 4xx/5xx response has the body `{\"error\": \"<code>\", \"error_description\": \"...\"}`. \
            To try the protected routes, click **Authorize** and log in with the OAuth2 password flow \
            (username = email; leave client_id and client_secret empty), or as a service client with the \
            client-credentials flow (its client_id and client_secret)."
    ),
    paths(
        health::live, health::ready,
        auth::register, auth::login, auth::refresh, auth::logout, auth::logout_all, auth::sessions,
        auth::end_session,
        mfa::enrol, mfa::confirm, mfa::disable, mfa::recovery_codes, mfa::verify, mfa::reset,
        passkeys::register, passkeys::register_finish, passkeys::list, passkeys::remove, passkeys::login,
        passkeys::login_finish, passkeys::second_step,
        users::me, users::token_info, users::change_password,
        consents::list, consents::revoke,
        mail::forgot_password, mail::reset_password, mail::send_verification, mail::verify_email, mail::change_email,
        mail::confirm_email_change,
        admin::users::list, admin::users::get, admin::users::set_roles, admin::users::patch,
        admin::users::delete, admin::users::sessions, admin::users::revoke_sessions,
        admin::roles::list, admin::roles::create, admin::roles::update, admin::roles::delete,
        admin::audit::list,
        admin::clients::list, admin::clients::create, admin::clients::update, admin::clients::rotate_secret,
        admin::clients::delete,
        oauth::token, oauth_tokens::revoke, oauth_tokens::introspect,
        userinfo::userinfo, userinfo::userinfo_post,
        discovery::metadata, discovery::openid_configuration, discovery::jwks,
        metrics::exposition,
        feed::changes,
    ),
    components(schemas(ErrorObject)),
    modifiers(&Components),
    tags(
        (name = "auth", description = "Registration, login, refresh-token rotation, logout and sessions."),
        (name = "mfa", description = "Multi-factor authentication with TOTP (RFC 6238) and recovery codes, \
            and the second step of a login."),
        (name = "passkeys", description = "Passkeys (WebAuthn Level 2): adding and removing them, and \
            signing in with one, without a password."),
        (name = "users", description = "The caller's own account."),
        (name = "mail", description = "Password reset, email verification and email change by mail."),
        (name = "admin", description = "Administration; every route needs the permission it names."),
        (name = "oauth", description = "OAuth 2.0 token and revocation endpoints (RFC 6749, RFC 7009), \
            metadata (RFC 8414) and signing keys (RFC 7517)."),
        (name = "feed", description = "The change feed for resource servers that verify tokens themselves \
            (ended sessions, deleted clients, role changes, the role table)."),
        (name = "health", description = "Liveness and readiness."),
        (name = "operations", description = "Prometheus metrics."),
    )
)]
pub struct ApiDoc;

/// The name of the HTTP bearer security scheme.
pub const BEARER: &str = "bearer";
/// The name of the OAuth2 (password flow) security scheme: the same bearer token, obtained at
/// `/oauth/token`; listed so that Swagger UI's "Authorize" sends it.
pub const OAUTH2: &str = "oauth2";

/// The name of the OAuth2 client-credentials security scheme: a service client's token from
/// `/oauth/token` (`grant_type=client_credentials`), accepted by `/admin` routes within its scope.
pub const CLIENT_CREDENTIALS: &str = "client_credentials";

/// The name of the HTTP Basic scheme of client authentication (`client_secret_basic`) at
/// `POST /oauth/introspect`.
pub const CLIENT_BASIC: &str = "client_basic";

/// Adds the security schemes and the shared error responses to the document.
struct Components;

impl Modify for Components {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let bearer = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .bearer_format("JWT")
            .description(Some("An access token (`at+jwt`) from `/auth/login`, `/auth/refresh` or `/oauth/token`."))
            .build();
        components.add_security_scheme(BEARER, SecurityScheme::Http(bearer));
        let password = Password::with_refresh_url("/oauth/token", Scopes::new(), "/oauth/token");
        let oauth2 = OAuth2::with_description(
            [Flow::Password(password)],
            "The OAuth 2.0 password grant at `/oauth/token` (username = email); the token endpoint ignores \
             `client_id`.",
        );
        components.add_security_scheme(OAUTH2, SecurityScheme::OAuth2(oauth2));
        let scopes = Scopes::from_iter(
            crate::auth::permissions::CATALOGUE.iter().map(|p| (p.to_string(), format!("The {p} permission."))),
        );
        let client = OAuth2::with_description(
            [Flow::ClientCredentials(ClientCredentials::new("/oauth/token", scopes))],
            "A service client's token: the client-credentials grant at `/oauth/token` with the client's id and \
             secret; `scope` narrows it to some of the client's permissions. Accepted by `/admin` routes whose \
             permission is in its scope.",
        );
        components.add_security_scheme(CLIENT_CREDENTIALS, SecurityScheme::OAuth2(client));
        let basic = HttpBuilder::new()
            .scheme(HttpAuthScheme::Basic)
            .description(Some("A service client's `client_id` and `client_secret` (`client_secret_basic`)."))
            .build();
        components.add_security_scheme(CLIENT_BASIC, SecurityScheme::Http(basic));
        for (name, description, header) in ERROR_RESPONSES {
            let content = ContentBuilder::new().schema(Some(Ref::from_schema_name("Error"))).build();
            let mut response = ResponseBuilder::new().description(*description).content("application/json", content);
            if let Some(header) = header {
                let schema = Object::with_type(Type::String);
                response = response.header(*header, HeaderBuilder::new().schema(Some(schema)).build());
            }
            components.responses.insert(name.to_string(), response.build().into());
        }
    }
}

/// The document as served, built once per setting of `auth.password_grant`.
pub fn openapi_json(password_grant: bool) -> &'static str {
    static WITH: OnceLock<String> = OnceLock::new();
    static WITHOUT: OnceLock<String> = OnceLock::new();
    let build = move || {
        let mut document = serde_json::to_value(ApiDoc::openapi()).expect("the OpenAPI document serializes");
        if !password_grant {
            without_password_flow(&mut document);
        }
        document.to_string()
    };
    if password_grant {
        WITH.get_or_init(build)
    } else {
        WITHOUT.get_or_init(build)
    }
}

/// Drops the OAuth2 password-flow scheme, which cannot work with the password grant off, and
/// every requirement naming it; the bearer scheme stays.
fn without_password_flow(document: &mut serde_json::Value) {
    if let Some(schemes) = document.pointer_mut("/components/securitySchemes").and_then(|s| s.as_object_mut()) {
        schemes.remove(OAUTH2);
    }
    let Some(paths) = document.get_mut("paths").and_then(|p| p.as_object_mut()) else { return };
    for operation in paths.values_mut().filter_map(|p| p.as_object_mut()).flat_map(|p| p.values_mut()) {
        if let Some(security) = operation.get_mut("security").and_then(|s| s.as_array_mut()) {
            security.retain(|requirement| requirement.get(OAUTH2).is_none());
        }
    }
    if let Some(description) = document.pointer_mut("/info/description") {
        let text = description.as_str().unwrap_or_default();
        let text = text.split(" To try the protected routes").next().unwrap_or(text).to_owned();
        *description =
            format!("{text} To try the protected routes, click **Authorize** and paste an access token.").into();
    }
}

#[rocket::get("/openapi.json")]
fn document(auth: &rocket::State<crate::auth::Auth>) -> (ContentType, &'static str) {
    (ContentType::JSON, openapi_json(auth.config.password_grant))
}

/// The page: Swagger UI's own `index.html` with absolute asset paths, so that it works at both
/// `/docs` and `/docs/`.
const PAGE: &str = r#"<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="UTF-8">
    <title>Portcullis API</title>
    <link rel="stylesheet" type="text/css" href="/docs/swagger-ui.css">
    <link rel="stylesheet" type="text/css" href="/docs/index.css">
    <link rel="icon" type="image/png" href="/docs/favicon-32x32.png" sizes="32x32">
    <link rel="icon" type="image/png" href="/docs/favicon-16x16.png" sizes="16x16">
  </head>
  <body>
    <div id="swagger-ui"></div>
    <script src="/docs/swagger-ui-bundle.js" charset="UTF-8"></script>
    <script src="/docs/swagger-ui-standalone-preset.js" charset="UTF-8"></script>
    <script src="/docs/swagger-initializer.js" charset="UTF-8"></script>
  </body>
</html>
"#;

/// Only this origin: scripts and styles of the page, and requests to the API. Swagger UI sets
/// inline styles and shows inline SVG images.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
    img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'self'";

/// A file of the page, with the page's security policy.
#[derive(Responder)]
struct File {
    body: (ContentType, Cow<'static, [u8]>),
    cache: Header<'static>,
    csp: Header<'static>,
}

impl File {
    fn new(content_type: ContentType, body: Cow<'static, [u8]>, max_age: u32) -> File {
        let cache = Header::new("Cache-Control", format!("max-age={max_age}"));
        File { body: (content_type, body), cache, csp: Header::new("Content-Security-Policy", CSP) }
    }
}

fn page() -> File {
    File::new(ContentType::HTML, Cow::Borrowed(PAGE.as_bytes()), 0)
}

#[rocket::get("/docs")]
fn docs() -> File {
    page()
}

/// Swagger UI's configuration (`swagger-initializer.js`): this document, no topbar (which would
/// let the page load a document from elsewhere), no online validator.
fn swagger_config() -> Arc<Config<'static>> {
    static CONFIG: OnceLock<Arc<Config<'static>>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            Arc::new(
                Config::new(["/openapi.json"])
                    .use_base_layout()
                    .validator_url("none")
                    .query_config_enabled(false)
                    .persist_authorization(false)
                    .display_request_duration(true),
            )
        })
        .clone()
}

/// The embedded Swagger UI files (Swagger UI's own `index.html` among them); `/docs/` is the page.
#[rocket::get("/docs/<path..>")]
fn file(path: PathBuf) -> Result<File, ApiError> {
    let not_found = || ApiError::not_found("No such documentation file.");
    let name = path.to_str().ok_or_else(not_found)?;
    if name.is_empty() {
        return Ok(page());
    }
    let file = utoipa_swagger_ui::serve(name, swagger_config()).map_err(ApiError::internal)?.ok_or_else(not_found)?;
    let content_type = ContentType::parse_flexible(&file.content_type).unwrap_or(ContentType::Binary);
    // The configuration follows the binary; the rest is Swagger UI's release, fixed per build.
    let max_age = if name == "swagger-initializer.js" { 0 } else { 3600 };
    Ok(File::new(content_type, file.bytes, max_age))
}

/// `GET /openapi.json`, `GET /docs` and the files of the page under `/docs/`.
pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![document, docs, file]
}
