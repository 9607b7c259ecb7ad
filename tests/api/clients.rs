//! Service clients: administration with delegation, the client-credentials grant (also driven by
//! the `oauth2` crate), client tokens on `/admin` routes and refused on "my account" routes,
//! deletion that rejects tokens here at once and on another instance within a second, and
//! application permissions (introspection is `introspection.rs`).

use crate::admin_support::*;
use crate::client_types::create_client_with;
use crate::helpers::*;
use crate::introspection::introspect;
use crate::oauth::post_form;
use crate::on_both_backends;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use rocket::http::{ContentType, Header, Status};
use rocket::local::asynchronous::LocalResponse;
use serde_json::{json, Value};

/// A client created through the API by `token`: `(client_id, client_secret)`.
pub async fn create_client(app: &TestApp, token: &str, permissions: &[&str]) -> (String, String) {
    let response =
        app.post_authed("/admin/clients", token, json!({"name": "reports", "permissions": permissions})).await;
    assert_eq!(response.status(), Status::Created);
    assert_eq!(response.headers().get_one("Cache-Control"), Some("no-store"));
    let body: Value = response.into_json().await.unwrap();
    (body["client_id"].as_str().unwrap().to_owned(), body["client_secret"].as_str().unwrap().to_owned())
}

/// `POST path` with a form and HTTP Basic client credentials.
pub async fn post_basic<'a>(
    app: &'a TestApp,
    path: &str,
    id: &str,
    secret: &str,
    form: &[(&str, &str)],
) -> LocalResponse<'a> {
    let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
    let basic = STANDARD.encode(format!("{id}:{secret}"));
    let request = app
        .client
        .post(path.to_owned())
        .header(ContentType::Form)
        .header(Header::new("Authorization", format!("Basic {basic}")));
    request.body(body).dispatch().await
}

/// A client-credentials token by `client_secret_post`.
pub async fn client_token(app: &TestApp, id: &str, secret: &str, scope: Option<&str>) -> Value {
    let mut form = vec![("grant_type", "client_credentials"), ("client_id", id), ("client_secret", secret)];
    if let Some(scope) = scope {
        form.push(("scope", scope));
    }
    let response = post_form(app, "/oauth/token", &form).await;
    assert_eq!(response.status(), Status::Ok);
    response.into_json().await.unwrap()
}

fn claims_of(token: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token.split('.').nth(1).unwrap()).unwrap()).unwrap()
}

on_both_backends! {
    async fn an_admin_creates_lists_rekeys_and_deletes_clients_and_the_secret_is_shown_once(backend) {
        let app = TestApp::new(backend).await;
        let (_, admin) = with_admin(&app).await;
        let (id, secret) = create_client(&app, &admin.access, &["users:read"]).await;
        assert!(URL_SAFE_NO_PAD.decode(&secret).unwrap().len() >= 32, "at least 256 bits");
        let list = get_json(&app, "/admin/clients", &admin.access).await;
        let listed = &list["clients"][0];
        assert_eq!((listed["client_id"].as_str(), listed["name"].as_str(), &listed["permissions"], &listed["disabled"]), (Some(id.as_str()), Some("reports"), &json!(["users:read"]), &json!(false)));
        assert!(listed.get("client_secret").is_none() && listed["created_at"].is_string());
        let response = app.post_authed(&format!("/admin/clients/{id}/secret"), &admin.access, json!({})).await;
        assert_eq!(response.status(), Status::Ok);
        let rotated: Value = response.into_json().await.unwrap();
        let new_secret = rotated["client_secret"].as_str().unwrap();
        assert_eq!(rotated["client_id"], id.as_str());
        let old = post_form(&app, "/oauth/token", &[("grant_type", "client_credentials"), ("client_id", &id), ("client_secret", &secret)]).await;
        assert_eq!(error_of(old).await, (Status::Unauthorized, "invalid_client".into()), "the old secret stops working");
        client_token(&app, &id, new_secret, None).await;
        assert_eq!(app.delete_authed(&format!("/admin/clients/{id}"), &admin.access).await.status(), Status::NoContent);
        assert_eq!(app.delete_authed(&format!("/admin/clients/{id}"), &admin.access).await.status(), Status::NotFound);
        let audit = get_json(&app, "/admin/audit?event=client_created", &admin.access).await;
        assert_eq!(audit["events"].as_array().unwrap().len(), 1);
    }

    async fn nobody_gives_a_client_a_permission_they_do_not_hold(backend) {
        let app = TestApp::new(backend).await;
        let (_, admin) = with_admin(&app).await;
        create_role(&app, &admin, "client-manager", &["clients:read", "clients:write", "users:read"]).await;
        let (_, manager) = user_with_roles(&app, "manager@example.com", &["client-manager"]).await;
        create_client(&app, &manager.access, &["users:read"]).await;
        let response = app.post_authed("/admin/clients", &manager.access, json!({"name": "x", "permissions": ["users:write"]})).await;
        assert_eq!(error_of(response).await, (Status::Forbidden, "insufficient_permissions".into()));
        // Nor re-key or delete a client more powerful than they are.
        let (strong, _) = create_client(&app, &admin.access, &["users:write"]).await;
        let response = app.post_authed(&format!("/admin/clients/{strong}/secret"), &manager.access, json!({})).await;
        assert_eq!(error_of(response).await, (Status::Forbidden, "insufficient_permissions".into()));
        let response = app.post_authed("/admin/clients", &manager.access, json!({"name": "x", "permissions": ["no:such"]})).await;
        assert_eq!(error_of(response).await, (Status::UnprocessableEntity, "invalid_request".into()));
        let (_, plain) = user_with_roles(&app, "plain@example.com", &["user"]).await;
        let response = app.get_authed("/admin/clients", &plain.access).await;
        assert_eq!(error_of(response).await, (Status::Forbidden, "insufficient_permissions".into()));
    }

    async fn the_client_credentials_grant_issues_a_scoped_access_token_without_a_refresh_token(backend) {
        let app = TestApp::new(backend).await;
        let (_, admin) = with_admin(&app).await;
        let (id, secret) = create_client(&app, &admin.access, &["users:read", "audit:read"]).await;
        let response = post_basic(&app, "/oauth/token", &id, &secret, &[("grant_type", "client_credentials"), ("scope", "users:read")]).await;
        assert_eq!(response.status(), Status::Ok);
        assert_eq!(response.headers().get_one("Cache-Control"), Some("no-store"));
        let body: Value = response.into_json().await.unwrap();
        let keys: std::collections::BTreeSet<&str> = body.as_object().unwrap().keys().map(|k| k.as_str()).collect();
        assert_eq!(keys, ["access_token", "expires_in", "scope", "token_type"].into());
        assert_eq!((&body["token_type"], &body["scope"], &body["expires_in"]), (&json!("Bearer"), &json!("users:read"), &json!(900)));
        let token = body["access_token"].as_str().unwrap();
        let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token.split('.').next().unwrap()).unwrap()).unwrap();
        assert_eq!(header["typ"], "at+jwt");
        let claims = claims_of(token);
        assert_eq!((&claims["sub"], &claims["client_id"], &claims["scope"]), (&json!(id), &json!(id), &json!("users:read")));
        assert!(claims.get("sid").is_none() && claims.get("roles").is_none());
        for claim in ["iss", "aud", "jti", "iat", "exp"] {
            assert!(claims.get(claim).is_some(), "{claim}");
        }
        // No scope: all of the client's permissions.
        let all = client_token(&app, &id, &secret, None).await;
        assert_eq!(all["scope"], "audit:read users:read");
        let response = post_basic(&app, "/oauth/token", &id, &secret, &[("grant_type", "client_credentials"), ("scope", "users:write")]).await;
        assert_eq!(error_of(response).await, (Status::BadRequest, "invalid_scope".into()));
    }

    async fn failed_client_authentication_is_401_invalid_client_with_a_basic_challenge_and_is_throttled(backend) {
        let app = TestApp::builder(backend).with_config("throttle_pair_failures", 3).build().await;
        let (_, admin) = with_admin(&app).await;
        let (id, secret) = create_client(&app, &admin.access, &["users:read"]).await;
        let response = post_basic(&app, "/oauth/token", &id, "wrong", &[("grant_type", "client_credentials")]).await;
        assert_eq!(response.headers().get_one("WWW-Authenticate").map(|h| h.starts_with("Basic")), Some(true));
        assert_eq!(error_of(response).await, (Status::Unauthorized, "invalid_client".into()));
        let response = post_form(&app, "/oauth/token", &[("grant_type", "client_credentials"), ("client_id", &id), ("client_secret", "wrong")]).await;
        assert_eq!(response.headers().get_one("WWW-Authenticate"), None);
        assert_eq!(error_of(response).await, (Status::Unauthorized, "invalid_client".into()));
        let unknown = post_form(&app, "/oauth/token", &[("grant_type", "client_credentials"), ("client_id", "nobody"), ("client_secret", "x")]).await;
        assert_eq!(error_of(unknown).await, (Status::Unauthorized, "invalid_client".into()));
        let none = post_form(&app, "/oauth/token", &[("grant_type", "client_credentials")]).await;
        assert_eq!(error_of(none).await, (Status::Unauthorized, "invalid_client".into()));
        // The third failure locks the client from this address: even the right secret waits.
        post_basic(&app, "/oauth/token", &id, "wrong", &[("grant_type", "client_credentials")]).await;
        let locked = post_basic(&app, "/oauth/token", &id, &secret, &[("grant_type", "client_credentials")]).await;
        assert!(locked.headers().get_one("Retry-After").is_some());
        assert_eq!(error_of(locked).await, (Status::TooManyRequests, "too_many_requests".into()));
        app.clock.advance(120);
        client_token(&app, &id, &secret, None).await;
    }

    async fn a_users_grant_checks_client_credentials_that_name_one_of_our_clients_and_ignores_the_rest(backend) {
        let app = TestApp::new(backend).await;
        let (_, admin) = with_admin(&app).await;
        let body = json!({"name": "app", "grant_types": ["password", "refresh_token"]});
        let created = create_client_with(&app, &admin.access, body).await;
        let (id, secret) = (created["client_id"].as_str().unwrap().to_owned(), created["client_secret"].as_str().unwrap().to_owned());
        let user = app.with_user().await;
        let password = [("grant_type", "password"), ("username", user.email.as_str()), ("password", user.password.as_str())];
        // A wrong secret of a real client, by Basic and by the form: 401 invalid_client, no tokens.
        let response = post_basic(&app, "/oauth/token", &id, "wrong", &password).await;
        assert_eq!(response.headers().get_one("WWW-Authenticate").map(|h| h.starts_with("Basic")), Some(true));
        assert_eq!(error_of(response).await, (Status::Unauthorized, "invalid_client".into()));
        let mut form = password.to_vec();
        form.extend([("client_id", id.as_str()), ("client_secret", "wrong")]);
        assert_eq!(error_of(post_form(&app, "/oauth/token", &form).await).await, (Status::Unauthorized, "invalid_client".into()));
        // A confidential client's id without its secret is no authentication either.
        let mut bare = password.to_vec();
        bare.push(("client_id", id.as_str()));
        assert_eq!(error_of(post_form(&app, "/oauth/token", &bare).await).await, (Status::Unauthorized, "invalid_client".into()));
        // The right secret, or an id of the app's own choosing (the first-party client): tokens.
        let granted = post_basic(&app, "/oauth/token", &id, &secret, &password).await;
        assert_eq!(granted.status(), Status::Ok);
        let refresh: Value = granted.into_json().await.unwrap();
        let refresh = refresh["refresh_token"].as_str().unwrap().to_owned();
        assert_eq!(post_basic(&app, "/oauth/token", "my-app", "anything", &password).await.status(), Status::Ok);
        // The refresh grant checks them the same way.
        let rotate = [("grant_type", "refresh_token"), ("refresh_token", refresh.as_str())];
        let response = post_basic(&app, "/oauth/token", &id, "wrong", &rotate).await;
        assert_eq!(error_of(response).await, (Status::Unauthorized, "invalid_client".into()));
        assert_eq!(post_basic(&app, "/oauth/token", &id, &secret, &rotate).await.status(), Status::Ok);
    }

    async fn simultaneous_wrong_secrets_on_a_users_grant_are_throttled_like_the_client_grant(backend) {
        let app = TestApp::builder(backend).with_config("throttle_pair_failures", 3).build().await;
        let (_, admin) = with_admin(&app).await;
        let (id, _) = create_client(&app, &admin.access, &[]).await;
        let user = app.with_user().await;
        let mut form = vec![("grant_type", "password"), ("username", user.email.as_str()), ("password", user.password.as_str())];
        form.extend([("client_id", id.as_str()), ("client_secret", "wrong")]);
        let attempts = (0..12).map(|_| post_form(&app, "/oauth/token", &form));
        let statuses: Vec<Status> = futures::future::join_all(attempts).await.iter().map(|r| r.status()).collect();
        let checked = statuses.iter().filter(|s| **s == Status::Unauthorized).count();
        let throttled = statuses.iter().filter(|s| **s == Status::TooManyRequests).count();
        assert!(checked <= 3 && checked + throttled == 12, "no tokens, at most 3 secrets checked: {statuses:?}");
        // Hostile values: a NUL byte and a 60 KB secret are just wrong secrets; over the form
        // limit the body is refused before anything is checked.
        let other = app.with_user_email("other@example.com").await;
        let mut hostile = vec![("grant_type", "password"), ("username", other.email.as_str()), ("password", other.password.as_str())];
        let long = "x".repeat(60 * 1024);
        for bad in ["a\0b", long.as_str()] {
            let mut form = hostile.clone();
            form.extend([("client_id", "my-app"), ("client_secret", bad)]);
            assert_eq!(post_form(&app, "/oauth/token", &form).await.status(), Status::Ok, "not one of our clients");
        }
        let huge = "x".repeat(70 * 1024);
        hostile.extend([("client_id", id.as_str()), ("client_secret", huge.as_str())]);
        let (status, code) = error_of(post_form(&app, "/oauth/token", &hostile).await).await;
        assert_eq!((status, code.as_str()), (Status::PayloadTooLarge, "payload_too_large"));
    }

    async fn client_tokens_work_on_admin_routes_in_their_scope_and_never_on_my_account_routes(backend) {
        let app = TestApp::new(backend).await;
        let (_, admin) = with_admin(&app).await;
        let (id, secret) = create_client(&app, &admin.access, &["users:read", "clients:write"]).await;
        let token = client_token(&app, &id, &secret, Some("users:read")).await["access_token"].as_str().unwrap().to_owned();
        assert_eq!(app.get_authed("/admin/users", &token).await.status(), Status::Ok);
        let response = app.get_authed("/admin/roles", &token).await;
        assert_eq!(error_of(response).await, (Status::Forbidden, "insufficient_permissions".into()));
        // Not in the narrowed scope, though the client holds it.
        let response = app.post_authed("/admin/clients", &token, json!({"name": "n", "permissions": []})).await;
        assert_eq!(error_of(response).await, (Status::Forbidden, "insufficient_permissions".into()));
        for path in ["/users/me", "/auth/sessions", "/users/me/token"] {
            let response = app.get_authed(path, &token).await;
            assert_eq!(error_of(response).await, (Status::Forbidden, "insufficient_permissions".into()), "{path}");
        }
        let response = app.post_authed("/auth/logout", &token, json!({})).await;
        assert_eq!(error_of(response).await, (Status::Forbidden, "insufficient_permissions".into()));
        // Acting as the client is audited with it as the actor.
        let writer = client_token(&app, &id, &secret, Some("clients:write")).await["access_token"].as_str().unwrap().to_owned();
        let response = app.post_authed("/admin/clients", &writer, json!({"name": "child", "permissions": ["users:read"]})).await;
        assert_eq!(error_of(response).await, (Status::Forbidden, "insufficient_permissions".into()), "a client delegates only its scope");
        assert_eq!(app.post_authed("/admin/clients", &writer, json!({"name": "child", "permissions": []})).await.status(), Status::Created);
        let audit = get_json(&app, "/admin/audit?event=client_created", &admin.access).await;
        let by_client = audit["events"].as_array().unwrap().iter().find(|e| e["detail"]["name"] == "child").expect("audited");
        assert_eq!(by_client["actor_id"], id.as_str(), "the client is the actor");
        let denied = get_json(&app, "/admin/audit?event=grant_denied", &admin.access).await;
        assert_eq!(denied["events"][0]["actor_id"], id.as_str());
    }

    async fn a_deleted_clients_tokens_are_rejected_at_once_here_and_within_a_second_elsewhere(backend) {
        let app = TestApp::new(backend).await;
        let other = app.second_instance(|b| b).await;
        let (_, admin) = with_admin(&app).await;
        let (id, secret) = create_client(&app, &admin.access, &["users:read"]).await;
        let token = client_token(&app, &id, &secret, None).await["access_token"].as_str().unwrap().to_owned();
        assert_eq!(other.get_authed("/admin/users", &token).await.status(), Status::Ok);
        assert_eq!(app.delete_authed(&format!("/admin/clients/{id}"), &admin.access).await.status(), Status::NoContent);
        let response = app.get_authed("/admin/users", &token).await;
        assert_eq!(error_of(response).await, (Status::Unauthorized, "invalid_token".into()));
        eventually("the other instance refuses the deleted client's token", async || {
            other.get_authed("/admin/users", &token).await.status() != Status::Ok
        })
        .await;
        // Introspection on the other instance agrees.
        let (asker, asker_secret) = create_client(&app, &admin.access, &["tokens:introspect"]).await;
        assert_eq!(introspect(&other, &asker, &asker_secret, &token).await, json!({"active": false}));
        let gone = post_form(&app, "/oauth/token", &[("grant_type", "client_credentials"), ("client_id", &id), ("client_secret", &secret)]).await;
        assert_eq!(error_of(gone).await, (Status::Unauthorized, "invalid_client".into()));
    }

    async fn application_permissions_are_held_by_roles_and_clients_like_built_in_ones(backend) {
        let app = TestApp::builder(backend).with_config("permissions", json!(["reports:read", "reports:write"])).build().await;
        let (_, admin) = with_admin(&app).await;
        create_role(&app, &admin, "analyst", &["reports:read"]).await;
        let (id, secret) = create_client(&app, &admin.access, &["reports:read", "reports:write", "tokens:introspect"]).await;
        let token = client_token(&app, &id, &secret, Some("reports:read")).await;
        assert_eq!(token["scope"], "reports:read");
        let response = app.post_authed("/admin/roles", &admin.access, json!({"name": "x", "permissions": ["reports:delete"]})).await;
        assert_eq!(error_of(response).await, (Status::UnprocessableEntity, "invalid_request".into()));
        let (_, analyst) = user_with_roles(&app, "analyst@example.com", &["analyst"]).await;
        let introspected = introspect(&app, &id, &secret, &analyst.access).await;
        assert_eq!(introspected["roles"], json!(["analyst"]));
        // The admin role holds them too, and says so wherever it shows its permissions.
        let roles: Value = app.get_authed("/admin/roles", &admin.access).await.into_json().await.unwrap();
        let shown = roles["roles"].as_array().unwrap().iter().find(|r| r["name"] == "admin").unwrap()["permissions"].clone();
        for permission in ["reports:read", "reports:write", "users:write", "metrics:read"] {
            assert!(shown.as_array().unwrap().contains(&json!(permission)), "{permission} in {shown}");
        }
        let response = app.put_authed("/admin/roles/admin", &admin.access, json!({"permissions": shown})).await;
        assert_eq!(response.status(), Status::Ok, "setting admin's permissions to what it holds is no change");
        let audit: Value = app.get_authed("/admin/audit?event=role_updated", &admin.access).await.into_json().await.unwrap();
        assert_eq!(audit["events"][0]["detail"]["permissions"], shown);
    }

    async fn the_oauth2_crate_drives_the_client_credentials_grant(backend) {
        use oauth2::basic::BasicClient;
        use oauth2::{ClientId, ClientSecret, Scope, TokenResponse, TokenUrl};
        let app = TestApp::new(backend).await;
        let (_, admin) = with_admin(&app).await;
        let (id, secret) = create_client(&app, &admin.access, &["users:read", "audit:read"]).await;
        let app_ref = &app;
        let http = |request: oauth2::HttpRequest| async move {
            let method = request.method().as_str().parse::<rocket::http::Method>().unwrap();
            let mut local = app_ref.client.req(method, request.uri().path().to_owned());
            for (name, value) in request.headers() {
                local = local.header(Header::new(name.as_str().to_owned(), value.to_str().unwrap().to_owned()));
            }
            let response = local.body(request.body().clone()).dispatch().await;
            let mut builder = http::Response::builder().status(response.status().code);
            for header in response.headers().iter() {
                builder = builder.header(header.name().as_str(), header.value());
            }
            let body = response.into_bytes().await.unwrap_or_default();
            Ok::<_, std::io::Error>(builder.body(body).unwrap())
        };
        let client = BasicClient::new(ClientId::new(id.clone()))
            .set_client_secret(ClientSecret::new(secret.clone()))
            .set_token_uri(TokenUrl::new("http://localhost/oauth/token".into()).unwrap());
        let token = client.exchange_client_credentials().add_scope(Scope::new("users:read".into())).request_async(&http).await.expect("client credentials");
        assert!(token.refresh_token().is_none());
        assert_eq!(token.scopes().map(|s| s.iter().map(|s| s.to_string()).collect::<Vec<_>>()), Some(vec!["users:read".to_string()]));
        assert_eq!(app.get_authed("/admin/users", token.access_token().secret()).await.status(), Status::Ok);
        let wrong = BasicClient::new(ClientId::new(id))
            .set_client_secret(ClientSecret::new("wrong".into()))
            .set_token_uri(TokenUrl::new("http://localhost/oauth/token".into()).unwrap());
        match wrong.exchange_client_credentials().request_async(&http).await {
            Err(oauth2::RequestTokenError::ServerResponse(e)) => assert_eq!(e.error().as_ref(), "invalid_client"),
            other => panic!("expected invalid_client, got {other:?}"),
        }
    }
}
