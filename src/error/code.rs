//! The `error` codes of the contract's error object, as one enum: the responder writes them, the
//! OpenAPI document lists them (`Error.error`'s `enum`), and callers branch on them. A code is
//! added here or nowhere, so the code and the document cannot drift apart.
//!
//! The meanings follow `/work/shared/api-contract.md`, "Errors: one shape everywhere", and
//! RFC 6749 §5.2 / RFC 6750 §3.1 / RFC 8707 §2 for the OAuth codes.

use std::borrow::Cow;
use std::fmt;

use serde::{Serialize, Serializer};

/// Declares [`ErrorCode`], its wire text and [`ErrorCode::ALL`] from one list.
macro_rules! error_codes {
    ($($(#[doc = $doc:literal])* $variant:ident = $text:literal,)*) => {
        /// An `error` code of the contract.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $($(#[doc = $doc])* $variant,)*
        }

        impl ErrorCode {
            /// Every code, in the contract's order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant),*];

            /// The code as it is written in the JSON body.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $text,)*
                }
            }
        }
    };
}

error_codes! {
    /// 400 (or 422 naming the field): malformed body, missing field, wrong content type.
    InvalidRequest = "invalid_request",
    /// 400 at the token endpoint, 401 at `/auth/refresh`: the grant (password, refresh token,
    /// `mfa_token`) is unknown, used, expired or revoked.
    InvalidGrant = "invalid_grant",
    /// 400: a `grant_type` the token endpoint does not support.
    UnsupportedGrantType = "unsupported_grant_type",
    /// 400: a scope the client does not hold.
    InvalidScope = "invalid_scope",
    /// 400: a resource indicator that is not acceptable (RFC 8707 §2).
    InvalidTarget = "invalid_target",
    /// 400: the client may not use this grant.
    UnauthorizedClient = "unauthorized_client",
    /// 401: the access token is missing, malformed, expired or revoked.
    InvalidToken = "invalid_token",
    /// 401: wrong email or password (the same answer for both), or a wrong MFA code.
    InvalidCredentials = "invalid_credentials",
    /// 401: client authentication failed.
    InvalidClient = "invalid_client",
    /// 403: authenticated, without the role or permission needed.
    InsufficientPermissions = "insufficient_permissions",
    /// 403: the account is disabled.
    AccountDisabled = "account_disabled",
    /// 403: a second factor is needed (at login, with the `mfa_token` of the second step).
    MfaRequired = "mfa_required",
    /// 403: the account's email address is not verified yet.
    EmailUnverified = "email_unverified",
    /// 404.
    NotFound = "not_found",
    /// 409: e.g. the email is already registered, the role is still assigned.
    Conflict = "conflict",
    /// 413: the body exceeds the configured limit.
    PayloadTooLarge = "payload_too_large",
    /// 429, with `Retry-After`.
    TooManyRequests = "too_many_requests",
    /// 500: never any internal detail.
    ServerError = "server_error",
    /// 503, with `Retry-After`: the database does not answer.
    Unavailable = "unavailable",
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl PartialEq<&str> for ErrorCode {
    /// For tests that compare a code with the text of a response body.
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// Whether RFC 6749 §5.2 allows `c` in an `error_description`: %x20-21 / %x23-5B / %x5D-7E,
/// printable ASCII without `"` and `\`.
pub fn allowed_in_description(c: char) -> bool {
    matches!(c, ' ' | '!' | '#'..='[' | ']'..='~')
}

/// `text` within the characters RFC 6749 §5.2 allows, so it can travel unchanged in a
/// `WWW-Authenticate` challenge (RFC 6750 §3): a `"` becomes `'`, anything else outside the set
/// is dropped. Text already within the set is returned as it is.
pub fn description_charset(text: Cow<'static, str>) -> Cow<'static, str> {
    if text.chars().all(allowed_in_description) {
        return text;
    }
    let kept = text.chars().map(|c| if c == '"' { '\'' } else { c }).filter(|c| allowed_in_description(*c));
    Cow::Owned(kept.collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_written_in_snake_case_once() {
        let texts: std::collections::BTreeSet<_> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(texts.len(), ErrorCode::ALL.len());
        assert!(texts.iter().all(|t| t.chars().all(|c| c.is_ascii_lowercase() || c == '_')));
        assert_eq!(serde_json::to_value(ErrorCode::MfaRequired).unwrap(), "mfa_required");
    }

    #[test]
    fn descriptions_keep_to_the_characters_of_rfc_6749() {
        let quoted = description_charset(r#"The parameter "grant_type" is required."#.into());
        assert_eq!(quoted, "The parameter 'grant_type' is required.");
        assert_eq!(description_charset("a\\b\nc\u{e9}\u{0}d".into()), "abcd");
        let kept: String = (' '..='~').filter(|c| *c != '"' && *c != '\\').collect();
        assert_eq!(description_charset(kept.clone().into()), kept);
    }
}
