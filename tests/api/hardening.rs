//! Contract v2 hardening: hostile input never yields a 5xx, the client address is the TCP peer
//! unless configured, account data is never cacheable, common passwords are refused, and ending
//! an ended session records nothing new.

use crate::admin_support::*;
use crate::helpers::*;
use crate::on_both_backends;
use rocket::http::{Header, Status};
use serde_json::{json, Value};

async fn session_ip(app: &TestApp, tokens: &Tokens) -> Value {
    let sessions = get_json(app, "/auth/sessions", &tokens.access).await;
    sessions["sessions"][0]["ip"].clone()
}

/// Logs `user` in from `peer` claiming to be 203.0.113.9 in `X-Real-IP`.
async fn login_claiming_another_address(app: &TestApp, user: &TestUser, peer: &str) -> Tokens {
    let body = json!({"email": user.email, "password": user.password});
    let request = app
        .json_request(app.client.post("/auth/login"), body)
        .remote(format!("{peer}:4000").parse().unwrap())
        .header(Header::new("X-Real-IP", "203.0.113.9"));
    tokens(request.dispatch().await).await
}

on_both_backends! {
    async fn without_a_configuration_file_the_client_address_is_the_tcp_peer(backend) {
        let app = TestApp::builder(backend).without_config_file().build().await;
        let user = app.with_user().await;
        let tokens = login_claiming_another_address(&app, &user, "127.0.0.2").await;
        assert_eq!(session_ip(&app, &tokens).await, json!("127.0.0.2"), "X-Real-IP is not trusted by default");
    }

    async fn a_proxy_header_is_used_only_when_the_operator_names_it(backend) {
        let app = TestApp::builder(backend).without_config_file().with_rocket_config("ip_header", "X-Real-IP").build().await;
        let user = app.with_user().await;
        let tokens = login_claiming_another_address(&app, &user, "127.0.0.2").await;
        assert_eq!(session_ip(&app, &tokens).await, json!("203.0.113.9"));
    }

    async fn hostile_emails_at_login_get_the_same_401_as_an_unknown_email(backend) {
        let app = TestApp::new(backend).await;
        app.with_user().await;
        let long = format!("{}@example.com", "a".repeat(250));
        for email in ["alice\u{0}@example.com", "\u{0}", long.as_str(), "alice@example.com\u{0}"] {
            let response = app.login_response(email, "whatever password").await;
            assert_eq!(error_of(response).await, (Status::Unauthorized, "invalid_credentials".into()), "{email:?}");
        }
        let surrogate = r#"{"email": "alice\ud800@example.com", "password": "whatever password"}"#;
        let response = app.client.post("/auth/login").header(rocket::http::ContentType::JSON).body(surrogate).dispatch().await;
        assert_eq!(error_of(response).await, (Status::Unauthorized, "invalid_credentials".into()), "a lone surrogate");
    }

    async fn hostile_emails_at_registration_get_422(backend) {
        let app = TestApp::new(backend).await;
        let long = format!("{}@example.com", "a".repeat(250));
        for email in ["bob\u{0}@example.com", long.as_str()] {
            let (status, code) = error_of(app.register(email, PASSWORD).await).await;
            assert_eq!((status, code.as_str()), (Status::UnprocessableEntity, "invalid_request"), "{email:?}");
        }
        let surrogate = json!({"password": PASSWORD}).to_string().replace('{', r#"{"email": "bob\udc00@example.com", "#);
        let response = app.client.post("/auth/register").header(rocket::http::ContentType::JSON).body(surrogate).dispatch().await;
        assert_eq!(response.status(), Status::UnprocessableEntity);
    }

    async fn nul_characters_anywhere_in_admin_input_never_give_a_5xx(backend) {
        let app = TestApp::new(backend).await;
        let (_, admin) = with_admin(&app).await;
        let user = app.with_user().await;
        let checks = [
            app.post_authed("/admin/roles", &admin.access, json!({"name": "x", "description": "a\u{0}b", "permissions": []})).await.status(),
            app.put_authed(&format!("/admin/users/{}/roles", user.id), &admin.access, json!({"roles": ["us\u{0}er"]})).await.status(),
            app.get_authed("/admin/users?email=a%00b", &admin.access).await.status(),
            app.get_authed("/admin/audit?event=a%00b", &admin.access).await.status(),
            app.put_authed("/admin/roles/a%00b", &admin.access, json!({"description": "x"})).await.status(),
            app.delete_authed("/admin/roles/a%00b", &admin.access).await.status(),
            app.post("/auth/refresh", json!({"refresh_token": "a\u{0}b"})).await.status(),
        ];
        for (i, status) in checks.iter().enumerate() {
            assert!(status.class().is_client_error() || status.class().is_success(), "check {i}: {status}");
        }
    }

    async fn every_response_to_a_bearer_request_is_not_stored(backend) {
        let app = TestApp::new(backend).await;
        let (_, admin) = with_admin(&app).await;
        for path in ["/users/me", "/auth/sessions", "/admin/users", "/admin/roles", "/admin/audit", "/users/me/token", "/admin/nope"] {
            let response = app.get_authed(path, &admin.access).await;
            assert_eq!(response.headers().get_one("Cache-Control"), Some("no-store"), "{path}");
        }
        let response = app.get_authed("/users/me", "garbage").await;
        assert_eq!(response.headers().get_one("Cache-Control"), Some("no-store"), "a refused bearer request too");
    }

    async fn common_passwords_are_refused_with_422_naming_the_password(backend) {
        let app = TestApp::new(backend).await;
        for password in ["password", "12345678", "iloveyou", "PASSWORD1", "Iloveyou"] {
            let (status, code, description) = error_with_description(app.register("carol@example.com", password).await).await;
            assert_eq!((status, code.as_str()), (Status::UnprocessableEntity, "invalid_request"), "{password}");
            assert!(description.starts_with("password"), "{description}");
        }
        assert_eq!(app.register("carol@example.com", "Ab1-Ab1-").await.status(), Status::Created, "in no list");
        let user = TestUser { id: String::new(), email: "carol@example.com".into(), password: "Ab1-Ab1-".into() };
        let tokens = app.login(&user).await;
        let change = json!({"current_password": "Ab1-Ab1-", "new_password": "football"});
        let (status, _, description) = error_with_description(app.put_authed("/users/me/password", &tokens.access, change).await).await;
        assert_eq!(status, Status::UnprocessableEntity);
        assert!(description.starts_with("new_password"), "{description}");
    }

    async fn deleting_an_ended_session_again_records_nothing_new(backend) {
        let app = TestApp::new(backend).await;
        let (admin_user, admin) = with_admin(&app).await;
        let other = app.login(&admin_user).await;
        let path = format!("/auth/sessions/{}", other.session_id);
        assert_eq!(app.delete_authed(&path, &admin.access).await.status(), Status::NoContent);
        let logouts = |log: Value| log["events"].as_array().unwrap().iter().filter(|e| e["event"] == "logout").count();
        let before = logouts(get_json(&app, "/admin/audit?event=logout", &admin.access).await);
        for _ in 0..3 {
            let status = app.delete_authed(&path, &admin.access).await.status();
            assert!(status == Status::NoContent || status == Status::NotFound, "{status}");
        }
        assert_eq!(logouts(get_json(&app, "/admin/audit?event=logout", &admin.access).await), before);
    }
}
