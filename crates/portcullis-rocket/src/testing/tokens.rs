//! The kit's access tokens, in Portcullis's shape (RFC 9068): header `alg` EdDSA, `typ` at+jwt,
//! `kid`; a user's claims `iss aud sub sid jti iat exp roles amr client_id` (the client of the
//! session: `portcullis` unless set) and `scope` when down-scoped, a client's
//! `iss aud sub client_id jti iat exp scope` with `sub` = `client_id`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rocket::http::Header;

use super::{Issuer, AUDIENCE, ISSUER};
use crate::core::{AccessClaims, ACCESS_TOKEN_TYP};
use crate::trust::now;

/// The `client_id` of sessions started at Portcullis itself (`/auth/login`, its hosted pages).
pub const FIRST_PARTY_CLIENT: &str = "portcullis";

/// Portcullis's default access-token lifetime (`auth.access_ttl`), in seconds.
const DEFAULT_LIFETIME: i64 = 900;

/// A user's token to be minted: `issuer.user("alice").roles(["editor"]).token()`.
#[must_use = "a token is minted by `.token()`"]
#[derive(Debug)]
pub struct UserToken<'a> {
    issuer: &'a Issuer,
    user_id: String,
    roles: Vec<String>,
    scope: Option<Vec<String>>,
    amr: Vec<String>,
    client_id: String,
    lifetime: i64,
}

/// A service client's token to be minted: `issuer.client("cron").scope(["reports:read"]).token()`.
#[must_use = "a token is minted by `.token()`"]
#[derive(Debug)]
pub struct ClientToken<'a> {
    issuer: &'a Issuer,
    client_id: String,
    scope: Vec<String>,
    lifetime: i64,
}

impl<'a> UserToken<'a> {
    pub(super) fn new(issuer: &'a Issuer, user_id: &str) -> Self {
        UserToken {
            issuer,
            user_id: user_id.to_owned(),
            roles: vec![],
            scope: None,
            amr: vec!["pwd".into()],
            client_id: FIRST_PARTY_CLIENT.into(),
            lifetime: DEFAULT_LIFETIME,
        }
    }

    /// The client the token's session belongs to (`client_id`, RFC 9068 §2.2): a registered
    /// client's id; `portcullis` by default, as for a sign-in at Portcullis itself.
    pub fn client_id(mut self, client_id: &str) -> Self {
        self.client_id = client_id.to_owned();
        self
    }

    /// The roles the token names (`roles`); the user holds them from now on, until
    /// [`Issuer::remove_role`]. None by default.
    pub fn roles<S: Into<String>>(mut self, roles: impl IntoIterator<Item = S>) -> Self {
        self.roles.extend(roles.into_iter().map(Into::into));
        self
    }

    /// Permissions for the user without naming a role: they go to a role of the user's own,
    /// named `<user_id>:permissions`, which the token names (so
    /// `issuer.remove_permission("alice:permissions", "reports:read")` removes one).
    pub fn permissions<S: Into<String>>(mut self, permissions: impl IntoIterator<Item = S>) -> Self {
        let role = format!("{}:permissions", self.user_id);
        let mut books = self.issuer.books();
        books.roles.entry(role.clone()).or_default().extend(permissions.into_iter().map(Into::into));
        self.issuer.publish(books);
        if !self.roles.contains(&role) {
            self.roles.push(role);
        }
        self
    }

    /// Down-scopes the token (`scope`): the user may then use only the permissions of its roles
    /// that `scope` names, as in a session started with a `scope` at Portcullis.
    pub fn scope<S: Into<String>>(mut self, scope: impl IntoIterator<Item = S>) -> Self {
        self.scope.get_or_insert_with(Vec::new).extend(scope.into_iter().map(Into::into));
        self
    }

    /// How the user authenticated (`amr`, RFC 8176): `["pwd"]` by default, as after a password
    /// sign-in; `["pwd", "otp", "mfa"]` after a second factor.
    pub fn amr<S: Into<String>>(mut self, amr: impl IntoIterator<Item = S>) -> Self {
        self.amr = amr.into_iter().map(Into::into).collect();
        self
    }

    /// Seconds from now to `exp` (900 by default); zero or less mints an expired token.
    pub fn expires_in(mut self, seconds: i64) -> Self {
        self.lifetime = seconds;
        self
    }

    /// Signs the token, in a new session (`sid`) of its own.
    pub fn token(self) -> String {
        self.issuer.grant(&self.user_id, &self.roles);
        let claims = AccessClaims {
            sid: Some(uuid()),
            roles: Some(self.roles),
            scope: self.scope.map(|scope| scope.join(" ")),
            amr: self.amr,
            client_id: Some(self.client_id),
            ..claims(self.user_id, self.lifetime)
        };
        sign(self.issuer, &claims)
    }
}

impl<'a> ClientToken<'a> {
    pub(super) fn new(issuer: &'a Issuer, client_id: &str) -> Self {
        ClientToken { issuer, client_id: client_id.to_owned(), scope: vec![], lifetime: DEFAULT_LIFETIME }
    }

    /// The permissions the token grants (`scope`, space-separated in the token). None by default.
    pub fn scope<S: Into<String>>(mut self, permissions: impl IntoIterator<Item = S>) -> Self {
        self.scope.extend(permissions.into_iter().map(Into::into));
        self
    }

    /// Seconds from now to `exp` (900 by default); zero or less mints an expired token.
    pub fn expires_in(mut self, seconds: i64) -> Self {
        self.lifetime = seconds;
        self
    }

    /// Signs the token.
    pub fn token(self) -> String {
        let claims = AccessClaims {
            client_id: Some(self.client_id.clone()),
            scope: Some(self.scope.join(" ")),
            ..claims(self.client_id, self.lifetime)
        };
        sign(self.issuer, &claims)
    }
}

/// The `Authorization: Bearer <token>` header, for a local client's request.
pub fn bearer(token: &str) -> Header<'static> {
    Header::new("Authorization", format!("Bearer {token}"))
}

/// The claims both kinds share; `jti` a fresh UUID.
fn claims(sub: String, lifetime: i64) -> AccessClaims {
    let iat = now();
    AccessClaims {
        iss: ISSUER.into(),
        aud: AUDIENCE.into(),
        sub,
        jti: uuid(),
        iat,
        exp: iat + lifetime,
        nbf: None,
        sid: None,
        roles: None,
        client_id: None,
        scope: None,
        amr: vec![],
    }
}

fn sign(issuer: &Issuer, claims: &AccessClaims) -> String {
    let header = serde_json::json!({"alg": "EdDSA", "typ": ACCESS_TOKEN_TYP, "kid": issuer.0.kid});
    let claims = serde_json::to_vec(claims).expect("claims serialize");
    let message = format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims));
    let signature = ed25519_dalek::Signer::sign(&issuer.0.key, message.as_bytes());
    format!("{message}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
}

/// `N` bytes from the operating system's generator.
pub(super) fn random<const N: usize>() -> [u8; N] {
    let mut bytes = [0; N];
    getrandom::getrandom(&mut bytes).expect("the operating system's random generator");
    bytes
}

pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A random (version 4) UUID, as Portcullis's session and token ids are.
fn uuid() -> String {
    let mut b = random::<16>();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex(&b);
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn part(token: &str, n: usize) -> Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token.split('.').nth(n).unwrap()).unwrap()).unwrap()
    }

    fn names(object: &Value) -> Vec<&str> {
        let mut names: Vec<&str> = object.as_object().unwrap().keys().map(String::as_str).collect();
        names.sort();
        names
    }

    #[test]
    fn a_users_token_and_a_clients_carry_the_header_and_claims_portcullis_issues() {
        let issuer = Issuer::new();
        let user = issuer.user("alice").roles(["editor"]).token();
        assert_eq!(part(&user, 0), json!({"alg": "EdDSA", "typ": "at+jwt", "kid": issuer.0.kid}));
        let claims = part(&user, 1);
        assert_eq!(names(&claims), ["amr", "aud", "client_id", "exp", "iat", "iss", "jti", "roles", "sid", "sub"]);
        assert_eq!(
            (&claims["sub"], &claims["roles"], &claims["amr"], &claims["client_id"]),
            (&json!("alice"), &json!(["editor"]), &json!(["pwd"]), &json!("portcullis"))
        );
        let app = part(&issuer.user("alice").client_id("0192f0c4-5b1e-7cc2-9a52-3b0d0f4f8c11").token(), 1);
        assert_eq!(app["client_id"], "0192f0c4-5b1e-7cc2-9a52-3b0d0f4f8c11");
        assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), DEFAULT_LIFETIME);

        let client = part(&issuer.client("cron").scope(["a:read", "b:write"]).token(), 1);
        assert_eq!(names(&client), ["aud", "client_id", "exp", "iat", "iss", "jti", "scope", "sub"]);
        assert_eq!(
            (&client["sub"], &client["client_id"], &client["scope"]),
            (&json!("cron"), &json!("cron"), &json!("a:read b:write"))
        );
    }

    #[test]
    fn each_token_has_its_own_session_and_token_id() {
        let issuer = Issuer::new();
        let (a, b) = (part(&issuer.user("u").token(), 1), part(&issuer.user("u").token(), 1));
        assert_ne!(a["sid"], b["sid"]);
        assert_ne!(a["jti"], b["jti"]);
        assert_eq!(a["sid"].as_str().unwrap().len(), 36, "a UUID, as Portcullis's");
    }
}
