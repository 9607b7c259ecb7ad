//! The foundation: health, the error shape of every status, migrations, SQLite pragmas.

use crate::helpers::*;
use crate::on_both_backends;
use rocket::http::Status;
use serde_json::{json, Value};

on_both_backends! {
    async fn health_live_and_ready_answer_ok(backend) {
        let app = TestApp::new(backend).await;
        let live = app.client.get("/health/live").dispatch().await;
        assert_eq!(live.status(), Status::Ok);
        assert_eq!(live.into_json::<Value>().await.unwrap(), json!({"status": "ok"}));
        assert_eq!(app.client.get("/health/ready").dispatch().await.status(), Status::Ok);
    }

    async fn unknown_routes_get_a_json_404(backend) {
        let app = TestApp::new(backend).await;
        let (status, code) = error_of(app.client.get("/no/such/route").dispatch().await).await;
        assert_eq!((status, code.as_str()), (Status::NotFound, "not_found"));
    }
}

