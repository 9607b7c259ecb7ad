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
    serde_json::from_slice(&replace_lone_surrogates(&bytes))
        .map_err(|e| ApiError::bad_request(format!("Invalid JSON body: {e}.")))
}

/// JSON may spell a lone UTF-16 surrogate (`"\ud800"`), which no Rust string can hold; it is read
/// as U+FFFD, so such a value is judged like any other invalid one (at login, as an unknown
/// email, 401; elsewhere 422 naming the field) rather than failing the whole body.
fn replace_lone_surrogates(bytes: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    fn unit(bytes: &[u8], at: usize) -> Option<u16> {
        let digits = bytes.get(at..at + 6)?;
        if digits[0] != b'\\' || digits[1] != b'u' {
            return None;
        }
        u16::from_str_radix(std::str::from_utf8(&digits[2..]).ok()?, 16).ok()
    }
    let is_high = |u: u16| (0xD800..0xDC00).contains(&u);
    let is_low = |u: u16| (0xDC00..0xE000).contains(&u);
    if !bytes.windows(2).any(|w| w == b"\\u") {
        return std::borrow::Cow::Borrowed(bytes);
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        match unit(bytes, i) {
            Some(high) if is_high(high) && unit(bytes, i + 6).is_some_and(is_low) => {
                out.extend_from_slice(&bytes[i..i + 12]);
                i += 12;
            }
            Some(u) if is_high(u) || is_low(u) => {
                out.extend_from_slice(b"\\ufffd");
                i += 6;
            }
            _ => {
                // Any other escape (including `\\`) is copied whole, so its second byte is never
                // mistaken for the start of another escape.
                out.extend_from_slice(&bytes[i..(i + 2).min(bytes.len())]);
                i += 2;
            }
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::replace_lone_surrogates;

    fn fixed(json: &str) -> String {
        String::from_utf8(replace_lone_surrogates(json.as_bytes()).into_owned()).unwrap()
    }

    #[test]
    fn lone_surrogates_become_the_replacement_character_and_pairs_stay() {
        assert_eq!(fixed(r#"{"a":"x\ud800y"}"#), r#"{"a":"x\ufffdy"}"#);
        assert_eq!(fixed(r#"{"a":"\udc00"}"#), r#"{"a":"\ufffd"}"#);
        assert_eq!(fixed(r#"{"a":"\ud83d\ude00"}"#), r#"{"a":"\ud83d\ude00"}"#);
        assert_eq!(fixed(r#"{"a":"\\ud800"}"#), r#"{"a":"\\ud800"}"#, "an escaped backslash");
        let parsed: serde_json::Value = serde_json::from_str(&fixed(r#"{"a":"\ud800"}"#)).unwrap();
        assert_eq!(parsed["a"], "\u{FFFD}");
    }
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
        // JSON `null` is no body too (the OpenAPI document's `oneOf [body, null]`).
        outcome(req, parse_json::<Option<T>>(req, data).await.map(OptionalJson))
    }
}

/// An `application/x-www-form-urlencoded` body (OAuth endpoints) read into `T`, the type the
/// OpenAPI document shows (so the two cannot drift apart). A parameter given twice is 400, as
/// RFC 6749 §3.2 requires; one without a value counts as omitted (§3.1); unknown ones are
/// ignored (§3.2); a missing required one is 400 naming it.
#[derive(Debug, Default)]
pub struct FormBody<T>(pub T);

async fn parse_form<T: DeserializeOwned>(req: &Request<'_>, data: Data<'_>) -> Result<FormBody<T>, ApiError> {
    if req.content_type().is_none_or(|ct| !ct.is_form()) {
        return Err(ApiError::bad_request("Expected an application/x-www-form-urlencoded body."));
    }
    let bytes = read_limited(req, data, "form").await?;
    let mut params = serde_json::Map::new();
    let mut seen = std::collections::HashSet::new();
    for (name, value) in form_urlencoded::parse(&bytes) {
        if !seen.insert(name.clone()) {
            return Err(ApiError::bad_request(format!("The parameter {name:?} is given more than once.")));
        }
        if !value.is_empty() {
            params.insert(name.into_owned(), serde_json::Value::String(value.into_owned()));
        }
    }
    serde_json::from_value(serde_json::Value::Object(params)).map(FormBody).map_err(|e| {
        let message = e.to_string();
        match message.strip_prefix("missing field `").and_then(|rest| rest.split_once('`')) {
            Some((name, _)) => ApiError::bad_request(format!("The parameter '{name}' is required.")),
            None => ApiError::bad_request(format!("Invalid parameters: {message}.")),
        }
    })
}

#[rocket::async_trait]
impl<'r, T: DeserializeOwned + Send + 'static> FromData<'r> for FormBody<T> {
    type Error = ();

    async fn from_data(req: &'r Request<'_>, data: Data<'r>) -> data::Outcome<'r, Self> {
        outcome(req, parse_form(req, data).await)
    }
}
