//! Role administration and the audit log.

use crate::admin_support::*;
use crate::helpers::*;
use crate::on_both_backends;
use rocket::http::Status;
use serde_json::{json, Value};

on_both_backends! {
    async fn built_in_roles_are_listed_with_their_permissions(backend) {
        let app = TestApp::new(backend).await;
        let (_, admin) = with_admin(&app).await;
        let roles = get_json(&app, "/admin/roles", &admin.access).await;
        let by_name = |name: &str| roles["roles"].as_array().unwrap().iter().find(|r| r["name"] == name).cloned().unwrap();
        let admin_role = by_name("admin");
        for permission in ["users:read", "users:write", "roles:read", "roles:write", "sessions:read", "sessions:revoke", "audit:read"] {
            assert!(admin_role["permissions"].as_array().unwrap().contains(&json!(permission)), "{permission}");
        }
        assert!(by_name("user")["description"].is_string());
    }

    async fn roles_are_created_changed_and_deleted(backend) {
        let app = TestApp::new(backend).await;
        let (_, admin) = with_admin(&app).await;
        let response = app.post_authed("/admin/roles", &admin.access, json!({"name": "auditor", "description": "Reads the log", "permissions": ["audit:read"]})).await;
        assert_eq!(response.status(), Status::Created);
        let role: Value = response.into_json().await.unwrap();
        assert_eq!((role["name"].clone(), role["permissions"].clone()), (json!("auditor"), json!(["audit:read"])));
        let response = app.put_authed("/admin/roles/auditor", &admin.access, json!({"description": "More", "permissions": ["audit:read", "users:read"]})).await;
        assert_eq!(response.status(), Status::Ok);
        assert_eq!(response.into_json::<Value>().await.unwrap()["permissions"], json!(["audit:read", "users:read"]));
        assert_eq!(app.delete_authed("/admin/roles/auditor", &admin.access).await.status(), Status::NoContent);
        assert_eq!(app.delete_authed("/admin/roles/auditor", &admin.access).await.status(), Status::NotFound);
        let response = app.put_authed("/admin/roles/auditor", &admin.access, json!({"description": "x", "permissions": []})).await;
        assert_eq!(response.status(), Status::NotFound);
    }

    async fn role_definitions_are_validated(backend) {
        let app = TestApp::new(backend).await;
        let (_, admin) = with_admin(&app).await;
        let unprocessable = (Status::UnprocessableEntity, "invalid_request".to_string());
        let bad_permission = app.post_authed("/admin/roles", &admin.access, json!({"name": "x", "description": "", "permissions": ["users:fly"]})).await;
        assert_eq!(error_of(bad_permission).await, unprocessable);
        let bad_name = app.post_authed("/admin/roles", &admin.access, json!({"name": "Has Spaces", "description": "", "permissions": []})).await;
        assert_eq!(error_of(bad_name).await, unprocessable);
        create_role(&app, &admin, "editor", &[]).await;
        let duplicate = app.post_authed("/admin/roles", &admin.access, json!({"name": "editor", "description": "", "permissions": []})).await;
        assert_eq!(error_of(duplicate).await, (Status::Conflict, "conflict".to_string()));
        let bad_update = app.put_authed("/admin/roles/editor", &admin.access, json!({"description": "", "permissions": ["nope:nope"]})).await;
        assert_eq!(error_of(bad_update).await, unprocessable);
    }

    async fn built_in_and_assigned_roles_cannot_be_deleted(backend) {
        let app = TestApp::new(backend).await;
        let (_, admin) = with_admin(&app).await;
        let conflict = (Status::Conflict, "conflict".to_string());
        for builtin in ["admin", "user"] {
            assert_eq!(error_of(app.delete_authed(&format!("/admin/roles/{builtin}"), &admin.access).await).await, conflict);
        }
        create_role(&app, &admin, "editor", &["users:read"]).await;
        user_with_roles(&app, "ed@example.com", &["editor"]).await;
        assert_eq!(error_of(app.delete_authed("/admin/roles/editor", &admin.access).await).await, conflict);
        let changed = app.put_authed("/admin/roles/admin", &admin.access, json!({"description": "x", "permissions": ["users:read"]})).await;
        assert_eq!(error_of(changed).await, conflict, "admin keeps every permission");
    }

    async fn a_permission_edit_takes_effect_on_every_instance_within_a_second(backend) {
        let app = TestApp::new(backend).await;
        let other = app.second_instance(|b| b).await;
        let (_, admin) = with_admin(&app).await;
        create_role(&app, &admin, "auditor", &["audit:read"]).await;
        let (_, auditor) = user_with_roles(&app, "auditor@example.com", &["auditor"]).await;
        assert_eq!(app.get_authed("/admin/audit", &auditor.access).await.status(), Status::Ok);
        let response = app.put_authed("/admin/roles/auditor", &admin.access, json!({"description": "none", "permissions": []})).await;
        assert_eq!(response.status(), Status::Ok);
        assert_eq!(app.get_authed("/admin/audit", &auditor.access).await.status(), Status::Forbidden, "at once where it changed");
        eventually("the other instance drops the removed permission", async || {
            other.get_authed("/admin/audit", &auditor.access).await.status() == Status::Forbidden
        })
        .await;
    }

    async fn every_contract_event_is_audited_without_secrets(backend) {
        let app = TestApp::builder(backend).with_config("reuse_grace", 0).build().await;
        let (_, admin) = with_admin(&app).await;
        let user = app.with_user().await;
        let first = app.login(&user).await;
        app.login_response(&user.email, "wrong password!").await;
        let second = tokens(app.refresh_response(&first.refresh).await).await;
        app.refresh_response(&first.refresh).await;
        let third = app.login(&user).await;
        app.post_authed("/auth/logout", &third.access, json!({})).await;
        let fourth = app.login(&user).await;
        app.put_authed("/users/me/password", &fourth.access, json!({"current_password": PASSWORD, "new_password": "another password"})).await;
        app.put_authed(&format!("/admin/users/{}/roles", user.id), &admin.access, json!({"roles": ["user"]})).await;
        app.delete_authed(&format!("/admin/users/{}/sessions", user.id), &admin.access).await;
        patch_authed(&app, &format!("/admin/users/{}", user.id), &admin.access, json!({"disabled": true})).await;
        app.delete_authed(&format!("/admin/users/{}", user.id), &admin.access).await;

        let log = get_json(&app, &format!("/admin/audit?user_id={}&limit=200", user.id), &admin.access).await;
        let events: Vec<&str> = log["events"].as_array().unwrap().iter().map(|e| e["event"].as_str().unwrap()).collect();
        for expected in ["login_succeeded", "login_failed", "refresh_reuse_detected", "logout", "password_changed", "roles_changed", "sessions_revoked", "user_disabled", "user_deleted"] {
            assert!(events.contains(&expected), "{expected} missing from {events:?}");
        }
        let text = log.to_string();
        for secret in [first.refresh.as_str(), second.refresh.as_str(), first.access.as_str(), PASSWORD, "another password", "wrong password!"] {
            assert!(!text.contains(secret), "the audit log contains a secret");
        }
        let event = &log["events"][0];
        for field in ["id", "at", "event", "user_id", "ip", "detail"] {
            assert!(event.get(field).is_some(), "{field} in {event}");
        }
        assert_eq!(event["event"], "user_deleted", "newest first");
        let only = get_json(&app, "/admin/audit?event=roles_changed", &admin.access).await;
        assert!(only["events"].as_array().unwrap().iter().all(|e| e["event"] == "roles_changed"));
        assert_eq!(only["events"][0]["detail"]["after"], json!(["user"]));
        let limited = get_json(&app, "/admin/audit?limit=2", &admin.access).await;
        assert_eq!(limited["events"].as_array().unwrap().len(), 2);
        let bad = app.get_authed("/admin/audit?user_id=nope", &admin.access).await;
        assert_eq!(bad.status(), Status::UnprocessableEntity);
    }

    async fn failed_logins_for_unknown_emails_are_audited_once_per_address_window(backend) {
        let app = TestApp::new(backend).await;
        let (_, admin) = with_admin(&app).await;
        for i in 0..10 {
            let response = app
                .json_request(app.client.post("/auth/login"), json!({"email": format!("ghost{i}@example.com"), "password": "whatever!"}))
                .remote("192.0.2.50:1234".parse().unwrap())
                .dispatch()
                .await;
            assert_eq!(response.status(), Status::Unauthorized);
        }
        let log = get_json(&app, "/admin/audit?event=login_failed", &admin.access).await;
        let rows = log["events"].as_array().unwrap();
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(rows[0]["ip"], "192.0.2.50");
        assert_eq!(rows[0]["detail"]["address_failures"], 10, "the one row counts them: {rows:?}");
        assert!(!log.to_string().contains("ghost"), "unknown emails are not stored");
        // From another address whose window a real account's failure opened: still one row.
        let user = app.with_user().await;
        let from = |email: String| {
            let body = json!({"email": email, "password": "whatever!"});
            app.json_request(app.client.post("/auth/login"), body).remote("192.0.2.51:1234".parse().unwrap()).dispatch()
        };
        assert_eq!(from(user.email.clone()).await.status(), Status::Unauthorized);
        for i in 0..3 {
            assert_eq!(from(format!("ghost{i}@example.com")).await.status(), Status::Unauthorized);
        }
        let log = get_json(&app, "/admin/audit?event=login_failed", &admin.access).await;
        let rows: Vec<&Value> = log["events"].as_array().unwrap().iter().filter(|e| e["ip"] == "192.0.2.51").collect();
        let unknown: Vec<&&Value> = rows.iter().filter(|e| e["detail"]["reason"] == "unknown_account").collect();
        assert_eq!((rows.len(), unknown.len()), (2, 1), "{rows:?}");
        assert_eq!(unknown[0]["detail"]["address_failures"], 4);
    }
}
