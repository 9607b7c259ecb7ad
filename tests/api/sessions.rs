//! Sessions: listing, logout, logout-all, ending one session, and password change.

use crate::helpers::*;
use crate::on_both_backends;
use rocket::http::{Header, Status};
use serde_json::{json, Value};

on_both_backends! {
    async fn sessions_are_listed_with_the_current_one_marked(backend) {
        let app = TestApp::new(backend).await;
        let user = app.with_user().await;
        let phone = app
            .json_request(app.client.post("/auth/login"), json!({"email": user.email, "password": user.password}))
            .header(Header::new("User-Agent", "PhoneApp/1.0"))
            .remote("203.0.113.7:4242".parse().unwrap())
            .dispatch()
            .await;
        let phone = tokens(phone).await;
        let laptop = app.login(&user).await;
        let response = app.get_authed("/auth/sessions", &laptop.access).await;
        assert_eq!(response.status(), Status::Ok);
        let body: Value = response.into_json().await.unwrap();
        let sessions = body["sessions"].as_array().unwrap();
        assert_eq!(sessions.len(), 2);
        for session in sessions {
            for field in ["id", "created_at", "last_used_at", "expires_at", "user_agent", "current"] {
                assert!(session.get(field).is_some(), "{field} missing in {session}");
            }
            let current = session["id"] == laptop.session_id.as_str();
            assert_eq!(session["current"], current);
        }
        let on_phone = sessions.iter().find(|s| s["id"] == phone.session_id.as_str()).unwrap();
        assert_eq!(on_phone["user_agent"], "PhoneApp/1.0");
        assert_eq!(on_phone["ip"], "203.0.113.7");
        assert!(on_phone["created_at"].as_str().unwrap().ends_with('Z'));
    }

    async fn session_lists_come_in_pages_of_fifty_by_default_and_take_limit_and_offset(backend) {
        let app = TestApp::new(backend).await;
        let (_, admin) = crate::admin_support::with_admin(&app).await;
        let user = app.with_user().await;
        let mut logins = Vec::new();
        for _ in 0..52 {
            logins.push(app.login(&user).await);
        }
        let me = &logins[0].access;
        let ids = |body: Value| -> Vec<String> {
            body["sessions"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap().to_owned()).collect()
        };
        let list = |path: String, token: String| {
            let app = &app;
            async move {
                let response = app.get_authed(&path, &token).await;
                assert_eq!(response.status(), Status::Ok, "{path}");
                ids(response.into_json().await.unwrap())
            }
        };
        assert_eq!(list("/auth/sessions".into(), me.clone()).await.len(), 50, "the default page");
        let all = list("/auth/sessions?limit=200".into(), me.clone()).await;
        assert_eq!(all.len(), 52);
        assert_eq!(list("/auth/sessions?limit=1".into(), me.clone()).await, all[..1]);
        assert_eq!(list("/auth/sessions?limit=2&offset=1".into(), me.clone()).await, all[1..3]);
        assert_eq!(list("/auth/sessions?offset=50".into(), me.clone()).await, all[50..]);
        assert!(list("/auth/sessions?limit=0".into(), me.clone()).await.is_empty());
        let (status, code) = error_of(app.get_authed("/auth/sessions?limit=-1", me).await).await;
        assert_eq!((status, code.as_str()), (Status::UnprocessableEntity, "invalid_request"));
        let admin_path = |query: &str| format!("/admin/users/{}/sessions{query}", user.id);
        assert_eq!(list(admin_path(""), admin.access.clone()).await.len(), 50);
        assert_eq!(list(admin_path("?limit=2&offset=1"), admin.access.clone()).await, all[1..3]);
        // A repeated parameter is refused rather than read as absent (which would drop a filter).
        for path in ["/auth/sessions?limit=1&limit=2", &format!("/admin/audit?user_id={}&user_id=x", user.id)] {
            let (status, code) = error_of(app.get_authed(path, &admin.access).await).await;
            assert_eq!((status, code.as_str()), (Status::BadRequest, "invalid_request"), "{path}");
        }
        // Out-of-range and hostile paging values: 422, or an empty page past the end.
        for query in ["limit=99999999999999999999", "offset=-1", "limit=%00", "limit=1%002"] {
            let (status, _) = error_of(app.get_authed(&format!("/auth/sessions?{query}"), me).await).await;
            assert_eq!(status, Status::UnprocessableEntity, "{query}");
        }
        assert!(list("/auth/sessions?offset=9223372036854775807".into(), me.clone()).await.is_empty());
        assert!(list(admin_path("?offset=9223372036854775807"), admin.access.clone()).await.is_empty());
        let anonymous = app.client.get("/admin/audit?event=a&event=b").dispatch().await;
        assert_eq!(anonymous.status(), Status::Unauthorized, "authentication comes first");
        let response = app.get_authed("/admin/roles?limit=1&offset=1", &admin.access).await;
        let roles: Value = response.into_json().await.unwrap();
        assert_eq!(roles["roles"].as_array().map(Vec::len), Some(1));
    }

    async fn last_used_at_moves_with_each_exchange_and_never_back(backend) {
        let app = TestApp::new(backend).await;
        let user = app.with_user().await;
        let first = app.login(&user).await;
        let app = &app;
        let last_used = |tokens: Tokens| async move {
            let body: Value = app.get_authed("/auth/sessions", &tokens.access).await.into_json().await.unwrap();
            (body["sessions"][0]["created_at"].clone(), body["sessions"][0]["last_used_at"].clone())
        };
        let (created, used) = last_used(first.clone()).await;
        assert_eq!(created, used);
        app.clock.advance(30);
        let second = tokens(app.refresh_response(&first.refresh).await).await;
        // Within the same second: a second exchange works and last use stays where it is.
        let third = tokens(app.refresh_response(&second.refresh).await).await;
        let (created_now, used_now) = last_used(third.clone()).await;
        assert_eq!(created_now, created);
        assert_ne!(used_now, used);
        let expected = app.client.rocket().state::<portcullis::auth::Auth>().unwrap().clock.now();
        assert_eq!(used_now, json!(portcullis::clock::rfc3339(expected)));
        app.clock.advance(5);
        let fourth = tokens(app.refresh_response(&third.refresh).await).await;
        assert_eq!(last_used(fourth).await.1, json!(portcullis::clock::rfc3339(expected + 5)));
    }

    async fn logout_ends_the_session_of_the_access_token_at_once(backend) {
        let app = TestApp::new(backend).await;
        let user = app.with_user().await;
        for body in [Some(json!({})), None, Some(json!(null)), Some(json!({"refresh_token": "whatever"}))] {
            let tokens = app.login(&user).await;
            let other = app.login(&user).await;
            let request = app.authed(app.client.post("/auth/logout"), &tokens.access);
            let response = match &body {
                Some(body) => app.json_request(request, body.clone()).dispatch().await,
                None => request.dispatch().await,
            };
            assert_eq!(response.status(), Status::NoContent, "body {body:?}");
            assert_eq!(app.me_status(&tokens.access).await, Status::Unauthorized);
            let (status, code) = error_of(app.refresh_response(&tokens.refresh).await).await;
            assert_eq!((status, code.as_str()), (Status::Unauthorized, "invalid_grant"));
            assert_eq!(app.me_status(&other.access).await, Status::Ok, "other sessions live on");
        }
    }

    async fn logout_all_ends_every_session_of_the_user(backend) {
        let app = TestApp::new(backend).await;
        let user = app.with_user().await;
        let bob = app.with_user_email("bob@example.com").await;
        let a = app.login(&user).await;
        let b = app.login(&user).await;
        let bobs = app.login(&bob).await;
        let response = app.authed(app.client.post("/auth/logout-all"), &a.access).dispatch().await;
        assert_eq!(response.status(), Status::NoContent);
        for tokens in [&a, &b] {
            assert_eq!(app.me_status(&tokens.access).await, Status::Unauthorized);
            assert_eq!(app.refresh_response(&tokens.refresh).await.status(), Status::Unauthorized);
        }
        assert_eq!(app.me_status(&bobs.access).await, Status::Ok);
    }

    async fn deleting_a_session_ends_it_and_other_users_sessions_are_not_found(backend) {
        let app = TestApp::new(backend).await;
        let user = app.with_user().await;
        let bob = app.with_user_email("bob@example.com").await;
        let mine = app.login(&user).await;
        let old = app.login(&user).await;
        let bobs = app.login(&bob).await;

        let response = app.delete_authed(&format!("/auth/sessions/{}", bobs.session_id), &mine.access).await;
        assert_eq!(error_of(response).await, (Status::NotFound, "not_found".to_string()));
        assert_eq!(app.me_status(&bobs.access).await, Status::Ok);
        let response = app.delete_authed("/auth/sessions/not-a-uuid", &mine.access).await;
        assert_eq!(response.status(), Status::NotFound);
        let response = app.delete_authed(&format!("/auth/sessions/{}", uuid::Uuid::new_v4()), &mine.access).await;
        assert_eq!(response.status(), Status::NotFound);

        let response = app.delete_authed(&format!("/auth/sessions/{}", old.session_id), &mine.access).await;
        assert_eq!(response.status(), Status::NoContent);
        assert_eq!(app.me_status(&old.access).await, Status::Unauthorized);
        assert_eq!(app.me_status(&mine.access).await, Status::Ok);
        let listed: Value = app.get_authed("/auth/sessions", &mine.access).await.into_json().await.unwrap();
        assert_eq!(listed["sessions"].as_array().unwrap().len(), 1);
    }

    async fn users_me_returns_the_user_object_without_secrets(backend) {
        let app = TestApp::new(backend).await;
        let user = app.with_user().await;
        let tokens = app.login(&user).await;
        let body: Value = app.get_authed("/users/me", &tokens.access).await.into_json().await.unwrap();
        assert_eq!(body["id"], user.id.as_str());
        assert_eq!(body["email"], "alice@example.com");
        assert_eq!(body["roles"], json!(["user"]));
        assert_eq!(body["disabled"], false);
        assert!(body["created_at"].is_string());
        let text = body.to_string();
        assert!(!text.contains("argon2") && !text.contains("password"), "{text}");
    }

    async fn changing_the_password_ends_every_other_session(backend) {
        let app = TestApp::new(backend).await;
        let user = app.with_user().await;
        let current = app.login(&user).await;
        let other = app.login(&user).await;
        let change = |current_password: &str, new_password: &str| json!({"current_password": current_password, "new_password": new_password});

        let wrong = app.put_authed("/users/me/password", &current.access, change("wrong password", "new password 123")).await;
        // Every 401 carries a challenge; the token was fine, so this one names no error.
        assert_eq!(wrong.headers().get_one("WWW-Authenticate"), Some("Bearer"));
        assert_eq!(error_of(wrong).await, (Status::Unauthorized, "invalid_credentials".to_string()));
        let short = app.put_authed("/users/me/password", &current.access, change(&user.password, "short")).await;
        assert_eq!(error_of(short).await, (Status::UnprocessableEntity, "invalid_request".to_string()));
        assert_eq!(app.me_status(&other.access).await, Status::Ok, "failed changes end nothing");

        let ok = app.put_authed("/users/me/password", &current.access, change(&user.password, "new password 123")).await;
        assert_eq!(ok.status(), Status::NoContent);
        assert_eq!(app.me_status(&other.access).await, Status::Unauthorized);
        assert_eq!(app.refresh_response(&other.refresh).await.status(), Status::Unauthorized);
        assert_eq!(app.me_status(&current.access).await, Status::Ok);
        assert_eq!(app.refresh_response(&current.refresh).await.status(), Status::Ok);

        assert_eq!(app.login_response(&user.email, &user.password).await.status(), Status::Unauthorized);
        assert_eq!(app.login_response(&user.email, "new password 123").await.status(), Status::Ok);
    }
}

on_both_backends! {
    async fn the_token_info_route_describes_the_callers_token(backend) {
        let app = TestApp::new(backend).await;
        let user = app.with_user().await;
        let tokens = app.login(&user).await;
        let body: Value = app.get_authed("/users/me/token", &tokens.access).await.into_json().await.unwrap();
        assert_eq!(body["user_id"], user.id.as_str());
        assert_eq!(body["session_id"], tokens.session_id.as_str());
        assert_eq!(body["roles"], json!(["user"]));
        assert!(body["expires_at"].as_str().unwrap().ends_with('Z'));
        app.post_authed("/auth/logout", &tokens.access, json!({})).await;
        assert_eq!(app.get_authed("/users/me/token", &tokens.access).await.status(), Status::Unauthorized);
    }
}

on_both_backends! {
    async fn a_client_cannot_choose_its_recorded_address_with_a_header(backend) {
        let app = TestApp::new(backend).await;
        let user = app.with_user().await;
        let response = app
            .json_request(app.client.post("/auth/login"), json!({"email": user.email, "password": user.password}))
            .header(Header::new("X-Real-IP", "10.9.8.7"))
            .remote("203.0.113.9:1000".parse().unwrap())
            .dispatch()
            .await;
        let tokens = tokens(response).await;
        let listed: Value = app.get_authed("/auth/sessions", &tokens.access).await.into_json().await.unwrap();
        assert_eq!(listed["sessions"][0]["ip"], "203.0.113.9");
    }
}
