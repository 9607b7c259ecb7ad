//! Sessions of third-party clients (contract, "Who may use which endpoint"): they may read who
//! the user is and end themselves, and nothing else about the account; revoking the consent or
//! deleting the client ends them.

use crate::admin_support::with_admin;
use crate::code_grant_support::*;
use crate::helpers::*;
use crate::oidc_support::{auth, conn};
use crate::on_both_backends;
use portcullis::admin::client_settings::ClientFields;
use portcullis::auth::guards::RequestOrigin;
use rocket::http::Status;
use rocket::local::asynchronous::LocalResponse;
use serde_json::{json, Value};

/// A session of `client` for a new user: the token response and the user.
async fn app_session(app: &TestApp, client: &App) -> (Value, TestUser) {
    let (code, user) = code_for(app, client, "openid email").await;
    (exchanged(app, client, &code).await, user)
}

fn access(body: &Value) -> &str {
    body["access_token"].as_str().unwrap()
}

/// `method path` with a JSON `body` as `token`.
async fn send<'a>(app: &'a TestApp, method: &str, path: &str, token: &str, body: Value) -> LocalResponse<'a> {
    let request = match method {
        "GET" => app.client.get(path.to_owned()),
        "POST" => app.client.post(path.to_owned()),
        "PUT" => app.client.put(path.to_owned()),
        _ => app.client.delete(path.to_owned()),
    };
    app.json_request(app.authed(request, token), body).dispatch().await
}

async fn status_of(app: &TestApp, method: &str, path: &str, token: &str, body: Value) -> Status {
    send(app, method, path, token, body).await.status()
}

on_both_backends! {
    async fn a_third_party_session_is_refused_every_own_account_endpoint_but_the_allowed_ones(backend) {
        let app = TestApp::new(backend).await;
        let client = public_client(&app).await;
        let (body, user) = app_session(&app, &client).await;
        let token = access(&body);
        let other_session = app.login(&user).await.session_id;
        let refused = [
            ("GET", "/auth/sessions".to_owned(), json!({})),
            ("POST", "/auth/logout-all".to_owned(), json!({})),
            ("DELETE", format!("/auth/sessions/{other_session}"), json!({})),
            ("PUT", "/users/me/password".to_owned(), json!({"current_password": PASSWORD, "new_password": "another long password"})),
            ("POST", "/users/me/email".to_owned(), json!({"password": PASSWORD, "new_email": "new@example.com"})),
            ("POST", "/auth/email/verify/send".to_owned(), json!({})),
            ("POST", "/auth/mfa/totp".to_owned(), json!({"password": PASSWORD})),
            ("POST", "/auth/mfa/totp/confirm".to_owned(), json!({"code": "123456"})),
            ("DELETE", "/auth/mfa/totp".to_owned(), json!({"password": PASSWORD})),
            ("POST", "/auth/mfa/recovery-codes".to_owned(), json!({"password": PASSWORD})),
            ("GET", "/auth/passkeys".to_owned(), json!({})),
            ("POST", "/auth/passkeys/register".to_owned(), json!({"password": PASSWORD})),
            ("DELETE", format!("/auth/passkeys/{}", portcullis::db::Id::new()), json!({"password": PASSWORD})),
            ("GET", "/users/me/consents".to_owned(), json!({})),
            ("DELETE", format!("/users/me/consents/{}", client.id), json!({})),
        ];
        for (method, path, payload) in &refused {
            let response = send(&app, method, path, token, payload.clone()).await;
            assert_eq!(error_of(response).await, (Status::Forbidden, "insufficient_permissions".into()), "{method} {path}");
        }
        // Nothing of that happened: the other session lives, the password is the same.
        app.login(&user).await;
        assert_eq!(app.me_status(token).await, Status::Ok);
        assert_eq!(status_of(&app, "GET", "/oauth/userinfo", token, json!({})).await, Status::Ok);
        assert_eq!(status_of(&app, "POST", "/oauth/userinfo", token, json!({})).await, Status::Ok);
        let own = format!("/auth/sessions/{}", body["session_id"].as_str().unwrap());
        assert_eq!(status_of(&app, "DELETE", &own, token, json!({})).await, Status::NoContent);
        assert_eq!(app.me_status(token).await, Status::Unauthorized);
        // And logout, from another session of the app.
        let (body, _) = app_session(&app, &client).await;
        assert_eq!(status_of(&app, "POST", "/auth/logout", access(&body), json!({})).await, Status::NoContent);
        assert_eq!(app.me_status(access(&body)).await, Status::Unauthorized);
    }

    async fn sessions_of_portcullis_and_of_first_party_clients_use_the_account_endpoints(backend) {
        let app = TestApp::new(backend).await;
        let client = client_with(&app, ClientFields { client_type: Some("public".into()), first_party: Some(true), ..Default::default() }).await;
        let (body, user) = app_session(&app, &client).await;
        assert_eq!(status_of(&app, "GET", "/auth/sessions", access(&body), json!({})).await, Status::Ok);
        assert_eq!(status_of(&app, "GET", "/users/me/consents", access(&body), json!({})).await, Status::Ok);
        let own = app.login(&user).await;
        assert_eq!(status_of(&app, "GET", "/auth/passkeys", &own.access, json!({})).await, Status::Ok);
    }

    async fn userinfo_and_the_id_token_say_whether_the_address_is_verified(backend) {
        let app = TestApp::new(backend).await;
        let client = public_client(&app).await;
        let (body, user) = app_session(&app, &client).await;
        let info: Value = app.get_authed("/oauth/userinfo", access(&body)).await.into_json().await.unwrap();
        assert_eq!((info["sub"].as_str(), info["email_verified"].as_bool()), (Some(user.id.as_str()), Some(false)));
        // An account made by an operator counts as verified.
        let (admin, _) = with_admin(&app).await;
        let browser = browser_session(&app, admin.id.parse().unwrap(), 3600).await;
        let authorized = Authorized { user: admin.id.parse().unwrap(), browser_session: browser, scope: "openid email", nonce: None, auth_time: app.clock.now() };
        let body = exchanged(&app, &client, &issue_code(&app, &client, authorized).await).await;
        let info: Value = app.get_authed("/oauth/userinfo", access(&body)).await.into_json().await.unwrap();
        assert_eq!(info["email_verified"], json!(true));
        let (_, claims) = verified_id_token(&app, body["id_token"].as_str().unwrap(), &client).await;
        assert_eq!(claims["email_verified"], json!(true));
    }

    async fn revoking_the_consent_ends_the_clients_sessions_of_the_user(backend) {
        let app = TestApp::new(backend).await;
        let client = public_client(&app).await;
        let (body, user) = app_session(&app, &client).await;
        let (user_id, client_id) = (user.id.parse().unwrap(), client.id.parse().unwrap());
        auth(&app).grant_consent(&mut conn(&app).await, user_id, client_id, "openid email", &RequestOrigin::default()).await.unwrap();
        let own = app.login(&user).await;
        let revoked = app.delete_authed(&format!("/users/me/consents/{}", client.id), &own.access).await;
        assert_eq!(revoked.status(), Status::NoContent);
        assert_eq!(app.me_status(access(&body)).await, Status::Unauthorized);
        let refresh = refresh_as(&app, &client, body["refresh_token"].as_str().unwrap()).await;
        assert_eq!(error_of(refresh).await, (Status::BadRequest, "invalid_grant".into()));
        assert_eq!(app.me_status(&own.access).await, Status::Ok, "the user's own session stays");
    }

    async fn deleting_a_client_ends_its_users_sessions_and_consents(backend) {
        let app = TestApp::new(backend).await;
        let client = public_client(&app).await;
        let (body, user) = app_session(&app, &client).await;
        let (user_id, client_id) = (user.id.parse().unwrap(), client.id.parse().unwrap());
        auth(&app).grant_consent(&mut conn(&app).await, user_id, client_id, "openid", &RequestOrigin::default()).await.unwrap();
        let (_, admin) = with_admin(&app).await;
        assert_eq!(app.delete_authed(&format!("/admin/clients/{}", client.id), &admin.access).await.status(), Status::NoContent);
        assert_eq!(app.me_status(access(&body)).await, Status::Unauthorized);
        let own = app.login(&user).await;
        let consents: Value = app.get_authed("/users/me/consents", &own.access).await.into_json().await.unwrap();
        assert_eq!(consents["consents"], json!([]));
    }
}
