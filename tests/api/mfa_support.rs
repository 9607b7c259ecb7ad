//! Helpers for the MFA tests: enrolment through the API and codes computed from the returned
//! secret with `totp-rs` at steps of the test clock (frozen, so step boundaries never flake).

use crate::helpers::*;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rocket::http::Status;
use rocket::local::asynchronous::LocalResponse;
use serde_json::{json, Value};
use totp_rs::{Algorithm, Secret, TOTP};

/// An enrolled authenticator: the secret and the recovery codes shown at confirmation.
pub struct Authenticator {
    totp: TOTP,
    pub recovery_codes: Vec<String>,
}

impl Authenticator {
    pub fn from_base32(secret: &str) -> Authenticator {
        let bytes = Secret::Encoded(secret.to_owned()).to_bytes().expect("base32 secret");
        let totp = TOTP::new(Algorithm::SHA1, 6, 1, 30, bytes).expect("a 160-bit secret");
        Authenticator { totp, recovery_codes: vec![] }
    }

    /// The code of the step `offset` steps from the one the app's clock is in.
    pub fn code(&self, app: &TestApp, offset: i64) -> String {
        let time = app.clock.now() + offset * 30;
        self.totp.generate(time as u64)
    }
}

/// Starts enrolment with the user's password; returns the response body.
pub async fn start_enrolment(app: &TestApp, tokens: &Tokens, password: &str) -> Value {
    let response = app.post_authed("/auth/mfa/totp", &tokens.access, json!({"password": password})).await;
    assert_eq!(response.status(), Status::Created, "POST /auth/mfa/totp");
    response.into_json().await.expect("json")
}

/// Enrols and confirms MFA for the user of `tokens`, then moves the clock past the step the
/// confirmation used, so that the tests' next code is fresh.
pub async fn enrol(app: &TestApp, tokens: &Tokens) -> Authenticator {
    let body = start_enrolment(app, tokens, PASSWORD).await;
    let mut authenticator = Authenticator::from_base32(body["secret"].as_str().expect("secret"));
    let confirm = json!({"code": authenticator.code(app, 0)});
    let response = app.post_authed("/auth/mfa/totp/confirm", &tokens.access, confirm).await;
    assert_eq!(response.status(), Status::Ok, "confirming enrolment");
    let body: Value = response.into_json().await.expect("json");
    authenticator.recovery_codes =
        body["recovery_codes"].as_array().expect("codes").iter().map(|c| c.as_str().unwrap().to_owned()).collect();
    app.clock.advance(30);
    authenticator
}

/// Logs in with the right password on an account with MFA on; returns the `mfa_token`.
pub async fn mfa_token(app: &TestApp, user: &TestUser) -> String {
    let response = app.login_response(&user.email, &user.password).await;
    assert_eq!(response.status(), Status::Forbidden, "login with MFA on");
    let body: Value = response.into_json().await.expect("json");
    assert_eq!(body["error"], "mfa_required");
    body["mfa_token"].as_str().expect("mfa_token").to_owned()
}

pub async fn verify<'a>(app: &'a TestApp, mfa_token: &str, code: &str) -> LocalResponse<'a> {
    app.post("/auth/mfa/verify", json!({"mfa_token": mfa_token, "code": code})).await
}

/// Both steps of a login with `code`; panics unless 200.
pub async fn login_with_code(app: &TestApp, user: &TestUser, code: &str) -> Tokens {
    let token = mfa_token(app, user).await;
    let response = verify(app, &token, code).await;
    assert_eq!(response.status(), Status::Ok, "verify with {code}");
    tokens(response).await
}

/// A DELETE with a JSON body as `token`.
pub async fn delete_json<'a>(app: &'a TestApp, path: &str, token: &str, body: Value) -> LocalResponse<'a> {
    let request = app.authed(app.client.delete(path.to_owned()), token);
    app.json_request(request, body).dispatch().await
}

/// The claims of an access token (not verified: the service did that).
pub fn claims(access_token: &str) -> Value {
    let part = access_token.split('.').nth(1).expect("jwt payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("base64url")).expect("json")
}
