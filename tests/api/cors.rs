//! Cross-origin requests: the token, revocation, userinfo and introspection endpoints answer
//! the origins of registered redirect URIs (preflights too), and nobody else; the metadata and
//! the JWKS answer any origin.

use crate::code_grant_support::*;
use crate::helpers::*;
use crate::on_both_backends;
use rocket::http::{ContentType, Header, Method, Status};
use rocket::local::asynchronous::LocalResponse;

const APP_ORIGIN: &str = "https://app.example.com";

async fn preflight<'a>(app: &'a TestApp, path: &str, origin: &str) -> LocalResponse<'a> {
    app.client
        .req(Method::Options, path.to_owned())
        .header(Header::new("Origin", origin.to_owned()))
        .header(Header::new("Access-Control-Request-Method", "POST"))
        .header(Header::new("Access-Control-Request-Headers", "authorization, content-type"))
        .dispatch()
        .await
}

fn allowed_origin<'a>(response: &'a LocalResponse<'_>) -> Option<&'a str> {
    response.headers().get_one("Access-Control-Allow-Origin")
}

on_both_backends! {
    async fn the_oauth_endpoints_answer_preflights_and_requests_from_registered_origins_only(backend) {
        let app = TestApp::new(backend).await;
        public_client(&app).await;
        for path in ["/oauth/token", "/oauth/revoke", "/oauth/introspect", "/oauth/userinfo"] {
            let response = preflight(&app, path, APP_ORIGIN).await;
            assert_eq!(response.status(), Status::NoContent, "{path}");
            assert_eq!(allowed_origin(&response), Some(APP_ORIGIN), "{path}");
            let methods = response.headers().get_one("Access-Control-Allow-Methods").unwrap();
            assert!(methods.contains("POST"), "{path}: {methods}");
            let headers = response.headers().get_one("Access-Control-Allow-Headers").unwrap().to_ascii_lowercase();
            assert!(headers.contains("authorization") && headers.contains("content-type"), "{path}");
            for stranger in ["https://evil.example.com", "https://app.example.com:8443", "http://app.example.com", "null"] {
                let response = preflight(&app, path, stranger).await;
                assert_eq!(allowed_origin(&response), None, "{path} from {stranger}");
                assert_ne!(response.status(), Status::NoContent, "{path} from {stranger}");
            }
        }
        // The actual request, an error included: the app reads the answer.
        let response = app.client.post("/oauth/token").header(ContentType::Form)
            .header(Header::new("Origin", APP_ORIGIN)).body("grant_type=authorization_code&code=x").dispatch().await;
        assert_eq!(response.status(), Status::BadRequest);
        assert_eq!(allowed_origin(&response), Some(APP_ORIGIN));
        assert!(response.headers().get("Vary").any(|v| v.contains("Origin")));
        let response = app.client.get("/oauth/userinfo").header(Header::new("Origin", "https://evil.example.com")).dispatch().await;
        assert_eq!((response.status(), allowed_origin(&response)), (Status::Unauthorized, None));
    }

    async fn a_loopback_redirect_uri_admits_its_host_on_any_port_and_a_changed_client_loses_its_old_origin(backend) {
        let app = TestApp::new(backend).await;
        let fields = portcullis::admin::client_settings::ClientFields {
            client_type: Some("public".into()),
            ..Default::default()
        };
        let native = client_with(&app, fields).await;
        let (_, admin) = crate::admin_support::with_admin(&app).await;
        let put = app.put_authed(&format!("/admin/clients/{}", native.id), &admin.access,
            serde_json::json!({"redirect_uris": ["http://127.0.0.1/callback"]})).await;
        assert_eq!(put.status(), Status::Ok);
        assert_eq!(allowed_origin(&preflight(&app, "/oauth/token", "http://127.0.0.1:49152").await), Some("http://127.0.0.1:49152"));
        assert_eq!(allowed_origin(&preflight(&app, "/oauth/token", APP_ORIGIN).await), None, "no longer registered");
    }

    async fn the_metadata_and_the_jwks_answer_any_origin(backend) {
        let app = TestApp::new(backend).await;
        for path in ["/.well-known/openid-configuration", "/.well-known/oauth-authorization-server", "/.well-known/jwks.json"] {
            let response = app.client.get(path).header(Header::new("Origin", "https://anyone.example")).dispatch().await;
            assert_eq!(allowed_origin(&response), Some("*"), "{path}");
        }
    }
}
