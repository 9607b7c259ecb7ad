//! Contract v3, client authentication throttling: counted per (address, client) and per address
//! in counters of their own, so strangers who know a `client_id` cannot lock the client out and
//! failed user logins never count against a client, while one guessing address is still stopped.

use crate::admin_support::*;
use crate::helpers::*;
use crate::on_both_backends;
use rocket::http::{ContentType, Status};
use rocket::local::asynchronous::LocalResponse;
use serde_json::{json, Value};

const OWN_ADDRESS: &str = "198.51.100.7";

/// `POST path` with a form, from `ip`.
async fn post_form_from<'a>(app: &'a TestApp, path: &str, form: &[(&str, &str)], ip: &str) -> LocalResponse<'a> {
    let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
    let request = app.client.post(path.to_owned()).header(ContentType::Form);
    request.remote(format!("{ip}:4000").parse().unwrap()).body(body).dispatch().await
}

/// The client-credentials grant for `id` with `secret`, from `ip`.
async fn token_from<'a>(app: &'a TestApp, id: &str, secret: &str, ip: &str) -> LocalResponse<'a> {
    let form = [("grant_type", "client_credentials"), ("client_id", id), ("client_secret", secret)];
    post_form_from(app, "/oauth/token", &form, ip).await
}

/// Introspection of `token` by `id` with `secret`, from `ip`.
async fn introspect_from<'a>(app: &'a TestApp, id: &str, secret: &str, token: &str, ip: &str) -> LocalResponse<'a> {
    let form = [("client_id", id), ("client_secret", secret), ("token", token)];
    post_form_from(app, "/oauth/introspect", &form, ip).await
}

/// A client (created by the admin) and its secret.
async fn client(app: &TestApp, admin: &Tokens) -> (String, String) {
    let body = json!({"name": "backend", "permissions": ["users:read", "tokens:introspect"]});
    let response = app.post_authed("/admin/clients", &admin.access, body).await;
    assert_eq!(response.status(), Status::Created);
    let created: Value = response.into_json().await.unwrap();
    (created["client_id"].as_str().unwrap().to_owned(), created["client_secret"].as_str().unwrap().to_owned())
}

/// The client authenticates from its own address at both endpoints.
async fn client_gets_in(app: &TestApp, id: &str, secret: &str) {
    let response = token_from(app, id, secret, OWN_ADDRESS).await;
    assert_eq!(response.status(), Status::Ok, "/oauth/token from the client's own address");
    let body: Value = response.into_json().await.unwrap();
    let token = body["access_token"].as_str().unwrap();
    let response = introspect_from(app, id, secret, token, OWN_ADDRESS).await;
    assert_eq!(response.status(), Status::Ok, "/oauth/introspect from the client's own address");
}

on_both_backends! {
    async fn strangers_guessing_a_clients_secret_from_ten_addresses_do_not_lock_it_out(backend) {
        let app = TestApp::new(backend).await;
        let (_, admin) = with_admin(&app).await;
        let (id, secret) = client(&app, &admin).await;
        for n in 0..50 {
            let ip = format!("203.0.113.{}", n % 10 + 1);
            let response = if n % 2 == 0 {
                token_from(&app, &id, "wrong", &ip).await
            } else {
                introspect_from(&app, &id, "wrong", "whatever", &ip).await
            };
            assert_eq!(error_of(response).await, (Status::Unauthorized, "invalid_client".into()));
        }
        let stranger = token_from(&app, &id, &secret, "203.0.113.1").await;
        assert_eq!(stranger.status(), Status::TooManyRequests, "a guessing address locks out only itself");
        client_gets_in(&app, &id, &secret).await;
    }

    async fn failed_user_logins_naming_a_client_never_count_against_it(backend) {
        let app = TestApp::new(backend).await;
        let (_, admin) = with_admin(&app).await;
        let (id, secret) = client(&app, &admin).await;
        let username = format!("client:{id}");
        for _ in 0..60 {
            let login = json!({"email": username, "password": "wrong password!"});
            app.json_request(app.client.post("/auth/login"), login)
                .remote(format!("{OWN_ADDRESS}:5000").parse().unwrap())
                .dispatch()
                .await;
            let grant = [("grant_type", "password"), ("username", username.as_str()), ("password", "wrong password!")];
            post_form_from(&app, "/oauth/token", &grant, OWN_ADDRESS).await;
        }
        client_gets_in(&app, &id, &secret).await;
    }

    async fn one_address_guessing_secrets_is_still_throttled(backend) {
        let app = TestApp::builder(backend)
            .with_config("throttle_pair_failures", 3)
            .with_config("throttle_address_failures", 6)
            .build()
            .await;
        let (_, admin) = with_admin(&app).await;
        let (id, secret) = client(&app, &admin).await;
        let guesser = "203.0.113.66";
        for _ in 0..3 {
            assert_eq!(token_from(&app, &id, "wrong", guesser).await.status(), Status::Unauthorized);
        }
        let locked = token_from(&app, &id, &secret, guesser).await;
        assert!(locked.headers().get_one("Retry-After").is_some());
        assert_eq!(error_of(locked).await, (Status::TooManyRequests, "too_many_requests".into()), "per (address, client)");
        client_gets_in(&app, &id, &secret).await;
        // Spread over many client ids, the address bound stops the same address.
        let (other, other_secret) = client(&app, &admin).await;
        let sprayer = "203.0.113.77";
        for _ in 0..6 {
            post_form_from(&app, "/oauth/token", &[("grant_type", "client_credentials"), ("client_id", &uuid::Uuid::new_v4().to_string()), ("client_secret", "x")], sprayer).await;
        }
        let locked = token_from(&app, &other, &other_secret, sprayer).await;
        assert_eq!(error_of(locked).await, (Status::TooManyRequests, "too_many_requests".into()), "per address");
        assert_eq!(token_from(&app, &other, &other_secret, OWN_ADDRESS).await.status(), Status::Ok);
    }
}
