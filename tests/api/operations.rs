//! Request ids on every response and the access log's two formats.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::helpers::*;
use crate::on_both_backends;
use portcullis::access_log::AccessLog;
use portcullis::ops::json_log::LogFormat;
use rocket::http::{Header, Status};
use rocket::local::asynchronous::Client;
use serde_json::Value;

fn is_uuid_v4(id: &str) -> bool {
    uuid::Uuid::parse_str(id).is_ok_and(|u| u.get_version_num() == 4) && id.len() == 36
}

/// The app with an access log in `format` whose output the test reads.
async fn logged_app(backend: Backend, format: LogFormat) -> (Client, TestDb, Arc<Mutex<Vec<u8>>>) {
    let db = TestDb::migrated(backend).await;
    let written = Arc::new(Mutex::new(Vec::new()));
    let sink = written.clone();
    let log = AccessLog::with_sink(format, Arc::new(move |bytes: &[u8]| sink.lock().unwrap().extend_from_slice(bytes)));
    let rocket = portcullis::rocket(test_figment(db.url())).attach(log).manage(portcullis::clock::Clock::frozen());
    (Client::tracked(rocket).await.expect("starts"), db, written)
}

/// The log's lines once `count` are written (the flusher writes every 100 ms).
async fn lines(written: &Mutex<Vec<u8>>, count: usize) -> Vec<String> {
    let lines =
        || String::from_utf8(written.lock().unwrap().clone()).unwrap().lines().map(str::to_owned).collect::<Vec<_>>();
    eventually(&format!("the access log writes {count} lines"), async || lines().len() >= count).await;
    lines()
}

on_both_backends! {
    async fn every_response_carries_a_request_id(backend) {
        let app = TestApp::new(backend).await;
        for response in [
            app.client.get("/health/live").dispatch().await,
            app.client.get("/users/me").dispatch().await,
            app.client.get("/no/such/route").dispatch().await,
            app.login_response("nobody@example.com", "wrong password!").await,
        ] {
            let id = response.headers().get_one("X-Request-Id").expect("X-Request-Id").to_owned();
            assert!(is_uuid_v4(&id), "{id}");
        }
        let a = app.client.get("/health/live").dispatch().await.headers().get_one("X-Request-Id").unwrap().to_owned();
        let b = app.client.get("/health/live").dispatch().await.headers().get_one("X-Request-Id").unwrap().to_owned();
        assert_ne!(a, b);
    }

    async fn a_sane_incoming_request_id_is_echoed_and_any_other_replaced(backend) {
        let app = TestApp::new(backend).await;
        let with_id = |id: String| app.client.get("/health/live").header(Header::new("X-Request-Id", id)).dispatch();
        let echoed = with_id("lb-7f3a.2026:req_42@edge".into()).await;
        assert_eq!(echoed.headers().get_one("X-Request-Id"), Some("lb-7f3a.2026:req_42@edge"));
        for hostile in ["a b".to_owned(), "x\"}{".to_owned(), "a".repeat(129), "é".to_owned(), String::new()] {
            let response = with_id(hostile.clone()).await;
            let id = response.headers().get_one("X-Request-Id").unwrap();
            assert!(is_uuid_v4(id), "{hostile:?} was answered with {id:?}");
        }
    }

    async fn the_json_access_log_writes_one_object_per_request_without_secrets(backend) {
        let (client, _db, written) = logged_app(backend, LogFormat::Json).await;
        let register = client.post("/auth/register").header(rocket::http::ContentType::JSON)
            .body(serde_json::json!({"email": "alice@example.com", "password": PASSWORD}).to_string()).dispatch().await;
        assert_eq!(register.status(), Status::Created);
        let user_id = register.into_json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
        let login = client.post("/auth/login").header(rocket::http::ContentType::JSON)
            .body(serde_json::json!({"email": "alice@example.com", "password": PASSWORD}).to_string()).dispatch().await;
        let tokens = tokens(login).await;
        let me = client.get(format!("/admin/users/{user_id}")).header(Header::new("Authorization", format!("Bearer {}", tokens.access)))
            .header(Header::new("X-Request-Id", "trace-me-1")).dispatch().await;
        assert_eq!(me.status(), Status::Forbidden);
        let lines = lines(&written, 3).await;
        let text = lines.join("\n");
        for secret in [PASSWORD, tokens.access.as_str(), tokens.refresh.as_str()] {
            assert!(!text.contains(secret), "a secret in the access log");
        }
        let records: Vec<Value> = lines.iter().map(|l| serde_json::from_str(l).expect("one JSON object per line")).collect();
        let last = records.iter().find(|r| r["request_id"] == "trace-me-1").expect("the request's line");
        assert_eq!(last["method"], "GET");
        assert_eq!(last["route"], "/admin/users/<id>");
        assert_eq!(last["status"], 403);
        assert_eq!(last["level"], "info");
        assert_eq!(last["user_id"], user_id.as_str());
        assert!(last["latency_ms"].as_f64().is_some() && last["time"].as_str().is_some_and(|t| t.ends_with('Z')));
        assert!(records.iter().all(|r| r["request_id"].as_str().is_some_and(|id| !id.is_empty())));
        assert!(records.iter().any(|r| r["route"] == "/auth/login" && r["status"] == 200 && r.get("user_id").is_none()));
    }

    async fn the_text_access_log_stays_the_default_and_names_the_request_id(backend) {
        let (client, _db, written) = logged_app(backend, LogFormat::Text).await;
        client.get("/health/live").header(Header::new("X-Request-Id", "plain-1")).dispatch().await;
        let lines = lines(&written, 1).await;
        assert!(lines[0].contains("\"GET /health/live\" 200 ") && lines[0].ends_with(" plain-1"), "{}", lines[0]);
        assert!(serde_json::from_str::<Value>(&lines[0]).is_err());
        assert_eq!(LogFormat::from_figment(&portcullis::figment().merge(("log_format", "json"))), Ok(LogFormat::Json));
        assert_eq!(LogFormat::from_figment(&rocket::figment::Figment::new()), Ok(LogFormat::Text));
    }

    async fn an_unknown_log_format_stops_start_up(backend) {
        let error = LogFormat::from_figment(&portcullis::figment().merge(("log_format", "xml"))).unwrap_err();
        assert!(error.contains("log_format"), "{error}");
        let db = TestDb::migrated(backend).await;
        let rocket = portcullis::rocket(test_figment(db.url()).merge(("log_format", "xml")));
        let Err(error) = rocket.ignite().await else { panic!("log_format = xml ignited") };
        // Inspecting the error marks it handled (Rocket panics on dropping an unhandled one).
        match error.kind() {
            rocket::error::ErrorKind::FailedFairings(failed) => assert_eq!(failed[0].name, "log_format"),
            other => panic!("{other:?}"),
        }
    }
}

/// A 5xx's cause is logged as a JSON warning that names the request (id, method, route), so it
/// can be joined with the request's access-log line. PostgreSQL only: the real binary's database
/// is dropped under it.
#[rocket::async_test]
async fn a_failed_requests_json_warning_names_its_request_id_method_and_route() {
    use crate::shutdown::{free_port, start_server, terminate};
    use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
    use std::io::{Read, Write};

    if !postgres_or_skip("a_failed_requests_json_warning_names_its_request_id_method_and_route") {
        return;
    }
    let admin_url = postgres_admin_url().expect("PORTCULLIS_TEST_POSTGRES_URL");
    let db = TestDb::migrated(Backend::Postgres).await;
    let (url, name) = (db.url().to_owned(), db.url().rsplit_once('/').unwrap().1.to_owned());
    let port = free_port();
    let extra = [("ROCKET_LOG_FORMAT", "json"), ("ROCKET_LOG_LEVEL", "normal")];
    let (mut server, logs) = tokio::task::spawn_blocking(move || start_server(&url, port, &extra)).await.unwrap();

    let mut admin = AsyncPgConnection::establish(&admin_url).await.expect("admin connection");
    admin.batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)")).await.expect("drop the database");
    let response = tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        write!(
            stream,
            "GET /health/ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Request-Id: ready-probe-7\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
    })
    .await
    .unwrap();
    assert!(response.starts_with("HTTP/1.1 503"), "{response}");
    assert_eq!(terminate(&mut server, Duration::from_secs(10)), Some(0));

    let stderr = logs.stderr();
    let warning = stderr
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|r| r["request_id"] == "ready-probe-7")
        .unwrap_or_else(|| panic!("no JSON record names the request id: {stderr}"));
    assert_eq!(warning["level"], "warn");
    assert_eq!(warning["method"], "GET");
    assert_eq!(warning["route"], "/health/ready");
    assert!(warning["message"].as_str().unwrap().starts_with("service unavailable"), "{warning}");
}
