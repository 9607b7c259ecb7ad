//! What a demotion does to actions already under way and to clients the demoted account made:
//! an account action checks the actor's power inside the transaction that writes it (after the
//! lock every role change takes), so a demotion cannot slip between check and write; and the
//! clients of an account that loses permissions lose them too — their tokens are cut off at once
//! (here, elsewhere and at resource servers through the feed), and the next token is bounded by
//! what the creator holds now.

use std::sync::Mutex;

use crate::admin_support::*;
use crate::helpers::*;
use crate::oauth::post_form;
use crate::on_both_backends;
use diesel::sql_types::BigInt;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use rocket::http::Status;
use serde_json::{json, Value};

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// How many connections to the test database wait for a lock now.
async fn waiting_on_locks(observer: &mut AsyncPgConnection) -> i64 {
    let query = "SELECT count(*) AS n FROM pg_stat_activity \
                 WHERE datname = current_database() AND wait_event_type = 'Lock'";
    diesel::sql_query(query).get_result::<Count>(observer).await.unwrap().n
}

/// A client created by `creator` with `permissions`: `(client_id, client_secret)`.
async fn client_of(app: &TestApp, creator: &Tokens, permissions: &[&str]) -> (String, String) {
    let response =
        app.post_authed("/admin/clients", &creator.access, json!({"name": "c", "permissions": permissions})).await;
    assert_eq!(response.status(), Status::Created);
    let body: Value = response.into_json().await.unwrap();
    (body["client_id"].as_str().unwrap().to_owned(), body["client_secret"].as_str().unwrap().to_owned())
}

/// A client-credentials token, or the error.
async fn token_of(app: &TestApp, id: &str, secret: &str, scope: Option<&str>) -> Result<String, (Status, String)> {
    let mut form = vec![("grant_type", "client_credentials"), ("client_id", id), ("client_secret", secret)];
    form.extend(scope.map(|s| ("scope", s)));
    let response = post_form(app, "/oauth/token", &form).await;
    if response.status() != Status::Ok {
        return Err(error_of(response).await);
    }
    Ok(response.into_json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned())
}

fn invalid_token() -> (Status, String) {
    (Status::Unauthorized, "invalid_token".to_owned())
}

on_both_backends! {
    async fn a_demotion_cannot_slip_between_an_account_actions_check_and_its_write(backend) {
        // PostgreSQL only: the test holds a row lock to stop the action between check and write.
        if backend == Backend::Sqlite {
            return;
        }
        let app = TestApp::new(backend).await;
        let (_, admin) = with_admin(&app).await;
        create_role(&app, &admin, "helpdesk", &["users:read", "users:write", "sessions:revoke"]).await;
        let (helper_user, helper) = user_with_roles(&app, "help@example.com", &["helpdesk"]).await;
        let (target, _) = user_with_roles(&app, "target@example.com", &["user"]).await;
        let mut observer = AsyncPgConnection::establish(app.db_url()).await.unwrap();
        let mut holder = AsyncPgConnection::establish(app.db_url()).await.unwrap();
        let lock = format!("BEGIN; SELECT id FROM sessions WHERE user_id = '{}' FOR UPDATE", target.id);
        holder.batch_execute(&lock).await.unwrap();

        let finished = Mutex::new(vec![]);
        let end_sessions = async {
            let status = app.delete_authed(&format!("/admin/users/{}/sessions", target.id), &helper.access).await.status();
            finished.lock().unwrap().push("end_sessions");
            status
        };
        let demote_then_release = async {
            // Once the action waits on the row, the admin demotes the helper...
            eventually("the action waits", async || waiting_on_locks(&mut observer).await >= 1).await;
            let demote = async {
                let path = format!("/admin/users/{}/roles", helper_user.id);
                let status = app.put_authed(&path, &admin.access, json!({"roles": ["user"]})).await.status();
                finished.lock().unwrap().push("demote");
                status
            };
            // ...and the row is let go once the demotion committed or waits for the action.
            let release = async {
                eventually("the demotion commits or waits", async || {
                    finished.lock().unwrap().contains(&"demote") || waiting_on_locks(&mut observer).await >= 2
                })
                .await;
                holder.batch_execute("COMMIT").await.unwrap();
            };
            futures::join!(demote, release).0
        };
        let (ended, demoted) = futures::join!(end_sessions, demote_then_release);
        assert_eq!(demoted, Status::Ok);
        let order = finished.lock().unwrap().clone();
        // Either the action was written before the demotion, or it was refused: never written
        // after the demotion committed, on the strength of a check made before it.
        if ended == Status::NoContent {
            assert_eq!(order, vec!["end_sessions", "demote"], "the sessions were ended after the demotion");
        } else {
            assert_eq!(ended, Status::Forbidden);
        }
    }

    async fn a_creator_losing_a_role_cuts_off_its_clients_tokens_even_where_no_grant_is_checked(backend) {
        let app = TestApp::new(backend).await;
        let other = app.second_instance(|b| b).await;
        let (_, admin) = with_admin(&app).await;
        create_role(&app, &admin, "manager", &["users:read", "audit:read", "clients:write"]).await;
        let (manager_user, manager) = user_with_roles(&app, "manager@example.com", &["manager"]).await;
        let (id, secret) = client_of(&app, &manager, &["users:read", "audit:read"]).await;
        let (grandchild_id, grandchild_secret) = {
            let (parent_id, parent_secret) = client_of(&app, &manager, &["clients:write", "audit:read"]).await;
            let access = token_of(&app, &parent_id, &parent_secret, None).await.unwrap();
            let parent = Tokens { access, refresh: String::new(), session_id: String::new(), body: Value::Null };
            client_of(&app, &parent, &["audit:read"]).await
        };
        let token = token_of(&app, &id, &secret, None).await.unwrap();
        let grandchild = token_of(&app, &grandchild_id, &grandchild_secret, None).await.unwrap();
        assert_eq!(other.get_authed("/admin/audit", &token).await.status(), Status::Ok);
        assert_eq!(app.get_authed("/admin/audit", &grandchild).await.status(), Status::Ok);

        create_role(&app, &admin, "reader", &["users:read", "clients:write"]).await;
        let path = format!("/admin/users/{}/roles", manager_user.id);
        assert_eq!(app.put_authed(&path, &admin.access, json!({"roles": ["reader"]})).await.status(), Status::Ok);
        // Issued before the demotion: refused at once here (and for the client's own clients)...
        assert_eq!(error_of(app.get_authed("/admin/audit", &token).await).await, invalid_token());
        assert_eq!(error_of(app.get_authed("/admin/users", &token).await).await, invalid_token(), "whatever it asks");
        assert_eq!(error_of(app.get_authed("/admin/audit", &grandchild).await).await, invalid_token());
        // ...and within a second on another instance.
        eventually("the other instance cuts the token off", async || {
            other.get_authed("/admin/users", &token).await.status() == Status::Unauthorized
        })
        .await;
        // A new token holds what the creator still holds.
        let fresh = token_of(&app, &id, &secret, None).await.unwrap();
        assert_eq!(app.get_authed("/admin/users", &fresh).await.status(), Status::Ok);
        assert_eq!(error_of(app.get_authed("/admin/audit", &fresh).await).await.0, Status::Forbidden);
    }

    async fn a_permission_taken_from_the_creators_role_cuts_off_its_clients_and_bounds_their_role_grants(backend) {
        let app = TestApp::new(backend).await;
        let (_, admin) = with_admin(&app).await;
        create_role(&app, &admin, "rolesmith", &["roles:write", "audit:read", "clients:write"]).await;
        let (_, smith) = user_with_roles(&app, "smith@example.com", &["rolesmith"]).await;
        let (id, secret) = client_of(&app, &smith, &["roles:write", "audit:read"]).await;
        let token = token_of(&app, &id, &secret, None).await.unwrap();
        let role = |name: &str| json!({"name": name, "description": name, "permissions": ["audit:read"]});
        assert_eq!(app.post_authed("/admin/roles", &token, role("auditors")).await.status(), Status::Created);

        let narrowed = json!({"permissions": ["roles:write", "clients:write"]});
        assert_eq!(app.put_authed("/admin/roles/rolesmith", &admin.access, narrowed).await.status(), Status::Ok);
        assert_eq!(error_of(app.post_authed("/admin/roles", &token, role("auditors2")).await).await, invalid_token());
        // The next token, and what the client may grant with it, stop at what the creator holds.
        let fresh = token_of(&app, &id, &secret, None).await.unwrap();
        let (status, code) = error_of(app.post_authed("/admin/roles", &fresh, role("auditors3")).await).await;
        assert_eq!((status, code.as_str()), (Status::Forbidden, "insufficient_permissions"));
        let changed = json!({"permissions": ["audit:read"]});
        assert_eq!(error_of(app.put_authed("/admin/roles/auditors", &fresh, changed).await).await.0, Status::Forbidden);
        let asked = token_of(&app, &id, &secret, Some("audit:read")).await;
        assert_eq!(asked.unwrap_err(), (Status::BadRequest, "invalid_scope".to_owned()));
    }
}
