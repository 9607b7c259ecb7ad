//! Helpers for the authorization-code grant tests: clients of every kind, a user's browser
//! session (a session of `portcullis`, as the authorize endpoint makes it), codes issued in it as
//! the authorize endpoint would, their exchange at `/oauth/token`, and an ID token verified the
//! way a relying party does it: with the JWK of its `kid` from the JWKS.

use crate::helpers::*;
use crate::oauth::post_form;
use crate::oidc_support::*;
use portcullis::admin::client_settings::ClientFields;
use portcullis::auth::oidc::codes::CodeRequest;
use portcullis::db::Id;
use portcullis::models::{NewSession, SessionStore};
use rocket::local::asynchronous::LocalResponse;
use serde_json::Value;

/// RFC 7636 Appendix B.
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
pub const REDIRECT: &str = "https://app.example.com/callback";

/// A registered client: its id, and its secret when confidential.
#[derive(Debug, Clone)]
pub struct App {
    pub id: String,
    pub secret: Option<String>,
}

/// A client registered with `fields` (its name and redirect URI filled in).
pub async fn client_with(app: &TestApp, fields: ClientFields) -> App {
    let fields = ClientFields {
        name: Some(fields.name.clone().unwrap_or_else(|| "web".into())),
        redirect_uris: Some(vec![REDIRECT.into()]),
        ..fields
    };
    let created =
        portcullis::admin::clients::create_client_unchecked(auth(app), pool(app), &fields).await.expect("a client");
    App { id: created.client.client_id.to_string(), secret: created.client_secret }
}

/// A third-party public client (`authorization_code` and `refresh_token`).
pub async fn public_client(app: &TestApp) -> App {
    client_with(app, ClientFields { client_type: Some("public".into()), ..Default::default() }).await
}

/// A confidential client allowed the code and refresh-token grants.
pub async fn confidential_client(app: &TestApp, alg: &str) -> App {
    let grants = Some(vec!["authorization_code".into(), "refresh_token".into()]);
    let alg = Some(alg.to_owned());
    client_with(app, ClientFields { grant_types: grants, id_token_signed_response_alg: alg, ..Default::default() })
        .await
}

/// A browser session of `user` (a session of `portcullis`) living `ttl` seconds; its id.
pub async fn browser_session(app: &TestApp, user: Id, ttl: i64) -> Id {
    let now = app.clock.now();
    let id = Id::new();
    let session = NewSession {
        id,
        user_id: user,
        created_at: now,
        last_used_at: now,
        expires_at: now + ttl,
        user_agent: None,
        ip: None,
        amr: "pwd",
        resource: None,
        client_id: "portcullis",
        scope: None,
    };
    let mut conn = conn(app).await;
    // As a sign-in does: the account's session bound raised with the lock, then the insert.
    portcullis::write_tx!(&mut conn, |c| {
        c.lock_user_for_session(user).await?;
        c.insert_session(&session).await
    })
    .expect("a browser session");
    id
}

/// What the authorize endpoint decided, for [`issue_code`].
#[derive(Debug, Clone, Copy)]
pub struct Authorized<'a> {
    pub user: Id,
    pub browser_session: Id,
    pub scope: &'a str,
    pub nonce: Option<&'a str>,
    pub auth_time: i64,
}

/// A user of the app signed in a browser session: the user and the session.
pub async fn signed_in(app: &TestApp) -> (TestUser, Id) {
    let user = app.with_user_email(&format!("{}@example.com", Id::new())).await;
    let browser = browser_session(app, user.id.parse().unwrap(), 86400).await;
    (user, browser)
}

/// A code issued to `client` as `authorized` says.
pub async fn issue_code(app: &TestApp, client: &App, authorized: Authorized<'_>) -> String {
    let request = CodeRequest {
        client_id: client.id.parse().unwrap(),
        redirect_uri: REDIRECT,
        code_challenge: CHALLENGE,
        scope: authorized.scope,
        nonce: authorized.nonce,
        resource: None,
        user_id: authorized.user,
        auth_time: authorized.auth_time,
        amr: "pwd",
        browser_session_id: authorized.browser_session,
    };
    let code = auth(app).issue_code(&mut conn(app).await, &request).await.expect("a code");
    code.expose().to_owned()
}

/// A code for a new signed-in user with `scope` (nonce `n-0S6_WzA2Mj`); the code and the user.
pub async fn code_for(app: &TestApp, client: &App, scope: &str) -> (String, TestUser) {
    let (user, browser) = signed_in(app).await;
    let authorized = Authorized {
        user: user.id.parse().unwrap(),
        browser_session: browser,
        scope,
        nonce: Some("n-0S6_WzA2Mj"),
        auth_time: app.clock.now() - 30,
    };
    (issue_code(app, client, authorized).await, user)
}

/// The token request of `code` by `client` as it was issued (client_secret_post for a
/// confidential client), with `extra` fields replacing or adding to it.
pub async fn exchange<'a>(app: &'a TestApp, client: &App, code: &str, extra: &[(&str, &str)]) -> LocalResponse<'a> {
    let mut form: Vec<(&str, &str)> = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
        ("client_id", &client.id),
    ];
    if let Some(secret) = &client.secret {
        form.push(("client_secret", secret));
    }
    for (name, value) in extra {
        form.retain(|(n, _)| n != name);
        if !value.is_empty() {
            form.push((name, value));
        }
    }
    post_form(app, "/oauth/token", &form).await
}

/// The 200 body of an exchange.
pub async fn exchanged(app: &TestApp, client: &App, code: &str) -> Value {
    let response = exchange(app, client, code, &[]).await;
    assert_eq!(response.status(), rocket::http::Status::Ok);
    response.into_json().await.unwrap()
}

/// A refresh-token grant by `client`.
pub async fn refresh_as<'a>(app: &'a TestApp, client: &App, refresh_token: &str) -> LocalResponse<'a> {
    let mut form = vec![("grant_type", "refresh_token"), ("refresh_token", refresh_token), ("client_id", &client.id)];
    if let Some(secret) = &client.secret {
        form.push(("client_secret", secret));
    }
    post_form(app, "/oauth/token", &form).await
}

/// The claims of `id_token` once verified with the JWKS for audience `client` (its `alg` from
/// the header, as relying parties read it; expiry is the frozen test clock's business).
pub async fn verified_id_token(app: &TestApp, id_token: &str, client: &App) -> (String, Value) {
    let header = jsonwebtoken::decode_header(id_token).unwrap();
    let kid = header.kid.clone().expect("a kid");
    let jwk = jwks(app).await.into_iter().find(|k| k["kid"] == kid.as_str()).expect("the kid is published");
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwk).unwrap();
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.set_audience(&[client.id.as_str()]);
    validation.validate_exp = false;
    validation.set_required_spec_claims(&["iss", "aud", "sub", "exp"]);
    let key = jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap();
    let claims = jsonwebtoken::decode::<Value>(id_token, &key, &validation).expect("verifies").claims;
    (format!("{:?}", header.alg), claims)
}

/// The claims of an access token, unverified (the service verifies them; the test reads them).
pub fn access_claims(token: &str) -> Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}
