//! Authorization codes: 256 bits, stored only as a hash, 60 seconds, redeemed once — under real
//! concurrency — by the client they were issued to with the `redirect_uri` and PKCE verifier of
//! their request; a replay is refused and ends the session the first redemption started.

use crate::generated_keys::cells;
use crate::helpers::*;
use crate::oidc_support::*;
use crate::on_both_backends;
use portcullis::auth::guards::RequestOrigin;
use portcullis::auth::oidc::codes::{CodeGrant, CodePresentation, CodeRefusal, CodeRequest, CODE_REPLAYED};
use portcullis::auth::oidc::pkce::s256_challenge;
use portcullis::db::Id;
use portcullis::models::{NewSession, SessionStore};

/// RFC 7636 Appendix B.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const REDIRECT: &str = "https://app.example.com/callback";

/// A code issued to `client` for a user of the app, in a browser session; the code and the user.
async fn issue(app: &TestApp, client: Id) -> (String, Id) {
    let user: Id = app.with_user_email(&format!("{}@example.com", Id::new())).await.id.parse().unwrap();
    let request = CodeRequest {
        client_id: client,
        redirect_uri: REDIRECT,
        code_challenge: CHALLENGE,
        scope: "openid email",
        nonce: Some("n-1"),
        resource: None,
        user_id: user,
        auth_time: app.clock.now() - 5,
        amr: "pwd",
        browser_session_id: Id::new(),
    };
    let code = auth(app).issue_code(&mut conn(app).await, &request).await.expect("a code");
    (code.expose().to_owned(), user)
}

async fn redeem(app: &TestApp, code: &str, presented: CodePresentation<'_>) -> Result<CodeGrant, CodeRefusal> {
    auth(app).redeem_code(&mut conn(app).await, code, &presented, &RequestOrigin::default()).await.expect("storage")
}

fn as_issued(client: Id) -> CodePresentation<'static> {
    CodePresentation { client_id: client, redirect_uri: REDIRECT, code_verifier: VERIFIER }
}

/// Starts the session a grant would, with the id the redemption chose.
async fn start_session(app: &TestApp, grant: &CodeGrant) {
    let now = app.clock.now();
    let client_id = grant.code.client_id.to_string();
    let session = NewSession {
        id: grant.session_id,
        user_id: grant.code.user_id,
        created_at: now,
        last_used_at: now,
        expires_at: now + 3600,
        user_agent: None,
        ip: None,
        amr: &grant.code.amr,
        resource: None,
        client_id: &client_id,
        scope: Some(&grant.code.scope),
    };
    let mut conn = conn(app).await;
    portcullis::write_tx!(&mut conn, |c| c.insert_session(&session).await).expect("a session");
}

on_both_backends! {
    async fn a_code_is_redeemed_by_its_client_with_its_redirect_uri_and_verifier_and_carries_its_request(backend) {
        let app = TestApp::new(backend).await;
        let client = registered_client(&app, "web").await;
        let (code, user) = issue(&app, client).await;
        assert!(code.len() >= 43, "at least 256 bits: {code}");
        let grant = redeem(&app, &code, as_issued(client)).await.expect("redeemed");
        assert_eq!((grant.code.client_id, grant.code.user_id), (client, user));
        assert_eq!((grant.code.scope.as_str(), grant.code.nonce.as_deref()), ("openid email", Some("n-1")));
        assert_eq!(grant.code.auth_time, app.clock.now() - 5);
        assert_eq!(grant.code.session_id, Some(grant.session_id));
    }

    async fn a_code_is_stored_only_as_its_hash(backend) {
        let app = TestApp::new(backend).await;
        let client = registered_client(&app, "web").await;
        let (code, _) = issue(&app, client).await;
        let stored = cells(&app, "SELECT code_hash AS value FROM authorization_codes").await;
        assert_eq!(stored, portcullis::auth::secrets::hash_token(&code));
        let everything = cells(&app, "SELECT redirect_uri || code_challenge || scope || amr AS value FROM authorization_codes").await;
        assert!(!everything.contains(&code));
    }

    async fn another_client_redirect_uri_or_verifier_is_refused_without_spending_the_code(backend) {
        let app = TestApp::new(backend).await;
        let client = registered_client(&app, "web").await;
        let other = registered_client(&app, "other").await;
        let (code, _) = issue(&app, client).await;
        let one_char_off = "https://app.example.com/callbacK";
        let wrong_verifier = VERIFIER.replacen('d', "e", 1);
        let attempts = [
            CodePresentation { client_id: other, ..as_issued(client) },
            CodePresentation { redirect_uri: one_char_off, ..as_issued(client) },
            CodePresentation { code_verifier: &wrong_verifier, ..as_issued(client) },
            // `plain`: the challenge itself as the verifier.
            CodePresentation { code_verifier: CHALLENGE, ..as_issued(client) },
            CodePresentation { code_verifier: "", ..as_issued(client) },
        ];
        for attempt in attempts {
            assert_eq!(redeem(&app, &code, attempt).await.unwrap_err(), CodeRefusal::Mismatch, "{attempt:?}");
        }
        assert_eq!(redeem(&app, "made-up", as_issued(client)).await.unwrap_err(), CodeRefusal::Unknown);
        redeem(&app, &code, as_issued(client)).await.expect("the real request still redeems it");
        assert_eq!(s256_challenge(VERIFIER), CHALLENGE);
    }

    async fn a_code_expires_after_sixty_seconds(backend) {
        let app = TestApp::new(backend).await;
        let client = registered_client(&app, "web").await;
        let (code, _) = issue(&app, client).await;
        app.clock.advance(60);
        assert_eq!(redeem(&app, &code, as_issued(client)).await.unwrap_err(), CodeRefusal::Expired);
        let (fresh, _) = issue(&app, client).await;
        app.clock.advance(59);
        redeem(&app, &fresh, as_issued(client)).await.expect("within its minute");
    }

    async fn of_concurrent_redemptions_exactly_one_succeeds(backend) {
        let app = std::sync::Arc::new(TestApp::new(backend).await);
        let client = registered_client(&app, "web").await;
        let (code, _) = issue(&app, client).await;
        let attempts = (0..8).map(|_| {
            let (app, code) = (app.clone(), code.clone());
            tokio::spawn(async move { redeem(&app, &code, as_issued(client)).await })
        });
        let outcomes: Vec<_> = futures::future::join_all(attempts).await.into_iter().map(|r| r.unwrap()).collect();
        let granted: Vec<&CodeGrant> = outcomes.iter().filter_map(|o| o.as_ref().ok()).collect();
        assert_eq!(granted.len(), 1, "{outcomes:?}");
        for refused in outcomes.iter().filter_map(|o| o.as_ref().err()) {
            assert!(matches!(refused, CodeRefusal::Replayed { session_id: Some(s), .. } if *s == granted[0].session_id), "{refused:?}");
        }
    }

    async fn a_replayed_code_is_refused_and_ends_the_session_the_first_redemption_started(backend) {
        let app = TestApp::new(backend).await;
        let client = registered_client(&app, "web").await;
        let (code, user) = issue(&app, client).await;
        let grant = redeem(&app, &code, as_issued(client)).await.expect("redeemed");
        start_session(&app, &grant).await;
        // Replayed by whoever else learned the code, with any verifier.
        let replay = CodePresentation { code_verifier: "anything", ..as_issued(client) };
        let refusal = redeem(&app, &code, replay).await.unwrap_err();
        assert_eq!(refusal, CodeRefusal::Replayed { user_id: user, session_id: Some(grant.session_id) });
        let mut conn = conn(&app).await;
        let session = portcullis::with_conn!(&mut conn, |c| c.find_session(grant.session_id).await).unwrap().unwrap();
        assert!(session.ended_at.is_some());
        assert_eq!(session.end_reason.as_deref(), Some(CODE_REPLAYED));
        let audited = cells(&app, "SELECT event AS value FROM audit_events WHERE event = 'code_replayed'").await;
        assert_eq!(audited, CODE_REPLAYED);
    }

    async fn ending_a_browser_session_voids_its_unredeemed_codes(backend) {
        let app = TestApp::new(backend).await;
        let client = registered_client(&app, "web").await;
        let (code, _) = issue(&app, client).await;
        let browser_session: String = cells(&app, "SELECT CAST(browser_session_id AS TEXT) AS value FROM authorization_codes").await;
        let voided = auth(&app).void_codes_of(&mut conn(&app).await, browser_session.parse().unwrap()).await.unwrap();
        assert_eq!(voided, 1);
        assert_eq!(redeem(&app, &code, as_issued(client)).await.unwrap_err(), CodeRefusal::Unknown);
    }
}
