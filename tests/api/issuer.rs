//! The issuer is a URL: its default, the URLs refused at start-up, the metadata built from it
//! alone (RFC 8414, OpenID Connect Discovery), and `iss` of the tokens.

use crate::helpers::*;
use crate::on_both_backends;
use portcullis::config::AuthConfig;
use rocket::figment::Figment;
use rocket::http::{Header, Status};
use serde_json::{json, Value};

/// The issuer the app was configured with (by default built from Rocket's address and port).
pub fn issuer_of(app: &TestApp) -> String {
    app.client.rocket().state::<portcullis::auth::Auth>().expect("auth state").config.issuer.clone()
}

fn issuer_from(figment: Figment) -> Result<String, String> {
    AuthConfig::from_figment(&figment).map(|c| c.issuer).map_err(|e| format!("{}: {}", e.key, e.problem))
}

/// `(status, body, Cache-Control, Access-Control-Allow-Origin)` of a GET.
async fn document(app: &TestApp, path: &str) -> (Status, Value, Option<String>, Option<String>) {
    let response = app.client.get(path.to_owned()).dispatch().await;
    let header = |name| response.headers().get_one(name).map(str::to_owned);
    let (cache, origin) = (header("Cache-Control"), header("Access-Control-Allow-Origin"));
    (response.status(), response.into_json().await.unwrap_or(Value::Null), cache, origin)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_issuer_is_the_http_url_of_rocket_s_address_and_port() {
    let rocket = |address: &str, port: u16| Figment::new().merge(("address", address)).merge(("port", port));
    assert_eq!(issuer_from(Figment::new()).unwrap(), "http://127.0.0.1:8000");
    assert_eq!(issuer_from(rocket("127.0.0.1", 9123)).unwrap(), "http://127.0.0.1:9123");
    assert_eq!(issuer_from(rocket("0.0.0.0", 9123)).unwrap(), "http://127.0.0.1:9123", "unspecified: loopback");
    assert_eq!(issuer_from(rocket("::1", 9123)).unwrap(), "http://[::1]:9123");
    let public = issuer_from(rocket("192.0.2.10", 9123)).expect_err("http on a public address");
    assert!(public.starts_with("auth.issuer: "), "{public}");
    let configured = rocket("0.0.0.0", 9123).merge(("auth.issuer", "https://auth.example.com"));
    assert_eq!(issuer_from(configured).unwrap(), "https://auth.example.com");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issuers_that_strict_clients_would_refuse_stop_start_up_naming_auth_issuer() {
    let db = TestDb::migrated(Backend::Sqlite).await;
    for issuer in [
        "portcullis",
        "http://auth.example.com",
        "http://192.0.2.10:8000",
        "https://auth.example.com?tenant=a",
        "https://auth.example.com#top",
        "https://auth.example.com/",
        "https://auth.example.com/tenant/",
        "ftp://auth.example.com",
    ] {
        let problem = issuer_from(test_figment(db.url()).merge(("auth.issuer", issuer))).expect_err(issuer);
        assert!(problem.starts_with("auth.issuer: "), "{issuer}: {problem}");
        let figment = test_figment(db.url()).merge(("auth.issuer", issuer));
        let error = portcullis::rocket(figment).ignite().await.err().unwrap_or_else(|| panic!("{issuer} ignited"));
        assert!(matches!(error.kind(), rocket::error::ErrorKind::FailedFairings(_)), "{issuer}");
    }
    let moved = issuer_from(test_figment(db.url()).merge(("auth.public_url", "https://auth.example.com")));
    assert!(moved.expect_err("public_url is gone").contains("auth.issuer"), "the error names the new key");
    for issuer in ["http://localhost:8000", "http://127.0.0.1:8000", "http://[::1]:8000", "https://auth.example.com/t"]
    {
        assert_eq!(issuer_from(test_figment(db.url()).merge(("auth.issuer", issuer))).as_deref(), Ok(issuer));
    }
}

on_both_backends! {
    async fn tokens_and_metadata_carry_the_default_issuer_url(backend) {
        let app = TestApp::new(backend).await;
        let issuer = issuer_of(&app);
        assert!(issuer.starts_with("http://") && !issuer.ends_with('/'), "{issuer}");
        let tokens = app.login(&app.with_user().await).await;
        let payload = tokens.access.split('.').nth(1).unwrap();
        let claims: Value = serde_json::from_slice(&base64_url(payload)).unwrap();
        assert_eq!(claims["iss"], issuer.as_str());
        let (_, metadata, _, _) = document(&app, "/.well-known/oauth-authorization-server").await;
        assert_eq!(metadata["issuer"], issuer.as_str());
    }

    async fn the_metadata_comes_from_the_configured_issuer_whatever_host_the_request_names(backend) {
        let app = TestApp::builder(backend).with_config("issuer", "https://auth.example.com").build().await;
        for path in ["/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"] {
            let response = app
                .client
                .get(path)
                .header(Header::new("Host", "evil.example:4444"))
                .header(Header::new("X-Forwarded-Proto", "https"))
                .header(Header::new("X-Forwarded-Host", "evil.example"))
                .dispatch()
                .await;
            assert_eq!(response.status(), Status::Ok, "{path}");
            let metadata: Value = response.into_json().await.unwrap();
            assert!(!metadata.to_string().contains("evil"), "{path}: {metadata}");
            assert_eq!(metadata["issuer"], "https://auth.example.com");
            assert_eq!(metadata["token_endpoint"], "https://auth.example.com/oauth/token");
        }
    }

    async fn the_openid_configuration_is_the_metadata_document_with_the_standard_fields(backend) {
        let app = TestApp::builder(backend).with_config("issuer", "https://auth.example.com").build().await;
        let (status, openid, cache, origin) = document(&app, "/.well-known/openid-configuration").await;
        assert_eq!(status, Status::Ok);
        let (_, metadata, metadata_cache, metadata_origin) =
            document(&app, "/.well-known/oauth-authorization-server").await;
        assert_eq!(openid, metadata, "one document");
        for (cache, origin) in [(cache, origin), (metadata_cache, metadata_origin)] {
            assert_eq!(cache.as_deref(), Some("public, max-age=300"));
            assert_eq!(origin.as_deref(), Some("*"), "any origin may discover");
        }
        let base = "https://auth.example.com";
        for (field, path) in [
            ("token_endpoint", "/oauth/token"),
            ("jwks_uri", "/.well-known/jwks.json"),
            ("introspection_endpoint", "/oauth/introspect"),
            ("revocation_endpoint", "/oauth/revoke"),
        ] {
            assert_eq!(openid[field], format!("{base}{path}"), "{field}");
        }
        assert_eq!(openid["grant_types_supported"], json!(["authorization_code", "password", "refresh_token", "client_credentials"]));
        assert_eq!(
            openid["token_endpoint_auth_methods_supported"],
            json!(["none", "client_secret_basic", "client_secret_post"])
        );
        assert!(openid["scopes_supported"].as_array().unwrap().contains(&json!("users:read")));
        assert_eq!(openid["response_types_supported"], json!(["code"]));
        assert_eq!(openid["subject_types_supported"], json!(["public"]));
        assert_eq!(openid["id_token_signing_alg_values_supported"], json!(["RS256", "EdDSA"]));
        assert_eq!(openid["userinfo_endpoint"], format!("{base}/oauth/userinfo"));
        let (_, _, jwks_cache, jwks_origin) = document(&app, "/.well-known/jwks.json").await;
        assert_eq!((jwks_cache, jwks_origin.as_deref()), (None, Some("*")));
    }

    async fn an_issuer_with_a_path_has_its_metadata_served_where_both_standards_look(backend) {
        let issuer = "https://auth.example.com/tenant-a";
        let app = TestApp::builder(backend).with_config("issuer", issuer).build().await;
        for path in [
            "/.well-known/oauth-authorization-server/tenant-a",
            "/tenant-a/.well-known/openid-configuration",
            "/.well-known/oauth-authorization-server",
            "/.well-known/openid-configuration",
        ] {
            let (status, metadata, _, origin) = document(&app, path).await;
            assert_eq!(status, Status::Ok, "{path}");
            assert_eq!(metadata["issuer"], issuer, "{path}");
            assert_eq!(metadata["token_endpoint"], format!("{issuer}/oauth/token"), "{path}");
            assert_eq!(origin.as_deref(), Some("*"), "{path}");
        }
        let (status, _, _, _) = document(&app, "/.well-known/oauth-authorization-server/tenant-b").await;
        assert_eq!(status, Status::NotFound, "another tenant's path");
    }
}

fn base64_url(part: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).expect("base64url")
}
