//! The reference of `bench/run`'s `reports` scenario: a bare Rocket app whose `GET /reports`
//! verifies Portcullis's Ed25519 access token with `jsonwebtoken` alone (signature, `exp`, `iss`,
//! `aud`) — no permission, no change feed, no cache. The example `reports_api` is measured
//! against it: what the guards of this crate cost beyond a plain JWT check.
//!
//! ```sh
//! PORTCULLIS_URL=http://127.0.0.1:8000 ROCKET_PORT=8002 \
//!     cargo run --release -p portcullis-rocket --example bare_jwt
//! ```
//!
//! It reads the issuer and the first Ed25519 key of the JWKS once at start-up (`GET /ready`
//! answers once it serves); `PORTCULLIS_AUDIENCE` as in `reports_api` (default `portcullis`).

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use rocket::http::Status;
use rocket::request::{FromRequest, Outcome, Request};
use rocket::serde::json::{json, Json, Value};
use rocket::{get, routes};

/// A bearer token `jsonwebtoken` verified.
struct Verified;

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Verified {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        let Some((key, validation)) = req.rocket().state::<(DecodingKey, Validation)>() else {
            return Outcome::Error((Status::InternalServerError, ()));
        };
        let token = req.headers().get_one("Authorization").and_then(|h| h.strip_prefix("Bearer ")).unwrap_or("");
        match jsonwebtoken::decode::<Value>(token, key, validation) {
            Ok(_) => Outcome::Success(Verified),
            Err(_) => Outcome::Error((Status::Unauthorized, ())),
        }
    }
}

#[get("/reports")]
fn reports(_token: Verified) -> Json<Value> {
    Json(json!({ "reports": [] }))
}

#[get("/ready")]
fn ready() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

async fn get_json(url: &str) -> Result<Value, String> {
    let response = reqwest::get(url).await.map_err(|e| format!("GET {url}: {e}"))?;
    response.json().await.map_err(|e| format!("GET {url}: {e}"))
}

/// The verification key and rules, from Portcullis's metadata and JWKS.
async fn trust(base: &str) -> Result<(DecodingKey, Validation), String> {
    let metadata = get_json(&format!("{base}/.well-known/oauth-authorization-server")).await?;
    let jwks = get_json(metadata["jwks_uri"].as_str().ok_or("the metadata has no jwks_uri")?).await?;
    let keys = jwks["keys"].as_array().cloned().unwrap_or_default();
    let x = keys.iter().find(|k| k["crv"] == "Ed25519").and_then(|k| k["x"].as_str()).ok_or("no Ed25519 key")?;
    let key = DecodingKey::from_ed_components(x).map_err(|e| e.to_string())?;
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_issuer(&[metadata["issuer"].as_str().ok_or("the metadata has no issuer")?]);
    validation.set_audience(&[std::env::var("PORTCULLIS_AUDIENCE").unwrap_or_else(|_| "portcullis".into())]);
    Ok((key, validation))
}

#[rocket::main]
async fn main() -> Result<(), String> {
    let base = std::env::var("PORTCULLIS_URL").map_err(|_| "PORTCULLIS_URL is not set")?;
    let trust = trust(base.trim_end_matches('/')).await?;
    let app = rocket::build().manage(trust).mount("/", routes![reports, ready]);
    app.launch().await.map_err(|e| e.to_string())?;
    Ok(())
}
