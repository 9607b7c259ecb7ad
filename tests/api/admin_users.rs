//! User administration: listing and pagination, roles, disable, delete, sessions, the last-admin
//! rule, and the audit log.

use crate::admin_support::*;
use crate::helpers::*;
use crate::on_both_backends;
use futures::future::join_all;
use rocket::http::Status;
use serde_json::{json, Value};

on_both_backends! {
    async fn users_are_listed_in_pages_with_a_total_and_an_email_filter(backend) {
        let app = TestApp::new(backend).await;
        let (_, admin) = with_admin(&app).await;
        for i in 0..5 {
            app.with_user_email(&format!("user{i}@example.com")).await;
        }
        let page = get_json(&app, "/admin/users?limit=2&offset=0", &admin.access).await;
        assert_eq!(page["total"], 6);
        assert_eq!(page["users"].as_array().unwrap().len(), 2);
        let first = page["users"][0].clone();
        for field in ["id", "email", "roles", "disabled", "created_at"] {
            assert!(first.get(field).is_some(), "{field} in {first}");
        }
        let rest = get_json(&app, "/admin/users?limit=10&offset=2", &admin.access).await;
        assert_eq!(rest["users"].as_array().unwrap().len(), 4);
        let beyond = get_json(&app, "/admin/users?offset=100", &admin.access).await;
        assert_eq!((beyond["users"].as_array().unwrap().len(), beyond["total"].as_i64()), (0, Some(6)));
        let all = get_json(&app, "/admin/users?limit=100000", &admin.access).await;
        assert_eq!(all["users"].as_array().unwrap().len(), 6, "limit is clamped to 200, not refused");
        let filtered = get_json(&app, "/admin/users?email=USER3@example.com", &admin.access).await;
        assert_eq!(filtered["total"], 1);
        assert_eq!(filtered["users"][0]["email"], "user3@example.com");
        let none = get_json(&app, "/admin/users?email=100%25", &admin.access).await;
        assert_eq!(none["total"], 0, "LIKE wildcards are taken literally");
        for bad in ["/admin/users?limit=-1", "/admin/users?offset=-5", "/admin/users?limit=abc"] {
            let (status, code) = error_of(app.get_authed(bad, &admin.access).await).await;
            assert_eq!((status, code.as_str()), (Status::UnprocessableEntity, "invalid_request"), "{bad}");
        }
    }

    async fn getting_an_unknown_user_is_404(backend) {
        let app = TestApp::new(backend).await;
        let (_, admin) = with_admin(&app).await;
        for path in [format!("/admin/users/{}", uuid::Uuid::new_v4()), "/admin/users/nope".to_string()] {
            assert_eq!(error_of(app.get_authed(&path, &admin.access).await).await, (Status::NotFound, "not_found".to_string()));
        }
        let response = app.put_authed(&format!("/admin/users/{}/roles", uuid::Uuid::new_v4()), &admin.access, json!({"roles": []})).await;
        assert_eq!(response.status(), Status::NotFound);
    }

    async fn a_role_change_reaches_the_roles_claim_at_the_next_refresh(backend) {
        let app = TestApp::new(backend).await;
        let (_, admin) = with_admin(&app).await;
        create_role(&app, &admin, "editor", &["users:read"]).await;
        let user = app.with_user().await;
        let before = app.login(&user).await;
        let response = app.put_authed(&format!("/admin/users/{}/roles", user.id), &admin.access, json!({"roles": ["user", "editor"]})).await;
        assert_eq!(response.status(), Status::Ok);
        let body: Value = response.into_json().await.unwrap();
        assert_eq!(body["roles"], json!(["editor", "user"]));
        assert_eq!(app.get_authed("/admin/users", &before.access).await.status(), Status::Forbidden, "old token, old roles");
        let after = tokens(app.refresh_response(&before.refresh).await).await;
        assert_eq!(app.get_authed("/admin/users", &after.access).await.status(), Status::Ok);
        let claims: Value = {
            use base64::Engine;
            let part = after.access.split('.').nth(1).unwrap();
            serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
        };
        assert_eq!(claims["roles"], json!(["editor", "user"]));
    }

    async fn unknown_roles_are_422(backend) {
        let app = TestApp::new(backend).await;
        let (_, admin) = with_admin(&app).await;
        let user = app.with_user().await;
        let response = app.put_authed(&format!("/admin/users/{}/roles", user.id), &admin.access, json!({"roles": ["user", "wizard"]})).await;
        let body: Value = response.into_json().await.unwrap();
        assert_eq!(body["error"], "invalid_request");
        assert!(body["error_description"].as_str().unwrap().contains("wizard"));
        let response = app.put_authed(&format!("/admin/users/{}/roles", user.id), &admin.access, json!({"roles": "user"})).await;
        assert_eq!(response.status(), Status::BadRequest, "a malformed body is 400");
    }

    async fn disabling_a_user_rejects_their_access_tokens_at_once_and_refuses_login(backend) {
        let app = TestApp::new(backend).await;
        let (_, admin) = with_admin(&app).await;
        let user = app.with_user().await;
        let tokens = app.login(&user).await;
        let response = patch_authed(&app, &format!("/admin/users/{}", user.id), &admin.access, json!({"disabled": true})).await;
        assert_eq!(response.status(), Status::Ok);
        assert_eq!(response.into_json::<Value>().await.unwrap()["disabled"], true);
        assert_eq!(app.me_status(&tokens.access).await, Status::Unauthorized);
        let (status, code) = error_of(app.login_response(&user.email, &user.password).await).await;
        assert_eq!((status, code.as_str()), (Status::Forbidden, "account_disabled"));
        let (status, code) = error_of(app.refresh_response(&tokens.refresh).await).await;
        assert_eq!((status, code.as_str()), (Status::Forbidden, "account_disabled"));
        let response = patch_authed(&app, &format!("/admin/users/{}", user.id), &admin.access, json!({"disabled": false})).await;
        assert_eq!(response.status(), Status::Ok);
        app.login(&user).await;
    }

    async fn deleting_a_user_ends_their_sessions(backend) {
        let app = TestApp::new(backend).await;
        let (_, admin) = with_admin(&app).await;
        let user = app.with_user().await;
        let tokens = app.login(&user).await;
        let other = app.second_instance(|b| b).await;
        assert_eq!(app.delete_authed(&format!("/admin/users/{}", user.id), &admin.access).await.status(), Status::NoContent);
        assert_eq!(app.me_status(&tokens.access).await, Status::Unauthorized);
        assert_eq!(app.get_authed(&format!("/admin/users/{}", user.id), &admin.access).await.status(), Status::NotFound);
        assert_eq!(app.delete_authed(&format!("/admin/users/{}", user.id), &admin.access).await.status(), Status::NotFound);
        assert_eq!(app.login_response(&user.email, &user.password).await.status(), Status::Unauthorized);
        eventually("another instance refuses the deleted user's token", async || {
            other.me_status(&tokens.access).await == Status::Unauthorized
        })
        .await;
    }

    async fn an_admin_lists_and_ends_a_users_sessions(backend) {
        let app = TestApp::new(backend).await;
        let (_, admin) = with_admin(&app).await;
        let user = app.with_user().await;
        let a = app.login(&user).await;
        let b = app.login(&user).await;
        let listed = get_json(&app, &format!("/admin/users/{}/sessions", user.id), &admin.access).await;
        assert_eq!(listed["sessions"].as_array().unwrap().len(), 2);
        assert!(listed["sessions"].as_array().unwrap().iter().all(|s| s["current"] == false));
        assert_eq!(app.delete_authed(&format!("/admin/users/{}/sessions", user.id), &admin.access).await.status(), Status::NoContent);
        for tokens in [&a, &b] {
            assert_eq!(app.me_status(&tokens.access).await, Status::Unauthorized);
        }
        let listed = get_json(&app, &format!("/admin/users/{}/sessions", user.id), &admin.access).await;
        assert_eq!(listed["sessions"], json!([]));
        assert_eq!(app.me_status(&admin.access).await, Status::Ok);
    }

    async fn the_last_admin_cannot_be_demoted_disabled_or_deleted(backend) {
        let app = TestApp::new(backend).await;
        let (admin_user, admin) = with_admin(&app).await;
        let path = format!("/admin/users/{}", admin_user.id);
        let conflict = (Status::Conflict, "conflict".to_string());
        assert_eq!(error_of(app.put_authed(&format!("{path}/roles"), &admin.access, json!({"roles": ["user"]})).await).await, conflict);
        assert_eq!(error_of(patch_authed(&app, &path, &admin.access, json!({"disabled": true})).await).await, conflict);
        assert_eq!(error_of(app.delete_authed(&path, &admin.access).await).await, conflict);
        // With a second admin, the first may go.
        let (second, _) = user_with_roles(&app, "second@example.com", &["admin"]).await;
        let response = app.put_authed(&format!("{path}/roles"), &admin.access, json!({"roles": ["user"]})).await;
        assert_eq!(response.status(), Status::Ok);
        // A disabled admin does not count as the remaining one.
        let (third, third_tokens) = user_with_roles(&app, "third@example.com", &["admin"]).await;
        let response = patch_authed(&app, &format!("/admin/users/{}", second.id), &third_tokens.access, json!({"disabled": true})).await;
        assert_eq!(response.status(), Status::Ok);
        let response = app.delete_authed(&format!("/admin/users/{}", third.id), &third_tokens.access).await;
        assert_eq!(error_of(response).await, conflict);
    }

    async fn two_admins_removing_each_other_at_once_leave_one_admin(backend) {
        let app = TestApp::new(backend).await;
        let (a, a_tokens) = user_with_roles(&app, "a@example.com", &["admin"]).await;
        let (b, b_tokens) = user_with_roles(&app, "b@example.com", &["admin"]).await;
        for round in 0..3 {
            let (path_b, path_a) = (format!("/admin/users/{}/roles", b.id), format!("/admin/users/{}/roles", a.id));
            let requests = [
                app.put_authed(&path_b, &a_tokens.access, json!({"roles": ["user"]})),
                app.put_authed(&path_a, &b_tokens.access, json!({"roles": ["user"]})),
            ];
            let statuses: Vec<Status> = join_all(requests).await.iter().map(|r| r.status()).collect();
            assert_eq!(statuses.iter().filter(|s| **s == Status::Ok).count(), 1, "round {round}: {statuses:?}");
            // The loser is refused as the last admin (409) or, when the winner committed first, as
            // no longer an admin: its token names a removed role (401) or it lacks admin (403).
            let refused = [Status::Conflict, Status::Unauthorized, Status::Forbidden];
            assert_eq!(statuses.iter().filter(|s| refused.contains(s)).count(), 1, "round {round}: {statuses:?}");
            // Restore both for the next round; whoever is still admin promotes the other.
            let admin = if statuses[0] == Status::Ok { &a_tokens } else { &b_tokens };
            for id in [&a.id, &b.id] {
                let response = app.put_authed(&format!("/admin/users/{id}/roles"), &admin.access, json!({"roles": ["admin"]})).await;
                assert_eq!(response.status(), Status::Ok);
            }
        }
    }
}

on_both_backends! {
    async fn a_user_may_hold_no_roles_or_several(backend) {
        let app = TestApp::new(backend).await;
        let (_, admin) = with_admin(&app).await;
        create_role(&app, &admin, "editor", &[]).await;
        let user = app.with_user().await;
        let tokens = app.login(&user).await;
        for roles in [json!([]), json!(["user", "editor"]), json!(["user"])] {
            let response = app.put_authed(&format!("/admin/users/{}/roles", user.id), &admin.access, json!({"roles": roles})).await;
            assert_eq!(response.status(), Status::Ok);
            let mut expected: Vec<String> = serde_json::from_value(roles.clone()).unwrap();
            expected.sort();
            let fetched = get_json(&app, &format!("/admin/users/{}", user.id), &admin.access).await;
            assert_eq!(fetched["roles"], json!(expected));
            let refreshed = tokens_after_login(&app, &user).await;
            let me = get_json(&app, "/users/me", &refreshed).await;
            assert_eq!(me["roles"], json!(expected));
        }
        assert_eq!(app.me_status(&tokens.access).await, Status::Ok);
    }
}

async fn tokens_after_login(app: &TestApp, user: &TestUser) -> String {
    app.login(user).await.access
}
