//! `GET /openapi.json` and `GET /docs`. The document is generated from the handlers'
//! annotations; these tests keep it honest: it lists exactly the mounted routes (so a route
//! added without documentation, or documentation left behind by a removed route, fails here),
//! it is internally consistent, and the docs page is served entirely by the binary.

use std::collections::BTreeSet;

use crate::helpers::*;
use rocket::http::{ContentType, Status};
use rocket::local::asynchronous::Client;
use serde_json::Value;

/// The routes that serve the documentation itself, and only they, are not in the document.
const UNDOCUMENTED: &[(&str, &str)] = &[
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    ("GET", "/docs/{path}"),
    // The hosted pages: HTML for people, not the API (docs/mail.md).
    ("GET", "/pages/style.css"),
    ("GET", "/pages/done"),
    ("GET", "/reset-password"),
    ("POST", "/reset-password"),
    ("GET", "/verify-email"),
    ("POST", "/verify-email"),
    ("GET", "/confirm-email"),
    ("POST", "/confirm-email"),
    // The account page (docs/browser-sign-in.md, "Account page").
    ("GET", "/account"),
    ("GET", "/account/signin"),
    ("POST", "/account/signin"),
    ("GET", "/account/signin/mfa"),
    ("POST", "/account/signin/mfa"),
    ("POST", "/account/sessions/end"),
    ("POST", "/account/password"),
    ("POST", "/account/email"),
    ("POST", "/account/totp"),
    ("POST", "/account/totp/confirm"),
    ("POST", "/account/totp/disable"),
    ("POST", "/account/passkeys/remove"),
    ("POST", "/account/passkeys/add/start"),
    ("POST", "/account/passkeys/add"),
    ("POST", "/account/signin/passkey"),
    ("POST", "/account/signin/mfa/passkey/start"),
    ("POST", "/account/signin/mfa/passkey"),
    ("POST", "/account/consents/revoke"),
    // Browser sign-in's pages (docs/browser-sign-in.md).
    ("GET", "/oauth/authorize"),
    ("POST", "/oauth/authorize"),
    ("POST", "/signin"),
    ("GET", "/oauth/logout"),
    ("POST", "/oauth/logout"),
    ("GET", "/pages/passkeys.js"),
    ("POST", "/signin/passkey"),
    ("POST", "/signin/mfa/passkey"),
    ("POST", "/signin/mfa/passkey/start"),
    ("GET", "/signin/mfa"),
    ("POST", "/signin/mfa"),
    ("POST", "/consent"),
];

/// `/auth` routes (and their sub-paths) that need an access token.
const BEARER_AUTH_PATHS: &[&str] = &[
    "/auth/logout",
    "/auth/logout-all",
    "/auth/sessions",
    "/auth/mfa/totp",
    "/auth/mfa/recovery-codes",
    "/auth/email/verify/send",
    "/auth/passkeys",
];

/// Routes that need an access token: these must declare the bearer security scheme.
fn needs_token(path: &str) -> bool {
    let under = |p: &&str| path == *p || path.starts_with(&format!("{p}/"));
    ["/metrics", "/oauth/userinfo"].contains(&path)
        || path.starts_with("/admin/")
        || path.starts_with("/users/")
        || (BEARER_AUTH_PATHS.iter().any(under) && !path.starts_with("/auth/passkeys/login"))
}

type Operation = (String, String);

/// A Rocket route path in OpenAPI's form: `<id>` and `<path..>` become `{id}` and `{path}`.
fn openapi_path(rocket_path: &str) -> String {
    rocket_path
        .split('/')
        .map(|segment| match segment.strip_prefix('<').and_then(|s| s.strip_suffix('>')) {
            Some(name) => format!("{{{}}}", name.trim_end_matches("..")),
            None => segment.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Every mounted route as (method, path), queries left out.
fn mounted(client: &Client) -> BTreeSet<Operation> {
    client.rocket().routes().map(|r| (r.method.as_str().to_owned(), openapi_path(r.uri.path()))).collect()
}

/// Every (method, path) of a document.
fn documented(document: &Value) -> BTreeSet<Operation> {
    let paths = document["paths"].as_object().expect("paths");
    paths
        .iter()
        .flat_map(|(path, item)| {
            item.as_object().expect("path item").keys().map(move |method| (method.to_uppercase(), path.clone()))
        })
        .collect()
}

async fn document(client: &Client) -> Value {
    let response = client.get("/openapi.json").dispatch().await;
    assert_eq!(response.status(), Status::Ok);
    assert_eq!(response.content_type(), Some(ContentType::JSON));
    response.into_json().await.expect("the document is JSON")
}

/// (mounted but not documented, documented but not mounted).
async fn drift(client: &Client) -> (BTreeSet<Operation>, BTreeSet<Operation>) {
    let excluded: BTreeSet<Operation> = UNDOCUMENTED.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
    let mounted = mounted(client);
    assert!(excluded.is_subset(&mounted), "the documentation routes are mounted: {excluded:?}");
    let mounted: BTreeSet<Operation> = mounted.difference(&excluded).cloned().collect();
    let documented = documented(&document(client).await);
    let undocumented = mounted.difference(&documented).cloned().collect();
    let unmounted = documented.difference(&mounted).cloned().collect();
    (undocumented, unmounted)
}

/// Every operation of the document with its method and path.
fn operations(document: &Value) -> Vec<(String, String, &Value)> {
    let mut all = vec![];
    for (path, item) in document["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("path item") {
            all.push((method.to_uppercase(), path.clone(), operation));
        }
    }
    all
}

/// Every `$ref` in `value`.
fn references<'a>(value: &'a Value, found: &mut Vec<&'a str>) {
    match value {
        Value::Object(map) => {
            for (key, item) in map {
                match (key.as_str(), item) {
                    ("$ref", Value::String(reference)) => found.push(reference),
                    _ => references(item, found),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| references(item, found)),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_lists_exactly_the_mounted_routes() {
    let app = TestApp::new(Backend::Sqlite).await;
    let (undocumented, unmounted) = drift(&app.client).await;
    assert!(
        undocumented.is_empty(),
        "mounted routes without documentation (annotate the handler with #[utoipa::path] and list it in \
         src/routes/docs.rs): {undocumented:?}"
    );
    assert!(unmounted.is_empty(), "documented routes that are not mounted: {unmounted:?}");
    // The contract's routes are all there, with their methods.
    let documented = documented(&document(&app.client).await);
    for (method, path) in [
        ("POST", "/auth/register"),
        ("POST", "/auth/login"),
        ("POST", "/auth/refresh"),
        ("POST", "/auth/logout"),
        ("POST", "/auth/logout-all"),
        ("GET", "/auth/sessions"),
        ("DELETE", "/auth/sessions/{id}"),
        ("GET", "/users/me"),
        ("PUT", "/users/me/password"),
        ("GET", "/admin/users"),
        ("GET", "/admin/users/{id}"),
        ("PUT", "/admin/users/{id}/roles"),
        ("PATCH", "/admin/users/{id}"),
        ("DELETE", "/admin/users/{id}"),
        ("GET", "/admin/users/{id}/sessions"),
        ("DELETE", "/admin/users/{id}/sessions"),
        ("GET", "/admin/roles"),
        ("POST", "/admin/roles"),
        ("PUT", "/admin/roles/{name}"),
        ("DELETE", "/admin/roles/{name}"),
        ("GET", "/admin/audit"),
        ("GET", "/admin/clients"),
        ("POST", "/admin/clients"),
        ("POST", "/admin/clients/{client_id}/secret"),
        ("DELETE", "/admin/clients/{client_id}"),
        ("POST", "/oauth/token"),
        ("POST", "/oauth/revoke"),
        ("POST", "/oauth/introspect"),
        ("GET", "/.well-known/oauth-authorization-server"),
        ("GET", "/.well-known/jwks.json"),
        ("GET", "/health/live"),
        ("GET", "/health/ready"),
    ] {
        assert!(documented.contains(&(method.to_owned(), path.to_owned())), "{method} {path} is documented");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_mounted_without_documentation_is_caught() {
    #[rocket::get("/reports/<id>?<limit>")]
    fn reports(id: &str, limit: Option<u32>) -> String {
        format!("{id} {limit:?}")
    }
    let db = TestDb::migrated(Backend::Sqlite).await;
    let rocket = portcullis::rocket(test_figment(db.url())).mount("/", rocket::routes![reports]);
    let client = Client::tracked(rocket).await.expect("the service starts");
    let (undocumented, unmounted) = drift(&client).await;
    assert_eq!(undocumented, BTreeSet::from([("GET".to_owned(), "/reports/{id}".to_owned())]));
    assert!(unmounted.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_is_openapi_3_with_the_security_schemes() {
    let app = TestApp::new(Backend::Sqlite).await;
    let document = document(&app.client).await;
    assert!(document["openapi"].as_str().is_some_and(|v| v.starts_with("3.")), "OpenAPI 3.x: {}", document["openapi"]);
    let schemes = &document["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["type"], "http");
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(schemes["bearer"]["bearerFormat"], "JWT");
    assert_eq!(schemes["oauth2"]["type"], "oauth2");
    let password = &schemes["oauth2"]["flows"]["password"];
    assert_eq!(password["tokenUrl"], "/oauth/token");
    assert_eq!(password["refreshUrl"], "/oauth/token");
    // Service clients: the client-credentials flow (so /docs can authorize as a client), and
    // HTTP Basic for introspection.
    assert_eq!(schemes["client_credentials"]["type"], "oauth2");
    let client_credentials = &schemes["client_credentials"]["flows"]["clientCredentials"];
    assert_eq!(client_credentials["tokenUrl"], "/oauth/token");
    assert!(client_credentials["scopes"].get("users:read").is_some(), "{client_credentials}");
    assert_eq!(
        (schemes["client_basic"]["type"].as_str(), schemes["client_basic"]["scheme"].as_str()),
        (Some("http"), Some("basic"))
    );

    for (method, path, operation) in operations(&document) {
        let security = operation["security"].as_array().cloned().unwrap_or_default();
        let declares = |scheme: &str| security.iter().any(|requirement| requirement.get(scheme).is_some());
        let statuses: Vec<&String> = operation["responses"].as_object().expect("responses").keys().collect();
        if path == "/oauth/introspect" {
            assert_eq!(security, [serde_json::json!({"client_basic": []})], "{method} {path}: client authentication");
            assert!(statuses.contains(&&"401".to_owned()), "{method} {path} documents 401");
        } else if path == "/feed/changes" {
            assert_eq!(security, [serde_json::json!({"client_credentials": []})], "{method} {path}: client tokens");
            assert!(statuses.contains(&&"401".to_owned()) && statuses.contains(&&"403".to_owned()), "{method} {path}");
        } else if needs_token(&path) {
            assert!(declares("bearer"), "{method} {path} declares bearer security");
            // Client tokens: on /admin, and on /metrics (a Prometheus scraper is a client).
            let for_clients = path.starts_with("/admin/") || path == "/metrics";
            assert_eq!(declares("client_credentials"), for_clients, "{method} {path}: client tokens where they work");
            assert!(declares("oauth2"), "{method} {path} declares oauth2 security (for Swagger UI's Authorize)");
            assert!(statuses.contains(&&"401".to_owned()), "{method} {path} documents 401");
        } else {
            assert!(security.is_empty(), "{method} {path} needs no token: {security:?}");
        }
        // 403: a missing permission on /admin, a client token on "my account" routes.
        if path.starts_with("/admin/") || (needs_token(&path) && path != "/metrics") {
            assert!(statuses.contains(&&"403".to_owned()), "{method} {path} documents 403");
        }
        assert!(statuses.iter().any(|s| s.starts_with('2')), "{method} {path} documents its success");
        // Path parameters: exactly the `{name}`s of the path.
        let in_path: BTreeSet<String> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(str::to_owned)
            .collect();
        let declared: BTreeSet<String> = operation["parameters"]
            .as_array()
            .map(|ps| ps.iter().filter(|p| p["in"] == "path").map(|p| p["name"].as_str().unwrap().to_owned()).collect())
            .unwrap_or_default();
        assert_eq!(in_path, declared, "{method} {path}: path parameters");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_is_consistent() {
    let app = TestApp::new(Backend::Sqlite).await;
    let document = document(&app.client).await;
    // Operation ids are unique (Swagger UI's links use them).
    let mut ids = BTreeSet::new();
    for (method, path, operation) in operations(&document) {
        let id = operation["operationId"].as_str().unwrap_or_else(|| panic!("{method} {path} has an operationId"));
        assert!(ids.insert(id.to_owned()), "operationId {id} is unique");
    }
    // Every reference resolves.
    let mut found = vec![];
    references(&document, &mut found);
    assert!(!found.is_empty());
    for reference in found {
        let pointer = reference.strip_prefix('#').unwrap_or_else(|| panic!("{reference} is local"));
        assert!(document.pointer(pointer).is_some(), "{reference} resolves");
    }
    // The shared error schema is the body the service sends: its required fields always, and
    // `mfa_token` and `mfa_methods` only with `mfa_required`.
    let error = &document["components"]["schemas"]["Error"];
    let documented: BTreeSet<&str> =
        error["properties"].as_object().expect("properties").keys().map(|k| k.as_str()).collect();
    let required: BTreeSet<&str> =
        error["required"].as_array().expect("required").iter().map(|k| k.as_str().unwrap()).collect();
    let response = app.client.get("/no/such/route").dispatch().await;
    assert_eq!(response.status(), Status::NotFound);
    let body: Value = response.into_json().await.expect("error json");
    let sent: BTreeSet<&str> = body.as_object().expect("object").keys().map(|k| k.as_str()).collect();
    assert_eq!(required, sent);
    assert_eq!(documented.difference(&sent).copied().collect::<Vec<_>>(), ["mfa_methods", "mfa_token"]);
    // Bodies: JSON, except the OAuth endpoints' forms.
    for (method, path, operation) in operations(&document) {
        if let Some(content) = operation["requestBody"]["content"].as_object() {
            let expected =
                if path.starts_with("/oauth/") { "application/x-www-form-urlencoded" } else { "application/json" };
            assert_eq!(content.keys().collect::<Vec<_>>(), [expected], "{method} {path}");
        }
    }
    // The user object as the contract has it, never a password hash.
    let user = document["components"]["schemas"]["User"]["properties"].as_object().expect("User");
    assert_eq!(
        user.keys().map(|k| k.as_str()).collect::<BTreeSet<_>>(),
        BTreeSet::from(["id", "email", "roles", "disabled", "mfa", "email_verified", "created_at"])
    );
}
