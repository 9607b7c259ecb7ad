//! Client types and settings: confidential and public clients, redirect URIs, grant types,
//! `first_party` and the ID-token algorithm; `PUT /admin/clients/<id>` with delegation; the
//! token endpoint allowing only a client's grants and each type's kind of credentials.

use crate::admin_support::*;
use crate::clients::post_basic;
use crate::helpers::*;
use crate::oauth::post_form;
use crate::on_both_backends;
use rocket::http::Status;
use serde_json::{json, Value};

/// A client created through the API by `token` with `body`: the answer.
pub async fn create_client_with(app: &TestApp, token: &str, body: Value) -> Value {
    let response = app.post_authed("/admin/clients", token, body).await;
    assert_eq!(response.status(), Status::Created);
    response.into_json().await.unwrap()
}

/// A public client with `grant_types` (its type's defaults when `None`): its id.
pub async fn public_client(app: &TestApp, token: &str, grant_types: Option<&[&str]>) -> String {
    let mut body = json!({"name": "spa", "type": "public", "redirect_uris": ["https://app.example/cb"]});
    if let Some(grants) = grant_types {
        body["grant_types"] = json!(grants);
    }
    create_client_with(app, token, body).await["client_id"].as_str().unwrap().to_owned()
}

async fn error_naming(response: rocket::local::asynchronous::LocalResponse<'_>, field: &str) {
    let (status, code, description) = error_with_description(response).await;
    assert_eq!((status, code.as_str()), (Status::UnprocessableEntity, "invalid_request"), "{description}");
    assert!(description.contains(field), "{description:?} names {field}");
}

on_both_backends! {
    async fn a_public_client_has_no_secret_and_each_type_gets_its_default_settings(backend) {
        let app = TestApp::new(backend).await;
        let (_, admin) = with_admin(&app).await;
        let body = json!({"name": "spa", "type": "public", "redirect_uris": ["https://app.example/cb", "http://127.0.0.1:8080/cb", "com.example.app:/cb"]});
        let public = create_client_with(&app, &admin.access, body).await;
        assert!(public.get("client_secret").is_none(), "{public}");
        assert_eq!(public["type"], "public");
        assert_eq!(public["grant_types"], json!(["authorization_code", "refresh_token"]));
        assert_eq!(public["redirect_uris"], json!(["https://app.example/cb", "http://127.0.0.1:8080/cb", "com.example.app:/cb"]));
        assert_eq!((&public["first_party"], &public["id_token_signed_response_alg"], &public["post_logout_redirect_uris"]), (&json!(false), &json!("RS256"), &json!([])));
        let confidential = create_client_with(&app, &admin.access, json!({"name": "job"})).await;
        assert!(confidential["client_secret"].as_str().is_some_and(|s| !s.is_empty()));
        assert_eq!((&confidential["type"], &confidential["grant_types"]), (&json!("confidential"), &json!(["client_credentials"])));
        let listed = get_json(&app, "/admin/clients", &admin.access).await;
        let spa = listed["clients"].as_array().unwrap().iter().find(|c| c["client_id"] == public["client_id"]).unwrap().clone();
        assert_eq!((&spa["type"], &spa["redirect_uris"], &spa["grant_types"]), (&public["type"], &public["redirect_uris"], &public["grant_types"]));
        let rotate = app.post_authed(&format!("/admin/clients/{}/secret", public["client_id"].as_str().unwrap()), &admin.access, json!({})).await;
        assert_eq!(error_of(rotate).await, (Status::Conflict, "conflict".into()), "a public client has no secret to rotate");
    }

    async fn bad_client_settings_are_422_naming_the_field(backend) {
        let app = TestApp::new(backend).await;
        let (_, admin) = with_admin(&app).await;
        let bad = [
            (json!({"type": "weird"}), "type"),
            (json!({"grant_types": ["implicit"]}), "grant_types"),
            (json!({"type": "public", "grant_types": ["password"]}), "grant_types"),
            (json!({"type": "public", "grant_types": ["client_credentials"]}), "grant_types"),
            (json!({"redirect_uris": ["http://app.example/cb"]}), "redirect_uris"),
            (json!({"redirect_uris": ["https://app.example/cb#frag"]}), "redirect_uris"),
            (json!({"redirect_uris": ["javascript:alert(1)"]}), "redirect_uris"),
            (json!({"redirect_uris": ["/relative/cb"]}), "redirect_uris"),
            (json!({"post_logout_redirect_uris": ["http://app.example/bye"]}), "post_logout_redirect_uris"),
            (json!({"id_token_signed_response_alg": "HS256"}), "id_token_signed_response_alg"),
        ];
        for (mut body, field) in bad {
            body["name"] = json!("x");
            error_naming(app.post_authed("/admin/clients", &admin.access, body).await, field).await;
        }
        let malformed = app.post_authed("/admin/clients", &admin.access, json!({"name": "x", "type": 5})).await;
        assert_eq!(error_of(malformed).await, (Status::BadRequest, "invalid_request".into()));
        let listed = get_json(&app, "/admin/clients", &admin.access).await;
        assert_eq!(listed["total"], 0, "nothing was created");
    }

    async fn put_changes_the_fields_it_carries_and_never_the_type(backend) {
        let app = TestApp::new(backend).await;
        let (_, admin) = with_admin(&app).await;
        let created = create_client_with(&app, &admin.access, json!({"name": "app", "permissions": ["users:read"]})).await;
        let path = format!("/admin/clients/{}", created["client_id"].as_str().unwrap());
        let body = json!({"redirect_uris": ["https://app.example/cb"], "grant_types": ["password", "refresh_token"], "id_token_signed_response_alg": "EdDSA"});
        let response = app.put_authed(&path, &admin.access, body).await;
        assert_eq!(response.status(), Status::Ok);
        let changed: Value = response.into_json().await.unwrap();
        assert_eq!((&changed["name"], &changed["permissions"], &changed["type"]), (&json!("app"), &json!(["users:read"]), &json!("confidential")));
        assert_eq!((&changed["redirect_uris"], &changed["grant_types"]), (&json!(["https://app.example/cb"]), &json!(["password", "refresh_token"])));
        assert_eq!(changed["id_token_signed_response_alg"], "EdDSA");
        assert!(changed.get("client_secret").is_none());
        let renamed: Value = app.put_authed(&path, &admin.access, json!({"name": "renamed", "type": "confidential"})).await.into_json().await.unwrap();
        assert_eq!((&renamed["name"], &renamed["redirect_uris"]), (&json!("renamed"), &changed["redirect_uris"]));
        error_naming(app.put_authed(&path, &admin.access, json!({"type": "public"})).await, "type").await;
        error_naming(app.put_authed(&path, &admin.access, json!({"redirect_uris": ["ftp://x/"]})).await, "redirect_uris").await;
        let public = public_client(&app, &admin.access, None).await;
        let response = app.put_authed(&format!("/admin/clients/{public}"), &admin.access, json!({"grant_types": ["password"]})).await;
        error_naming(response, "grant_types").await;
        let unknown = app.put_authed(&format!("/admin/clients/{}", uuid::Uuid::new_v4()), &admin.access, json!({})).await;
        assert_eq!(error_of(unknown).await, (Status::NotFound, "not_found".into()));
        let audit = get_json(&app, "/admin/audit?event=client_updated", &admin.access).await;
        assert_eq!(audit["events"].as_array().unwrap().len(), 2);
    }

    async fn changing_a_client_needs_its_permissions_and_first_party_needs_admin(backend) {
        let app = TestApp::new(backend).await;
        let (_, admin) = with_admin(&app).await;
        create_role(&app, &admin, "client-manager", &["clients:read", "clients:write", "users:read"]).await;
        let (_, manager) = user_with_roles(&app, "manager@example.com", &["client-manager"]).await;
        let forbidden = (Status::Forbidden, "insufficient_permissions".to_owned());
        let first_party = app.post_authed("/admin/clients", &manager.access, json!({"name": "x", "first_party": true})).await;
        assert_eq!(error_of(first_party).await, forbidden);
        let own = create_client_with(&app, &manager.access, json!({"name": "own", "permissions": ["users:read"]})).await;
        let own = format!("/admin/clients/{}", own["client_id"].as_str().unwrap());
        assert_eq!(app.put_authed(&own, &manager.access, json!({"redirect_uris": ["https://a.example/cb"]})).await.status(), Status::Ok);
        assert_eq!(error_of(app.put_authed(&own, &manager.access, json!({"permissions": ["users:write"]})).await).await, forbidden);
        assert_eq!(error_of(app.put_authed(&own, &manager.access, json!({"first_party": true})).await).await, forbidden);
        let strong = create_client_with(&app, &admin.access, json!({"name": "strong", "permissions": ["users:write"]})).await;
        let strong = format!("/admin/clients/{}", strong["client_id"].as_str().unwrap());
        assert_eq!(error_of(app.put_authed(&strong, &manager.access, json!({"name": "mine"})).await).await, forbidden);
        let response = app.put_authed(&own, &admin.access, json!({"first_party": true})).await;
        assert_eq!(response.status(), Status::Ok);
        assert_eq!(response.into_json::<Value>().await.unwrap()["first_party"], true);
        assert_eq!(error_of(app.put_authed(&own, &manager.access, json!({"first_party": false})).await).await, forbidden);
    }

    async fn a_grant_outside_the_clients_grant_types_is_unauthorized_client(backend) {
        let app = TestApp::new(backend).await;
        let (_, admin) = with_admin(&app).await;
        let user = app.with_user().await;
        let unauthorized = (Status::BadRequest, "unauthorized_client".to_owned());
        let password = [("grant_type", "password"), ("username", user.email.as_str()), ("password", user.password.as_str())];
        // A confidential client with the default grants: neither the password nor the refresh grant.
        let job = create_client_with(&app, &admin.access, json!({"name": "job"})).await;
        let (id, secret) = (job["client_id"].as_str().unwrap(), job["client_secret"].as_str().unwrap());
        assert_eq!(error_of(post_basic(&app, "/oauth/token", id, secret, &password).await).await, unauthorized);
        let session = app.login(&user).await;
        let refresh = [("grant_type", "refresh_token"), ("refresh_token", session.refresh.as_str())];
        assert_eq!(error_of(post_basic(&app, "/oauth/token", id, secret, &refresh).await).await, unauthorized);
        // One with only the password grant may not use the client-credentials grant.
        let app_client = create_client_with(&app, &admin.access, json!({"name": "app", "grant_types": ["password"]})).await;
        let (app_id, app_secret) = (app_client["client_id"].as_str().unwrap(), app_client["client_secret"].as_str().unwrap());
        let credentials = [("grant_type", "client_credentials")];
        assert_eq!(error_of(post_basic(&app, "/oauth/token", app_id, app_secret, &credentials).await).await, unauthorized);
        assert_eq!(post_basic(&app, "/oauth/token", app_id, app_secret, &password).await.status(), Status::Ok);
        // A public client: never the client-credentials or the password grant.
        let public = public_client(&app, &admin.access, None).await;
        let form = [("grant_type", "client_credentials"), ("client_id", public.as_str())];
        assert_eq!(error_of(post_form(&app, "/oauth/token", &form).await).await, unauthorized);
        let mut form = password.to_vec();
        form.push(("client_id", public.as_str()));
        assert_eq!(error_of(post_form(&app, "/oauth/token", &form).await).await, unauthorized);
        // The first-party client (no registered client's credentials) may always use the password grant.
        assert_eq!(post_form(&app, "/oauth/token", &password).await.status(), Status::Ok);
        // Nothing about the session the refused grant named has changed.
        assert_eq!(app.refresh_response(&session.refresh).await.status(), Status::Ok);
    }

    async fn a_public_client_identifies_without_a_secret_and_one_presenting_a_secret_is_invalid_client(backend) {
        let app = TestApp::new(backend).await;
        let (_, admin) = with_admin(&app).await;
        let public = public_client(&app, &admin.access, None).await;
        let user = app.with_user().await;
        let session = app.login(&user).await;
        let refresh = [("grant_type", "refresh_token"), ("refresh_token", session.refresh.as_str())];
        let response = post_basic(&app, "/oauth/token", &public, "a-secret", &refresh).await;
        assert_eq!(error_of(response).await, (Status::Unauthorized, "invalid_client".into()));
        let mut form = refresh.to_vec();
        form.extend([("client_id", public.as_str()), ("client_secret", "a-secret")]);
        assert_eq!(error_of(post_form(&app, "/oauth/token", &form).await).await, (Status::Unauthorized, "invalid_client".into()));
        // Identified by its id alone, it is refused this first-party session's token: not its own.
        let mut form = refresh.to_vec();
        form.push(("client_id", public.as_str()));
        assert_eq!(error_of(post_form(&app, "/oauth/token", &form).await).await, (Status::BadRequest, "invalid_grant".into()));
        assert_eq!(app.refresh_response(&session.refresh).await.status(), Status::Ok, "and nothing changed");
    }
}
