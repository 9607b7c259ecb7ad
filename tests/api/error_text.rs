//! `error_description` keeps to the characters RFC 6749 §5.2 allows (%x20-21 / %x23-5B /
//! %x5D-7E: printable ASCII without `"` and `\`) on every error path, so it can travel in a
//! `WWW-Authenticate` challenge unchanged. The error paths are generated, not sampled: every
//! operation of the OpenAPI document is called with hostile input (no token, a malformed one, a
//! user's and an admin's; bodies missing, malformed, or full of quotes, backslashes and
//! non-ASCII; ids that are not ids) and every error body is checked.

use std::collections::BTreeSet;

use crate::admin_support::with_admin;
use crate::helpers::*;
use crate::on_both_backends;
use rocket::http::{ContentType, Header};
use rocket::local::asynchronous::LocalResponse;
use serde_json::{json, Value};

fn allowed(c: char) -> bool {
    matches!(c, ' ' | '!' | '#'..='[' | ']'..='~')
}

/// JSON bodies: none, malformed, and every field the API reads filled with text to echo.
fn json_bodies() -> Vec<Option<String>> {
    let hostile = json!({
        "email": "a\"b\\c@\u{e9}.example", "password": "\"\\", "new_password": "x", "current_password": "\"",
        "name": "q\"\\\u{1F600}", "description": 7, "permissions": ["no\"such\\perm"], "roles": ["no\"such\\role"],
        "refresh_token": "r\"\\", "code": "1\"2", "mfa_token": "m\"\\", "disabled": "yes\"",
    });
    vec![None, Some("{\"email\": \"\\u00e9".into()), Some(hostile.to_string()), Some("[\"\\\"\"]".into())]
}

/// Forms of the OAuth endpoints: none, odd values, unknown grants and scopes a client lacks.
fn form_bodies(client_id: &str, secret: &str) -> Vec<Option<String>> {
    vec![
        None,
        Some("grant_type=x%22y%5Cz&token=t%22%5C&token_type_hint=%C3%A9".into()),
        Some(format!("grant_type=client_credentials&client_id={client_id}&client_secret={secret}&scope=users%3Awrite+no%22such%5C")),
        Some("grant_type=client_credentials&client_id=no%22such&client_secret=%5C".into()),
        Some("grant_type=password&username=a%22b%5C&password=p%5C".into()),
        Some("grant_type=refresh_token&refresh_token=r%22%5C".into()),
        Some("grant_type=password".into()),
        Some("%zz=%".into()),
    ]
}

/// The concrete paths of a documented path: its parameters as non-ids and as unknown ids, with
/// and without hostile query values.
fn paths(template: &str) -> Vec<String> {
    let fill = |value: &str| {
        template
            .split('/')
            .map(|s| if s.starts_with('{') { value.to_owned() } else { s.to_owned() })
            .collect::<Vec<_>>()
            .join("/")
    };
    let mut all = vec![fill("not%22an%5Cid"), fill("00000000-0000-0000-0000-000000000000")];
    all.dedup();
    let with_query: Vec<String> = all.iter().map(|p| format!("{p}?limit=%22x%5C&offset=-1&limit=2")).collect();
    all.extend(with_query);
    all
}

/// Checks one response; returns its code when it is an error.
async fn check(response: LocalResponse<'_>, what: &str) -> Option<String> {
    if response.status().code < 400 {
        return None;
    }
    let challenge = response.headers().get_one("WWW-Authenticate").map(str::to_owned);
    let body: Value = response.into_json().await.unwrap_or_else(|| panic!("{what}: a JSON error body"));
    let description = body["error_description"].as_str().unwrap_or_else(|| panic!("{what}: {body}"));
    let outside: Vec<char> = description.chars().filter(|c| !allowed(*c)).collect();
    assert!(outside.is_empty(), "{what}: {outside:?} in {description:?}");
    if let Some(challenge) = challenge.filter(|c| c.contains("error_description")) {
        assert!(challenge.contains(&format!("error_description=\"{description}\"")), "{what}: {challenge}");
    }
    Some(body["error"].as_str().unwrap_or_default().to_owned())
}

on_both_backends! {
    async fn every_error_description_keeps_to_the_characters_rfc_6749_allows(backend) {
        let app = TestApp::new(backend).await;
        let user = app.with_user().await;
        let user_tokens = app.login(&user).await;
        let (_, admin) = with_admin(&app).await;
        let response =
            app.post_authed("/admin/clients", &admin.access, json!({"name": "reports", "permissions": ["users:read"]})).await;
        let created: Value = response.into_json().await.expect("client");
        let (client_id, secret) = (created["client_id"].as_str().unwrap(), created["client_secret"].as_str().unwrap());

        let document: Value = app.client.get("/openapi.json").dispatch().await.into_json().await.expect("document");
        let mut operations: Vec<(String, String)> = document["paths"]
            .as_object()
            .expect("paths")
            .iter()
            .flat_map(|(path, item)| item.as_object().unwrap().iter().map(move |(m, op)| (m.to_uppercase(), path.clone(), op.clone())))
            // The hosted pages answer people with HTML, not the API's JSON errors.
            .filter(|(_, _, op)| op["tags"] != json!(["pages"]))
            .map(|(method, path, _)| (method, path))
            .collect();
        // What ends the callers' sessions runs last, so the tokens stay good for the rest.
        operations.sort_by_key(|(method, path)| (method == "DELETE" || path.contains("logout"), path.clone()));
        let credentials: [Option<String>; 4] =
            [None, Some("Bearer bad\"to\\ken".into()), Some(format!("Bearer {}", user_tokens.access)), Some(format!("Bearer {}", admin.access))];

        let (mut checked, mut codes) = (0, BTreeSet::new());
        for (method, template) in &operations {
            let form = template.starts_with("/oauth/");
            let bodies = if form { form_bodies(client_id, secret) } else { json_bodies() };
            for path in paths(template) {
                for authorization in &credentials {
                    for body in &bodies {
                        let method = method.parse().expect("a method");
                        let mut request = app.client.req(method, path.clone());
                        if let Some(value) = authorization {
                            request = request.header(Header::new("Authorization", value.clone()));
                        }
                        if let Some(body) = body {
                            let content_type = if form { ContentType::Form } else { ContentType::JSON };
                            request = request.header(content_type).body(body.clone());
                        }
                        let what = format!("{method} {path} {authorization:?} {body:?}");
                        if let Some(code) = check(request.dispatch().await, &what).await {
                            checked += 1;
                            codes.insert(code);
                        }
                    }
                }
            }
        }
        assert!(checked > 500, "{checked} error responses checked");
        for code in ["invalid_request", "invalid_token", "insufficient_permissions", "not_found", "invalid_scope", "invalid_client"] {
            assert!(codes.contains(code), "{code} among {codes:?}");
        }
    }

    async fn descriptions_that_quote_a_name_use_single_quotes(backend) {
        let app = TestApp::new(backend).await;
        let missing = app.client.post("/oauth/token").header(ContentType::Form).body("").dispatch().await;
        let (_, code, description) = error_with_description(missing).await;
        assert_eq!((code.as_str(), description.as_str()), ("invalid_request", "The parameter 'grant_type' is required."));
    }
}

/// The contract's codes ("Errors: one shape everywhere"), in its order.
const CONTRACT_CODES: [&str; 19] = [
    "invalid_request",
    "invalid_grant",
    "unsupported_grant_type",
    "invalid_scope",
    "invalid_target",
    "unauthorized_client",
    "invalid_token",
    "invalid_credentials",
    "invalid_client",
    "insufficient_permissions",
    "account_disabled",
    "mfa_required",
    "email_unverified",
    "not_found",
    "conflict",
    "payload_too_large",
    "too_many_requests",
    "server_error",
    "unavailable",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_lists_every_error_code_the_service_sends() {
    let app = TestApp::new(Backend::Sqlite).await;
    let document: Value = app.client.get("/openapi.json").dispatch().await.into_json().await.expect("document");
    let listed: Vec<&str> = document["components"]["schemas"]["Error"]["properties"]["error"]["enum"]
        .as_array()
        .expect("Error.error has an enum")
        .iter()
        .map(|code| code.as_str().expect("a string"))
        .collect();
    let sent: Vec<&str> = portcullis::error::ErrorCode::ALL.iter().map(|code| code.as_str()).collect();
    assert_eq!(listed, sent, "the document's codes are the service's");
    assert_eq!(sent, CONTRACT_CODES, "the service's codes are the contract's");
}
