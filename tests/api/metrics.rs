//! `GET /metrics`: who may read it, and what the exposition holds (route templates, never ids).

use crate::admin_support::{create_role, user_with_roles, with_admin};
use crate::helpers::*;
use crate::on_both_backends;
use rocket::http::{Header, Status};

/// The exposition as `token`; panics unless 200 in Prometheus's text format.
async fn scrape(app: &TestApp, token: &str) -> String {
    let response = app.get_authed("/metrics", token).await;
    assert_eq!(response.status(), Status::Ok);
    let content_type = response.headers().get_one("Content-Type").unwrap().to_owned();
    assert!(content_type.starts_with("text/plain") && content_type.contains("version=0.0.4"), "{content_type}");
    response.into_string().await.unwrap()
}

/// Checks every line is a comment or `name{labels} value`; returns the sample lines.
fn samples(exposition: &str) -> Vec<(String, f64)> {
    let mut out = vec![];
    for line in exposition.lines().filter(|l| !l.is_empty()) {
        if let Some(comment) = line.strip_prefix("# ") {
            assert!(comment.starts_with("HELP ") || comment.starts_with("TYPE "), "comment line: {line}");
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("sample line: {line}"));
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("sample value: {line}")),
        };
        let name = series.split('{').next().unwrap();
        assert!(
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "metric name: {line}"
        );
        if series.contains('{') {
            assert!(series.ends_with('}'), "labels: {line}");
        }
        out.push((series.to_owned(), value));
    }
    out
}

fn value(samples: &[(String, f64)], series: &str) -> Option<f64> {
    samples.iter().find(|(s, _)| s == series).map(|(_, v)| *v)
}

on_both_backends! {
    async fn metrics_need_a_token_with_metrics_read(backend) {
        let app = TestApp::new(backend).await;
        let response = app.client.get("/metrics").dispatch().await;
        assert_eq!(error_of(response).await, (Status::Unauthorized, "invalid_token".to_owned()));
        let plain = app.login(&app.with_user().await).await;
        assert_eq!(error_of(app.get_authed("/metrics", &plain.access).await).await, (Status::Forbidden, "insufficient_permissions".to_owned()));
        let (_, admin) = with_admin(&app).await;
        create_role(&app, &admin, "scraper", &["metrics:read"]).await;
        let (_, scraper) = user_with_roles(&app, "prometheus@example.com", &["scraper"]).await;
        scrape(&app, &scraper.access).await;
        scrape(&app, &admin.access).await;
    }

    async fn the_exposition_labels_requests_by_route_template_and_never_by_raw_id(backend) {
        let app = TestApp::new(backend).await;
        let (admin_user, admin) = with_admin(&app).await;
        let user = app.with_user().await;
        let tokens = app.login(&user).await;
        assert_eq!(app.refresh_response(&tokens.refresh).await.status(), Status::Ok);
        assert_eq!(app.login_response(&user.email, "wrong password!").await.status(), Status::Unauthorized);
        let path = format!("/admin/users/{}", user.id);
        assert_eq!(app.get_authed(&path, &admin.access).await.status(), Status::Ok);
        let stray = uuid::Uuid::new_v4().to_string();
        assert_eq!(app.client.get(format!("/no/such/{stray}")).dispatch().await.status(), Status::NotFound);

        let exposition = scrape(&app, &admin.access).await;
        let samples = samples(&exposition);
        for id in [&user.id, &admin_user.id, &tokens.session_id, &stray] {
            assert!(!exposition.contains(id.as_str()), "raw id {id} in the exposition");
        }
        assert!(!exposition.contains(&tokens.refresh) && !exposition.contains(&tokens.access));
        let requests = |route: &str, method: &str, class: &str| {
            value(&samples, &format!("portcullis_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{class}\"}}"))
        };
        assert!(requests("/admin/users/<id>", "GET", "2xx").unwrap() >= 1.0, "{exposition}");
        assert!(requests("unmatched", "GET", "4xx").unwrap() >= 1.0);
        assert!(requests("/auth/login", "POST", "4xx").unwrap() >= 1.0);
        assert!(exposition.contains("portcullis_http_request_duration_seconds_bucket{method=\"POST\",route=\"/auth/refresh\",le=\"+Inf\"}"));
        for series in [
            "portcullis_logins_total{outcome=\"succeeded\"}",
            "portcullis_logins_total{outcome=\"failed\"}",
            "portcullis_refreshes_total{outcome=\"succeeded\"}",
            "portcullis_password_hash_wait_seconds_count",
            "portcullis_db_pool_connections{state=\"in_use\"}",
            "portcullis_db_pool_waiting",
            "portcullis_revoked_sessions",
            "portcullis_revocation_feed_lag_seconds",
            "portcullis_uptime_seconds",
        ] {
            assert!(value(&samples, series).is_some(), "{series} missing from:\n{exposition}");
        }
        assert!(value(&samples, "process_resident_memory_bytes").unwrap() > 0.0);
    }

    async fn ended_sessions_and_reuse_are_counted_by_reason(backend) {
        let app = TestApp::builder(backend).with_config("reuse_grace", 0).build().await;
        let (_, admin) = with_admin(&app).await;
        let before = samples(&scrape(&app, &admin.access).await);
        let count = |s: &[(String, f64)], series: &str| value(s, series).unwrap_or(0.0);
        let user = app.with_user().await;
        let tokens = app.login(&user).await;
        assert_eq!(app.refresh_response(&tokens.refresh).await.status(), Status::Ok);
        assert_eq!(app.refresh_response(&tokens.refresh).await.status(), Status::Unauthorized);
        let after = samples(&scrape(&app, &admin.access).await);
        for series in ["portcullis_refresh_reuse_detected_total", "portcullis_sessions_ended_total{reason=\"refresh_reuse\"}"] {
            assert!(count(&after, series) >= count(&before, series) + 1.0, "{series}");
        }
    }

    async fn promtool_accepts_the_exposition(backend) {
        let Ok(promtool) = which("promtool") else { return };
        let app = TestApp::new(backend).await;
        let (_, admin) = with_admin(&app).await;
        app.client.get("/health/live").header(Header::new("X-Request-Id", "check-1")).dispatch().await;
        let exposition = scrape(&app, &admin.access).await;
        let mut child = std::process::Command::new(promtool)
            .args(["check", "metrics"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("promtool runs");
        use std::io::Write;
        child.stdin.take().unwrap().write_all(exposition.as_bytes()).unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "promtool check metrics: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// The path of `program` on `PATH`.
fn which(program: &str) -> Result<std::path::PathBuf, ()> {
    let path = std::env::var_os("PATH").ok_or(())?;
    std::env::split_paths(&path).map(|dir| dir.join(program)).find(|p| p.is_file()).ok_or(())
}

on_both_backends! {
    async fn a_service_client_with_metrics_read_scrapes_with_a_client_credentials_token(backend) {
        let app = TestApp::new(backend).await;
        let (_, admin) = with_admin(&app).await;
        let created = app.post_authed("/admin/clients", &admin.access, serde_json::json!({"name": "prometheus", "permissions": ["metrics:read"]})).await;
        assert_eq!(created.status(), Status::Created);
        let created: serde_json::Value = created.into_json().await.unwrap();
        let form = format!("grant_type=client_credentials&client_id={}&client_secret={}", created["client_id"].as_str().unwrap(), created["client_secret"].as_str().unwrap());
        let response = app.client.post("/oauth/token").header(rocket::http::ContentType::Form).body(form).dispatch().await;
        assert_eq!(response.status(), Status::Ok);
        let token: serde_json::Value = response.into_json().await.unwrap();
        let exposition = scrape(&app, token["access_token"].as_str().unwrap()).await;
        assert!(!samples(&exposition).is_empty());
    }
}
