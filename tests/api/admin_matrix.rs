//! Every admin endpoint × {no token, `user`, a role with only the needed permission, a role with
//! another permission, `admin`}: exactly 401, 403, 2xx, 403, 2xx.

use crate::admin_support::*;
use crate::helpers::*;
use crate::on_both_backends;
use rocket::http::{Method, Status};
use serde_json::{json, Value};

/// One admin endpoint: method, path (`{user}` and `{role}` are replaced by fresh targets), body,
/// the permission it needs and its success status.
struct Endpoint {
    method: Method,
    path: &'static str,
    body: Option<Value>,
    permission: &'static str,
    success: Status,
}

fn endpoints() -> Vec<Endpoint> {
    use Method::*;
    let e = |method, path, body, permission, success| Endpoint { method, path, body, permission, success };
    vec![
        e(Get, "/admin/users", None, "users:read", Status::Ok),
        e(Get, "/admin/users/{user}", None, "users:read", Status::Ok),
        e(Put, "/admin/users/{user}/roles", Some(json!({"roles": ["user"]})), "users:write", Status::Ok),
        e(Patch, "/admin/users/{user}", Some(json!({"disabled": true})), "users:write", Status::Ok),
        e(Delete, "/admin/users/{user}", None, "users:write", Status::NoContent),
        e(Get, "/admin/users/{user}/sessions", None, "sessions:read", Status::Ok),
        e(Delete, "/admin/users/{user}/sessions", None, "sessions:revoke", Status::NoContent),
        e(Delete, "/admin/users/{user}/mfa", None, "users:write", Status::NoContent),
        e(Get, "/admin/roles", None, "roles:read", Status::Ok),
        e(
            Post,
            "/admin/roles",
            // No permissions: a holder of only `roles:write` may grant nothing else (delegation).
            Some(json!({"name": "{role}", "description": "d", "permissions": []})),
            "roles:write",
            Status::Created,
        ),
        e(
            Put,
            "/admin/roles/{role}",
            Some(json!({"description": "changed", "permissions": []})),
            "roles:write",
            Status::Ok,
        ),
        e(Delete, "/admin/roles/{role}", None, "roles:write", Status::NoContent),
        e(Get, "/admin/audit", None, "audit:read", Status::Ok),
    ]
}

const PERMISSIONS: &[&str] =
    &["users:read", "users:write", "roles:read", "roles:write", "sessions:read", "sessions:revoke", "audit:read"];

fn role_for(permission: &str) -> String {
    format!("only-{}", permission.replace(':', "-"))
}

on_both_backends! {
    async fn every_admin_endpoint_answers_exactly_by_permission(backend) {
        let app = TestApp::new(backend).await;
        let (_, admin) = with_admin(&app).await;
        let plain = {
            let user = app.with_user_email("plain@example.com").await;
            app.login(&user).await
        };
        let mut holders = std::collections::HashMap::new();
        for permission in PERMISSIONS {
            let role = role_for(permission);
            create_role(&app, &admin, &role, &[permission]).await;
            let (_, tokens) = user_with_roles(&app, &format!("{role}@example.com"), &[&role]).await;
            holders.insert(*permission, tokens);
        }
        let mut n = 0;
        for endpoint in endpoints() {
            let other = PERMISSIONS.iter().find(|p| **p != endpoint.permission).unwrap();
            let callers: [(&str, Option<&str>, Status); 5] = [
                ("no token", None, Status::Unauthorized),
                ("user", Some(&plain.access), Status::Forbidden),
                ("holder of another permission", Some(&holders[other].access), Status::Forbidden),
                ("holder of the permission", Some(&holders[endpoint.permission].access), endpoint.success),
                ("admin", Some(&admin.access), endpoint.success),
            ];
            for (who, token, expected) in callers {
                n += 1;
                let target = app.with_user_email(&format!("target{n}@example.com")).await;
                let role = format!("target-role-{n}");
                create_role(&app, &admin, &role, &[]).await;
                let path = endpoint.path.replace("{user}", &target.id).replace("{role}", &role);
                let new_role = format!("new-role-{n}");
                let body = endpoint.body.as_ref().map(|b| serde_json::from_str::<Value>(&b.to_string().replace("{role}", &new_role)).unwrap());
                let mut request = app.client.req(endpoint.method, path.clone());
                if let Some(token) = token {
                    request = app.authed(request, token);
                }
                let response = match body {
                    Some(body) => app.json_request(request, body).dispatch().await,
                    None => request.dispatch().await,
                };
                let status = response.status();
                assert_eq!(status, expected, "{} {} as {who}", endpoint.method, endpoint.path);
                if !status.class().is_success() {
                    let (_, code) = error_of(response).await;
                    let expected_code = if status == Status::Unauthorized { "invalid_token" } else { "insufficient_permissions" };
                    assert_eq!(code, expected_code, "{} {} as {who}", endpoint.method, endpoint.path);
                }
            }
        }
    }
}
