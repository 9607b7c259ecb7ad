//! The authorization-code grant at `/oauth/token`: a code becomes a session of its client,
//! down-scoped to what was granted, with an ID token verified from the JWKS; every refusal is
//! 400 `invalid_grant`, a replay ends the session the first exchange started, and a code whose
//! browser session ended is worth nothing.

use crate::code_grant_support::*;
use crate::helpers::*;
use crate::oidc_support::{auth, conn};
use crate::on_both_backends;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use portcullis::admin::client_settings::ClientFields;
use rocket::http::Status;
use serde_json::{json, Value};
use sha2::Digest;

fn str_of<'a>(body: &'a Value, field: &str) -> &'a str {
    body[field].as_str().unwrap_or_else(|| panic!("{field} in {body}"))
}

on_both_backends! {
    async fn a_public_client_exchanges_its_code_for_a_session_of_its_own_and_an_rs256_id_token(backend) {
        let app = TestApp::new(backend).await;
        let client = public_client(&app).await;
        let (code, user) = code_for(&app, &client, "openid email").await;
        let response = exchange(&app, &client, &code, &[]).await;
        assert_eq!(response.status(), Status::Ok);
        assert_eq!(response.headers().get_one("Cache-Control"), Some("no-store"));
        let body: Value = response.into_json().await.unwrap();
        assert_eq!((str_of(&body, "token_type"), str_of(&body, "scope")), ("Bearer", "openid email"));
        assert!(body["expires_in"].as_i64().unwrap() > 0 && body["refresh_token"].is_string(), "{body}");
        let access = access_claims(str_of(&body, "access_token"));
        assert_eq!((access["client_id"].as_str(), access["scope"].as_str()), (Some(client.id.as_str()), Some("openid email")));
        let (alg, claims) = verified_id_token(&app, str_of(&body, "id_token"), &client).await;
        assert_eq!(alg, "RS256");
        assert_eq!(claims["iss"], json!(auth_issuer(&app)));
        assert_eq!((claims["sub"].as_str(), claims["aud"].as_str()), (Some(user.id.as_str()), Some(client.id.as_str())));
        assert_eq!(claims["nonce"], "n-0S6_WzA2Mj");
        assert_eq!(claims["sid"], body["session_id"]);
        assert_eq!(claims["auth_time"], json!(app.clock.now() - 30));
        assert_eq!(claims["amr"], json!(["pwd"]));
        assert_eq!((claims["email"].as_str(), claims["email_verified"].as_bool()), (Some(user.email.as_str()), Some(false)));
        let digest = sha2::Sha256::digest(str_of(&body, "access_token").as_bytes());
        assert_eq!(claims["at_hash"], json!(URL_SAFE_NO_PAD.encode(&digest[..16])));
        // The session is the user's, listed by a first-party session of theirs.
        let own = app.login(&user).await;
        let sessions: Value = app.get_authed("/auth/sessions", &own.access).await.into_json().await.unwrap();
        assert!(sessions["sessions"].as_array().unwrap().iter().any(|s| s["id"] == body["session_id"]), "{sessions}");
    }

    async fn an_eddsa_confidential_client_gets_an_eddsa_id_token_with_a_sha512_at_hash_and_no_email_without_the_scope(backend) {
        let app = TestApp::new(backend).await;
        let client = confidential_client(&app, "EdDSA").await;
        let (code, _) = code_for(&app, &client, "openid").await;
        let body = exchanged(&app, &client, &code).await;
        let (alg, claims) = verified_id_token(&app, str_of(&body, "id_token"), &client).await;
        assert_eq!(alg, "EdDSA");
        let digest = sha2::Sha512::digest(str_of(&body, "access_token").as_bytes());
        assert_eq!(claims["at_hash"], json!(URL_SAFE_NO_PAD.encode(&digest[..32])));
        assert!(claims.get("email").is_none() && claims.get("email_verified").is_none(), "{claims}");
    }

    async fn without_openid_there_is_no_id_token_and_without_the_refresh_grant_no_refresh_token(backend) {
        let app = TestApp::new(backend).await;
        let grants = Some(vec!["authorization_code".into()]);
        let client = client_with(&app, ClientFields { grant_types: grants, ..Default::default() }).await;
        let (code, _) = code_for(&app, &client, "").await;
        let body = exchanged(&app, &client, &code).await;
        assert!(body.get("id_token").is_none() && body.get("refresh_token").is_none(), "{body}");
        assert!(body["access_token"].is_string());
    }

    async fn a_code_is_refused_for_another_client_redirect_uri_or_verifier_and_then_still_works(backend) {
        let app = TestApp::new(backend).await;
        let client = public_client(&app).await;
        let other = public_client(&app).await;
        let (code, _) = code_for(&app, &client, "openid").await;
        let invalid_grant = (Status::BadRequest, "invalid_grant".to_string());
        assert_eq!(error_of(exchange(&app, &other, &code, &[]).await).await, invalid_grant, "another client");
        let one_char_off = "https://app.example.com/callbacK";
        let wrong_verifier = VERIFIER.replacen('d', "e", 1);
        // A PKCE downgrade: the challenge itself as the verifier (`plain`), or a short one.
        for (field, value) in [("redirect_uri", one_char_off), ("code_verifier", wrong_verifier.as_str()),
                               ("code_verifier", CHALLENGE), ("code_verifier", "short")] {
            assert_eq!(error_of(exchange(&app, &client, &code, &[(field, value)]).await).await, invalid_grant, "{field}={value}");
        }
        for missing in ["code_verifier", "redirect_uri", "code"] {
            let (status, error) = error_of(exchange(&app, &client, &code, &[(missing, "")]).await).await;
            assert_eq!((status, error.as_str()), (Status::BadRequest, "invalid_request"), "without {missing}");
        }
        assert_eq!(error_of(exchange(&app, &client, "made-up", &[]).await).await, invalid_grant);
        exchanged(&app, &client, &code).await;
    }

    async fn a_confidential_client_must_authenticate_and_every_client_needs_the_grant(backend) {
        let app = TestApp::new(backend).await;
        let client = confidential_client(&app, "RS256").await;
        let (code, _) = code_for(&app, &client, "openid").await;
        let unauthenticated = App { secret: None, ..client.clone() };
        assert_eq!(error_of(exchange(&app, &unauthenticated, &code, &[]).await).await, (Status::Unauthorized, "invalid_client".into()));
        let wrong = App { secret: Some("wrong".into()), ..client.clone() };
        assert_eq!(error_of(exchange(&app, &wrong, &code, &[]).await).await, (Status::Unauthorized, "invalid_client".into()));
        // No client named at all: the code is bound to one, which must say who it is.
        let response = exchange(&app, &unauthenticated, &code, &[("client_id", "")]).await;
        assert_eq!(error_of(response).await, (Status::Unauthorized, "invalid_client".into()));
        // A client registered without the grant.
        let service = client_with(&app, ClientFields::default()).await;
        let (other_code, _) = code_for(&app, &service, "openid").await;
        assert_eq!(error_of(exchange(&app, &service, &other_code, &[]).await).await, (Status::BadRequest, "unauthorized_client".into()));
        // None of that spent the code.
        exchanged(&app, &client, &code).await;
    }

    async fn a_replayed_code_is_refused_and_ends_the_session_the_first_exchange_started(backend) {
        let app = TestApp::new(backend).await;
        let client = public_client(&app).await;
        let (code, _) = code_for(&app, &client, "openid").await;
        let first = exchanged(&app, &client, &code).await;
        assert_eq!(error_of(exchange(&app, &client, &code, &[]).await).await, (Status::BadRequest, "invalid_grant".into()));
        assert_eq!(app.me_status(str_of(&first, "access_token")).await, Status::Unauthorized);
        let refresh = refresh_as(&app, &client, str_of(&first, "refresh_token")).await;
        assert_eq!(error_of(refresh).await, (Status::BadRequest, "invalid_grant".into()));
    }

    async fn of_concurrent_exchanges_of_one_code_exactly_one_gets_tokens(backend) {
        let app = std::sync::Arc::new(TestApp::new(backend).await);
        let client = public_client(&app).await;
        let (code, _) = code_for(&app, &client, "openid").await;
        let attempts = (0..6).map(|_| {
            let (app, client, code) = (app.clone(), client.clone(), code.clone());
            tokio::spawn(async move { exchange(&app, &client, &code, &[]).await.status() })
        });
        let statuses: Vec<Status> = futures::future::join_all(attempts).await.into_iter().map(|r| r.unwrap()).collect();
        assert_eq!(statuses.iter().filter(|s| **s == Status::Ok).count(), 1, "{statuses:?}");
        assert!(statuses.iter().all(|s| *s == Status::Ok || *s == Status::BadRequest), "{statuses:?}");
    }

    async fn an_exchange_racing_the_end_of_its_browser_session_never_leaves_a_live_session_behind(backend) {
        // The exchange checks that its browser session stands and inserts its session; the logout
        // ends the browser session and every session it started. Both take the user's session
        // lock first (`Auth::exchange_code`, `Auth::end_browser_session`), so whichever
        // order the two commit in, no session of an ended browser session stays alive.
        let app = std::sync::Arc::new(TestApp::new(backend).await);
        let client = public_client(&app).await;
        for round in 0..12 {
            let (user, browser) = signed_in(&app).await;
            let user_id: portcullis::db::Id = user.id.parse().unwrap();
            let authorized = Authorized { user: user_id, browser_session: browser, scope: "openid", nonce: None, auth_time: app.clock.now() };
            let code = issue_code(&app, &client, authorized).await;
            let exchange_task = {
                let (app, client) = (app.clone(), client.clone());
                tokio::spawn(async move {
                    let response = exchange(&app, &client, &code, &[]).await;
                    let status = response.status();
                    (status, response.into_json::<Value>().await)
                })
            };
            let logout_task = {
                let app = app.clone();
                tokio::spawn(async move {
                    let origin = portcullis::auth::guards::RequestOrigin::default();
                    auth(&app).end_browser_session(&mut conn(&app).await, browser, user_id, "logout", &origin).await.unwrap()
                })
            };
            let ((status, body), _) = (exchange_task.await.unwrap(), logout_task.await.unwrap());
            if status == Status::Ok {
                let body = body.unwrap();
                let refreshed = refresh_as(&app, &client, str_of(&body, "refresh_token")).await;
                assert_eq!(refreshed.status(), Status::BadRequest, "round {round}: the exchanged session outlived its browser session");
                assert_eq!(app.me_status(str_of(&body, "access_token")).await, Status::Unauthorized, "round {round}");
            } else {
                assert_eq!(status, Status::BadRequest, "round {round}");
            }
        }
    }

    async fn a_refresh_answers_a_new_id_token_with_the_original_auth_time_and_no_nonce(backend) {
        let app = TestApp::new(backend).await;
        let client = confidential_client(&app, "RS256").await;
        let (code, _) = code_for(&app, &client, "openid email").await;
        let first = exchanged(&app, &client, &code).await;
        app.clock.advance(120);
        let response = refresh_as(&app, &client, str_of(&first, "refresh_token")).await;
        assert_eq!(response.status(), Status::Ok);
        let second: Value = response.into_json().await.unwrap();
        let (_, claims) = verified_id_token(&app, str_of(&second, "id_token"), &client).await;
        assert_eq!(claims["auth_time"], json!(app.clock.now() - 150));
        assert_eq!(claims["iat"], json!(app.clock.now()));
        assert_eq!(claims["sid"], first["session_id"]);
        assert!(claims.get("nonce").is_none(), "{claims}");
        let digest = sha2::Sha256::digest(str_of(&second, "access_token").as_bytes());
        assert_eq!(claims["at_hash"], json!(URL_SAFE_NO_PAD.encode(&digest[..16])));
    }

    async fn a_public_clients_refresh_at_auth_refresh_answers_an_id_token_signed_as_the_client_asked(backend) {
        let app = TestApp::new(backend).await;
        let fields = ClientFields {
            client_type: Some("public".into()),
            id_token_signed_response_alg: Some("EdDSA".into()),
            ..Default::default()
        };
        let client = client_with(&app, fields).await;
        let (code, _) = code_for(&app, &client, "openid").await;
        let first = exchanged(&app, &client, &code).await;
        app.clock.advance(60);
        let response = app.refresh_response(str_of(&first, "refresh_token")).await;
        assert_eq!(response.status(), Status::Ok);
        let second: Value = response.into_json().await.unwrap();
        let (alg, claims) = verified_id_token(&app, str_of(&second, "id_token"), &client).await;
        assert_eq!(alg, "EdDSA");
        assert_eq!(claims["auth_time"], json!(app.clock.now() - 90));
        assert_eq!(claims["sid"], first["session_id"]);
    }

    async fn a_code_whose_browser_session_ended_or_expired_or_whose_account_was_disabled_is_refused(backend) {
        let app = TestApp::new(backend).await;
        let client = public_client(&app).await;
        let invalid_grant = (Status::BadRequest, "invalid_grant".to_string());
        // Ended: the user signs out of that browser session from another session of theirs.
        let (user, browser) = signed_in(&app).await;
        let user_id = user.id.parse().unwrap();
        let authorized = Authorized { user: user_id, browser_session: browser, scope: "openid", nonce: None, auth_time: app.clock.now() };
        let code = issue_code(&app, &client, authorized).await;
        let own = app.login(&user).await;
        assert_eq!(app.delete_authed(&format!("/auth/sessions/{browser}"), &own.access).await.status(), Status::NoContent);
        assert_eq!(error_of(exchange(&app, &client, &code, &[]).await).await, invalid_grant, "ended");
        // Expired while its code was still fresh.
        let short = browser_session(&app, user_id, 20).await;
        let code = issue_code(&app, &client, Authorized { browser_session: short, ..authorized }).await;
        app.clock.advance(21);
        assert_eq!(error_of(exchange(&app, &client, &code, &[]).await).await, invalid_grant, "expired");
        // The account was disabled since.
        let live = browser_session(&app, user_id, 3600).await;
        let code = issue_code(&app, &client, Authorized { browser_session: live, ..authorized }).await;
        let (_, admin) = crate::admin_support::with_admin(&app).await;
        let disabled = crate::admin_support::patch_authed(&app, &format!("/admin/users/{}", user.id), &admin.access, json!({"disabled": true})).await;
        assert_eq!(disabled.status(), Status::Ok);
        assert_eq!(error_of(exchange(&app, &client, &code, &[]).await).await, invalid_grant, "disabled");
    }

    async fn the_session_is_down_scoped_so_an_admin_signing_into_an_app_gives_it_only_what_was_granted(backend) {
        let app = TestApp::new(backend).await;
        let client = public_client(&app).await;
        let (admin, _) = crate::admin_support::with_admin(&app).await;
        let browser = browser_session(&app, admin.id.parse().unwrap(), 3600).await;
        let authorized = Authorized { user: admin.id.parse().unwrap(), browser_session: browser, scope: "openid users:read", nonce: None, auth_time: app.clock.now() };
        let code = issue_code(&app, &client, authorized).await;
        let body = exchanged(&app, &client, &code).await;
        let access = str_of(&body, "access_token");
        assert_eq!(app.get_authed("/admin/users", access).await.status(), Status::Ok);
        for beyond in ["/admin/roles", "/admin/audit", "/admin/clients"] {
            assert_eq!(app.get_authed(beyond, access).await.status(), Status::Forbidden, "{beyond}");
        }
        // A refresh may not widen it.
        let form = [("grant_type", "refresh_token"), ("refresh_token", str_of(&body, "refresh_token")),
                    ("client_id", client.id.as_str()), ("scope", "openid users:read roles:read")];
        assert_eq!(error_of(crate::oauth::post_form(&app, "/oauth/token", &form).await).await, (Status::BadRequest, "invalid_scope".into()));
        // A code granting no permission gives none.
        let code = issue_code(&app, &client, Authorized { scope: "openid", ..authorized }).await;
        let body = exchanged(&app, &client, &code).await;
        assert_eq!(app.get_authed("/admin/users", str_of(&body, "access_token")).await.status(), Status::Forbidden);
    }
}

/// The issuer the test app's tokens carry.
fn auth_issuer(app: &TestApp) -> String {
    crate::oidc_support::auth(app).config.issuer.clone()
}
