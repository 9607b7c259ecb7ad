//! The registration limit: attempts to register from one client address in an hour, counted in
//! the database (so across instances), refused ones included.

use crate::helpers::*;
use crate::on_both_backends;
use rocket::http::Status;
use rocket::local::asynchronous::LocalResponse;
use serde_json::json;

async fn register_from<'a>(app: &'a TestApp, email: &str, ip: &str) -> LocalResponse<'a> {
    app.json_request(app.client.post("/auth/register"), json!({"email": email, "password": PASSWORD}))
        .remote(format!("{ip}:5000").parse().unwrap())
        .dispatch()
        .await
}

on_both_backends! {
    async fn registrations_beyond_the_hourly_limit_of_an_address_get_429_on_every_instance(backend) {
        let app = TestApp::builder(backend).with_config("registrations_per_address_per_hour", 3).build().await;
        let other = app.second_instance(|b| b.with_config("registrations_per_address_per_hour", 3)).await;
        assert_eq!(register_from(&app, "a1@example.com", "192.0.2.1").await.status(), Status::Created);
        // A conflict counts too, and so does an attempt on the other instance.
        assert_eq!(register_from(&app, "a1@example.com", "192.0.2.1").await.status(), Status::Conflict);
        assert_eq!(register_from(&other, "a2@example.com", "192.0.2.1").await.status(), Status::Created);
        for instance in [&app, &other] {
            let refused = register_from(instance, "a3@example.com", "192.0.2.1").await;
            let retry_after: u64 = refused.headers().get_one("Retry-After").expect("Retry-After").parse().unwrap();
            assert!(retry_after > 0 && retry_after <= 3600, "{retry_after}");
            assert_eq!(error_of(refused).await, (Status::TooManyRequests, "too_many_requests".into()));
        }
        // Another address is not affected; the hour over, the address registers again.
        assert_eq!(register_from(&app, "b1@example.com", "192.0.2.2").await.status(), Status::Created);
        app.clock.advance(3600);
        assert_eq!(register_from(&app, "a3@example.com", "192.0.2.1").await.status(), Status::Created);
    }

    async fn sixty_registrations_from_one_address_stop_at_the_default_limit_of_ten(backend) {
        assert_eq!(portcullis::config::AuthConfig::default().registrations_per_address_per_hour, 10);
        let app = TestApp::builder(backend).with_config("registrations_per_address_per_hour", 10).build().await;
        let mut created = 0;
        for n in 0..60 {
            if register_from(&app, &format!("user{n}@example.com"), "198.51.100.7").await.status() == Status::Created {
                created += 1;
            }
        }
        assert_eq!(created, 10);
        let off = TestApp::builder(backend).with_config("registrations_per_address_per_hour", 0).build().await;
        for n in 0..12 {
            let response = register_from(&off, &format!("user{n}@example.com"), "198.51.100.7").await;
            assert_eq!(response.status(), Status::Created, "0 turns the limit off");
        }
    }
}
