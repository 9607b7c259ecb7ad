//! Accounts: registration rules and login answers that reveal nothing.

use crate::helpers::*;
use crate::on_both_backends;
use crate::rotation::disable_in_storage;
use rocket::http::Status;
use serde_json::{json, Value};

on_both_backends! {
    async fn registering_returns_201_and_the_user_object_with_a_normalised_email(backend) {
        let app = TestApp::new(backend).await;
        let response = app.register("  Alice@Example.COM ", PASSWORD).await;
        assert_eq!(response.status(), Status::Created);
        let body: Value = response.into_json().await.unwrap();
        assert_eq!(body["email"], "alice@example.com");
        assert_eq!(body["roles"], json!(["user"]));
        assert_eq!(body["disabled"], false);
        assert!(body["id"].as_str().unwrap().parse::<uuid::Uuid>().is_ok());
        assert!(body["created_at"].as_str().unwrap().ends_with('Z'));
        assert!(body.get("password_hash").is_none() && body.get("password").is_none());
    }

    async fn an_email_is_taken_whatever_its_case(backend) {
        let app = TestApp::new(backend).await;
        app.with_user().await;
        let (status, code) = error_of(app.register("ALICE@example.com", PASSWORD).await).await;
        assert_eq!((status, code.as_str()), (Status::Conflict, "conflict"));
    }

    async fn look_alike_and_invisible_character_emails_never_pass_for_an_existing_address(backend) {
        let app = TestApp::new(backend).await;
        let admin = app.with_user_email("admin@example.com").await;
        // Zero-width (in the local part and the domain), bidi override, byte-order mark: 422.
        for email in ["ad\u{200B}min@example.com", "admin@exa\u{200B}mple.com", "\u{202E}admin@example.com", "admin@example.com\u{FEFF}"] {
            let (status, code) = error_of(app.register(email, PASSWORD).await).await;
            assert_eq!((status, code.as_str()), (Status::UnprocessableEntity, "invalid_request"), "{email:?}");
            // At login, such an email is answered like an unknown one.
            let (status, code) = error_of(app.login_response(email, &admin.password).await).await;
            assert_eq!((status, code.as_str()), (Status::Unauthorized, "invalid_credentials"), "{email:?}");
        }
        // Fullwidth letters are the same address after NFKC: taken.
        let fullwidth = "\u{FF41}\u{FF44}\u{FF4D}\u{FF49}\u{FF4E}@example.com";
        let (status, code) = error_of(app.register(fullwidth, PASSWORD).await).await;
        assert_eq!((status, code.as_str()), (Status::Conflict, "conflict"));
        // Stored normalised, and every lookup normalises the same way.
        let response = app.register("\u{FF22}ob@\u{FF25}XAMPLE.com", PASSWORD).await;
        assert_eq!(response.status(), Status::Created);
        assert_eq!(response.into_json::<Value>().await.unwrap()["email"], "bob@example.com");
        assert_eq!(app.login_response(fullwidth, &admin.password).await.status(), Status::Ok);
        assert_eq!(app.login_response("bob@example.com", PASSWORD).await.status(), Status::Ok);
    }

    async fn bad_emails_and_passwords_are_422_naming_the_field(backend) {
        let app = TestApp::new(backend).await;
        for (email, password, field) in [
            ("not-an-email", PASSWORD, "email"),
            ("alice@", PASSWORD, "email"),
            ("alice@example.com", "1234567", "password"),
            ("alice@example.com", &"x".repeat(129), "password"),
        ] {
            let response = app.register(email, password).await;
            assert_eq!(response.status(), Status::UnprocessableEntity, "{email} / {} chars", password.len());
            let body: Value = response.into_json().await.unwrap();
            assert_eq!(body["error"], "invalid_request");
            assert!(body["error_description"].as_str().unwrap().contains(field), "{body}");
        }
        assert_eq!(app.register("alice@example.com", &"x".repeat(128)).await.status(), Status::Created);
        assert_eq!(app.register("bob@example.com", "x8-y7-z6").await.status(), Status::Created, "8 characters");
    }

    async fn closed_registration_is_403_insufficient_permissions(backend) {
        let app = TestApp::builder(backend).with_config("registration", "closed").build().await;
        let (status, code) = error_of(app.register("alice@example.com", PASSWORD).await).await;
        assert_eq!((status, code.as_str()), (Status::Forbidden, "insufficient_permissions"));
    }

    async fn an_unknown_email_and_a_wrong_password_get_the_same_answer(backend) {
        let app = TestApp::new(backend).await;
        let user = app.with_user().await;
        let wrong = app.login_response(&user.email, "wrong password!").await;
        let (wrong_status, wrong_body) = (wrong.status(), wrong.into_string().await.unwrap());
        let unknown = app.login_response("nobody@example.com", "wrong password!").await;
        let (unknown_status, unknown_body) = (unknown.status(), unknown.into_string().await.unwrap());
        assert_eq!(wrong_status, Status::Unauthorized);
        assert_eq!((wrong_status, &wrong_body), (unknown_status, &unknown_body));
        assert!(wrong_body.contains("invalid_credentials"));
        let malformed = app.login_response("not-an-email", "wrong password!").await;
        assert_eq!(malformed.status(), Status::Unauthorized);
        assert_eq!(malformed.into_string().await.unwrap(), wrong_body);
    }

    async fn login_accepts_the_email_in_any_case_and_starts_a_new_session_each_time(backend) {
        let app = TestApp::new(backend).await;
        let user = app.with_user().await;
        let a = tokens(app.login_response(" ALICE@example.com", &user.password).await).await;
        let b = app.login(&user).await;
        assert_ne!(a.session_id, b.session_id);
    }

    async fn a_disabled_account_gets_403_account_disabled_at_login(backend) {
        let app = TestApp::new(backend).await;
        let user = app.with_user().await;
        disable_in_storage(&app, &user.id).await;
        let (status, code) = error_of(app.login_response(&user.email, &user.password).await).await;
        assert_eq!((status, code.as_str()), (Status::Forbidden, "account_disabled"));
        // A wrong password still says nothing about the account's state.
        let (status, code) = error_of(app.login_response(&user.email, "wrong password!").await).await;
        assert_eq!((status, code.as_str()), (Status::Unauthorized, "invalid_credentials"));
    }

    async fn a_hash_with_old_parameters_is_upgraded_at_the_next_login(backend) {
        let old = TestApp::builder(backend).with_config("argon2_iterations", 1).build().await;
        let user = old.with_user().await;
        let new = old.second_instance(|b| b.with_config("argon2_iterations", 2)).await;
        assert!(stored_hash(&new, &user.email).await.contains("t=1"));
        new.login(&user).await;
        let upgraded = stored_hash(&new, &user.email).await;
        assert!(upgraded.starts_with("$argon2id$") && upgraded.contains("t=2"), "{upgraded}");
        // Both instances still accept the password.
        old.login(&user).await;
    }
}

async fn stored_hash(app: &TestApp, email: &str) -> String {
    use rocket_db_pools::{Database, Pool};
    let db = portcullis::db::Db::fetch(app.client.rocket()).expect("db");
    let mut conn = db.get().await.expect("connection");
    let user = portcullis::db::with_conn!(conn, |c| portcullis::models::UserStore::find_user_by_email(c, email).await)
        .expect("query")
        .expect("user");
    user.password_hash
}
