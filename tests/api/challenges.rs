//! The `WWW-Authenticate` challenges of refusals at bearer endpoints (RFC 6750 §3): a 403 names
//! `insufficient_scope`, or `insufficient_user_authentication` (RFC 9470 §3) for `mfa_required`;
//! credentials of another scheme get a bare `Bearer`, as none do. The JSON body keeps its code.

use crate::admin_support::*;
use crate::helpers::*;
use crate::mfa_support::*;
use crate::on_both_backends;
use rocket::http::{Header, Status};
use rocket::local::asynchronous::LocalResponse;

/// The challenge, status, code and description of a refusal.
async fn refusal(response: LocalResponse<'_>) -> (Option<String>, Status, String, String) {
    let challenge = response.headers().get_one("WWW-Authenticate").map(str::to_owned);
    let (status, code, description) = error_with_description(response).await;
    (challenge, status, code, description)
}

on_both_backends! {
    async fn a_403_to_a_bearer_request_carries_an_insufficient_scope_challenge_with_its_description(backend) {
        let app = TestApp::new(backend).await;
        let user = app.with_user().await;
        let tokens = app.login(&user).await;
        let (challenge, status, code, description) = refusal(app.get_authed("/admin/users", &tokens.access).await).await;
        assert_eq!((status, code.as_str()), (Status::Forbidden, "insufficient_permissions"), "the body keeps its code");
        let expected = format!("Bearer error=\"insufficient_scope\", error_description=\"{description}\"");
        assert_eq!(challenge, Some(expected));
    }

    async fn mfa_required_to_a_bearer_request_asks_for_stronger_user_authentication_and_at_login_for_nothing(backend) {
        let app = TestApp::builder(backend).with_config("mfa_required_roles", vec!["admin"]).build().await;
        let (admin_user, admin) = with_admin(&app).await;
        let (challenge, status, code, description) = refusal(app.get_authed("/admin/users", &admin.access).await).await;
        assert_eq!((status, code.as_str()), (Status::Forbidden, "mfa_required"));
        let expected = format!("Bearer error=\"insufficient_user_authentication\", error_description=\"{description}\"");
        assert_eq!(challenge, Some(expected));

        // The same code at login, where no bearer token was presented, has no challenge.
        enrol(&app, &admin).await;
        let login = app.login_response(&admin_user.email, &admin_user.password).await;
        let (challenge, status, code, _) = refusal(login).await;
        assert_eq!((challenge, status, code.as_str()), (None, Status::Forbidden, "mfa_required"));
    }

    async fn credentials_of_another_scheme_at_a_bearer_endpoint_get_401_with_a_bare_bearer_challenge(backend) {
        let app = TestApp::new(backend).await;
        for authorization in ["Basic YWxpY2U6cHc=", "Digest username=\"alice\"", "Token abc"] {
            let request = app.client.get("/users/me").header(Header::new("Authorization", authorization));
            let (challenge, status, code, description) = refusal(request.dispatch().await).await;
            assert_eq!(challenge.as_deref(), Some("Bearer"), "{authorization}");
            assert_eq!((status, code.as_str()), (Status::Unauthorized, "invalid_token"), "{authorization}");
            assert_eq!(description, "The Authorization header must use the Bearer scheme.");
        }
    }
}
