//! The response types route annotations name in `#[utoipa::path(responses(...))]`: the
//! contract's error object and one type per shared error response. Route files import them from
//! here, and `docs.rs` (which imports the route files to assemble the document) reads the list,
//! so the import graph has no cycle.

use std::collections::BTreeMap;

use utoipa::openapi::schema::{KnownFormat, Object, ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::openapi::{Ref, RefOr, Response};
use utoipa::{IntoResponses, PartialSchema, ToSchema};

use crate::error::ErrorCode;

/// The contract's error object: the body of every 4xx and 5xx response.
#[derive(ToSchema)]
#[schema(as = Error)]
#[allow(dead_code)]
pub struct ErrorObject {
    /// A code of the contract; the `enum` lists every code the service sends.
    #[schema(schema_with = error_code_schema)]
    error: String,
    /// A sentence for humans; never internal detail. Printable ASCII without double quotes and
    /// backslashes (RFC 6749 §5.2), so it can travel in a `WWW-Authenticate` challenge unchanged.
    #[schema(example = "Invalid JSON body: EOF while parsing a value.")]
    error_description: String,
    /// Only with `mfa_required` at login: the single-use token of the second step
    /// (`POST /auth/mfa/verify`), valid for 5 minutes.
    mfa_token: Option<String>,
    /// Only with `mfa_required` at login and password reset: the account's second factors,
    /// any of `totp`, `passkey`, `recovery_code`.
    #[schema(example = json!(["totp", "recovery_code"]))]
    mfa_methods: Option<Vec<String>>,
}

/// `Error.error`: a string, one of the codes the service emits. Generated from [`ErrorCode`], so
/// the document lists exactly the codes the code can send.
fn error_code_schema() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some("A code of the contract: what went wrong, for programs to branch on."))
        .enum_values(Some(ErrorCode::ALL.iter().map(|code| code.as_str())))
        .examples([ErrorCode::InvalidRequest.as_str()])
        .build()
}

/// Declares, per error status, a type usable in `responses(...)` of `#[utoipa::path]` that
/// refers to a shared response in `components/responses`, whose body is the [`ErrorObject`].
macro_rules! error_responses {
    ($($(#[$attr:meta])* $name:ident = $status:literal, $description:literal $(, $header:literal)?;)*) => {
        $(
            $(#[$attr])*
            pub struct $name;

            impl IntoResponses for $name {
                fn responses() -> BTreeMap<String, RefOr<Response>> {
                    BTreeMap::from([($status.to_string(), Ref::from_response_name(stringify!($name)).into())])
                }
            }
        )*

        /// `(name, description, header)` of every shared error response.
        pub(super) const ERROR_RESPONSES: &[(&str, &str, Option<&str>)] =
            &[$((stringify!($name), $description, error_responses!(@header $($header)?))),*];
    };
    (@header $header:literal) => { Some($header) };
    (@header) => { None };
}

error_responses! {
    /// 400 of the JSON endpoints.
    BadRequest = 400, "`invalid_request`: malformed body, missing field or wrong content type.";
    /// 400 of the JSON token requests (`POST /auth/login`, `POST /auth/refresh`).
    BadTokenRequest = 400, "`invalid_request`: malformed body, missing field or wrong content type; or \
        `invalid_target`: the `resource` is not one of `auth.resources`, or not the one the session is bound to; \
        or `invalid_scope`: the `scope` names a permission the user does not hold, or more than the session \
        was granted.";
    /// 400 of the OAuth endpoints (RFC 6749 §5.2).
    OAuthError = 400, "`invalid_request` (malformed request, missing parameter, wrong content type), \
        `invalid_grant` (wrong username or password, refresh token unknown, used, expired or revoked, \
        account disabled), `unsupported_grant_type`, `invalid_scope` (a permission the client or user does not hold, or more \
        than the session was granted) or `invalid_target` \
        (a `resource` that is not one of `auth.resources`, or not the one the session is bound to).";
    /// 401 of the bearer-protected endpoints, with the RFC 6750 challenge.
    Unauthorized = 401, "`invalid_token`: the access token is missing, malformed, expired or revoked, \
        is for another audience (a resource server's), or its session has ended.", "WWW-Authenticate";
    /// 401 of `POST /auth/login`.
    BadCredentials = 401, "`invalid_credentials`: the email or password is incorrect (the same answer for both).";
    /// 401 of `POST /auth/refresh`.
    InvalidGrant = 401, "`invalid_grant`: the refresh token is unknown, used, expired or revoked. Presenting \
        a used one past the grace interval ends its whole session.";
    /// 403 of the `/admin` routes.
    Forbidden = 403, "`insufficient_permissions`: the token's roles (or, for a service client, its scope) lack \
        the permission this route needs, or a client token on a route about the caller's own account; or \
        `mfa_required`: a role of the caller is in `auth.mfa_required_roles` and the token's login did not use \
        MFA (no `otp` in `amr`).";
    /// 403 of the logins (`POST /auth/login`, the password grant).
    LoginForbidden = 403, "`account_disabled`: the account is disabled; or `mfa_required`: the password is \
        correct and the account has MFA on: the body's `mfa_token` and a code complete the login at \
        `POST /auth/mfa/verify`.";
    /// 403 for a disabled account at login or refresh.
    AccountDisabled = 403, "`account_disabled`: the account is disabled.";
    NotFound = 404, "`not_found`.";
    Conflict = 409, "`conflict`.";
    PayloadTooLarge = 413, "`payload_too_large`: the body exceeds the configured limit.";
    /// 422: a well-formed body (or query) with an unacceptable value.
    Unprocessable = 422, "`invalid_request`: `error_description` names the field with the unacceptable value.";
    TooManyRequests = 429, "`too_many_requests`: too many failed logins; retry after `Retry-After` seconds.",
        "Retry-After";
    Unavailable = 503, "`unavailable`: the database does not answer; retry after `Retry-After` seconds.",
        "Retry-After";
}

/// Entity ids are UUIDs (hyphenated, lower case).
impl PartialSchema for crate::db::Id {
    fn schema() -> RefOr<Schema> {
        let format = SchemaFormat::KnownFormat(KnownFormat::Uuid);
        ObjectBuilder::new().schema_type(Type::String).format(Some(format)).into()
    }
}

impl ToSchema for crate::db::Id {}
