//! Request-body guards that fail in the contract's terms: 400 for a malformed body, a missing
//! field or a wrong content type, 413 over the configured `limits.json`.

use rocket::data::{self, Data, FromData, ToByteUnit};
use rocket::request::Request;
use serde::de::DeserializeOwned;

use crate::error::{reject, ApiError};

/// A JSON request body; `T` decides which fields are required.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

/// Reads the body up to `limit`: `Err` 413 past it.
pub async fn read_limited(req: &Request<'_>, data: Data<'_>, limit_name: &str) -> Result<Vec<u8>, ApiError> {
    let limit = req.limits().get(limit_name).unwrap_or_else(|| 64.kibibytes());
    let bytes =
        data.open(limit).into_bytes().await.map_err(|e| ApiError::bad_request(format!("Cannot read the body: {e}")))?;
    if !bytes.is_complete() {
        return Err(ApiError::payload_too_large());
    }
    Ok(bytes.into_inner())
}

fn outcome<'r, T>(req: &'r Request<'_>, result: Result<T, ApiError>) -> data::Outcome<'r, T, ()> {
    match result {
        Ok(value) => data::Outcome::Success(value),
        Err(e) => data::Outcome::Error((reject(req, e), ())),
    }
}

async fn parse_json<T: DeserializeOwned>(req: &Request<'_>, data: Data<'_>) -> Result<T, ApiError> {
    if let Some(ct) = req.content_type() {
        if !ct.is_json() && !ct.sub().as_str().ends_with("+json") {
            return Err(ApiError::bad_request("Expected a JSON body (Content-Type: application/json)."));
        }
    }
    let bytes = read_limited(req, data, "json").await?;
    serde_json::from_slice(&bytes).map_err(|e| ApiError::bad_request(format!("Invalid JSON body: {e}.")))
}

#[rocket::async_trait]
impl<'r, T: DeserializeOwned + Send + 'static> FromData<'r> for JsonBody<T> {
    type Error = ();

    async fn from_data(req: &'r Request<'_>, data: Data<'r>) -> data::Outcome<'r, Self> {
        outcome(req, parse_json(req, data).await.map(JsonBody))
    }
}

/// A JSON body that may also be absent (empty): `None` then.
#[derive(Debug)]
pub struct OptionalJson<T>(pub Option<T>);

#[rocket::async_trait]
impl<'r, T: DeserializeOwned + Send + 'static> FromData<'r> for OptionalJson<T> {
    type Error = ();

    async fn from_data(req: &'r Request<'_>, mut data: Data<'r>) -> data::Outcome<'r, Self> {
        if data.peek(1).await.is_empty() {
            return data::Outcome::Success(OptionalJson(None));
        }
        outcome(req, parse_json(req, data).await.map(|v| OptionalJson(Some(v))))
    }
}

/// An `application/x-www-form-urlencoded` body (OAuth endpoints). A parameter given twice is
/// 400, as RFC 6749 §3.2 requires.
#[derive(Debug, Default)]
pub struct FormBody(pub std::collections::HashMap<String, String>);

impl FormBody {
    /// A non-empty parameter.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str).filter(|v| !v.is_empty())
    }
}

async fn parse_form(req: &Request<'_>, data: Data<'_>) -> Result<FormBody, ApiError> {
    if req.content_type().is_none_or(|ct| !ct.is_form()) {
        return Err(ApiError::bad_request("Expected an application/x-www-form-urlencoded body."));
    }
    let bytes = read_limited(req, data, "form").await?;
    let mut params = std::collections::HashMap::new();
    for (name, value) in form_urlencoded::parse(&bytes) {
        if params.insert(name.to_string(), value.into_owned()).is_some() {
            return Err(ApiError::bad_request(format!("The parameter {name:?} is given more than once.")));
        }
    }
    Ok(FormBody(params))
}

#[rocket::async_trait]
impl<'r> FromData<'r> for FormBody {
    type Error = ();

    async fn from_data(req: &'r Request<'_>, data: Data<'r>) -> data::Outcome<'r, Self> {
        outcome(req, parse_form(req, data).await)
    }
}
