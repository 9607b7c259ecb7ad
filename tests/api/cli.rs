//! The `portcullis` binary: `migrate`, `user create`, `--help` and configuration errors, run as
//! a separate process on a fresh database of each backend.

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::*;
use crate::on_both_backends;
use rocket::http::Status;
use serde_json::Value;

/// Cheap argon2 parameters, as in the HTTP tests.
const FAST_AUTH: &str = "{argon2_memory_kib=256,argon2_iterations=1}";

/// How a command is run: its database, extra environment and standard input.
struct Run<'a> {
    url: &'a str,
    auth: &'a str,
    stdin: Option<&'a str>,
    env: Vec<(&'a str, String)>,
}

impl<'a> Run<'a> {
    fn on(url: &'a str) -> Self {
        Run { url, auth: FAST_AUTH, stdin: None, env: vec![] }
    }

    /// Sets an environment variable (after the defaults, so it may override one).
    fn env(mut self, name: &'a str, value: impl Into<String>) -> Self {
        self.env.push((name, value.into()));
        self
    }

    fn auth(mut self, auth: &'a str) -> Self {
        self.auth = auth;
        self
    }

    fn stdin(mut self, input: &'a str) -> Self {
        self.stdin = Some(input);
        self
    }

    /// Runs the binary with `args` in an empty temporary directory, so no `Rocket.toml` is read,
    /// and waits for it (killing it after a minute rather than hanging the suite).
    fn run(&self, args: &[&str]) -> Output {
        let cwd = tempfile::tempdir().expect("temp dir");
        let mut command = Command::new(env!("CARGO_BIN_EXE_portcullis"));
        command
            .args(args)
            .current_dir(cwd.path())
            .env("ROCKET_CONFIG", cwd.path().join("Rocket.toml"))
            .env("ROCKET_DATABASES", format!("{{main={{url=\"{}\"}}}}", self.url))
            .env("ROCKET_AUTH", self.auth)
            .env("ROCKET_LOG_LEVEL", "off")
            .env_remove("ROCKET_PROFILE")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(if self.stdin.is_some() { Stdio::piped() } else { Stdio::null() });
        command.envs(self.env.iter().map(|(name, value)| (name, value)));
        let mut child = command.spawn().expect("the portcullis binary starts");
        if let Some(input) = self.stdin {
            let mut pipe = child.stdin.take().expect("stdin pipe");
            pipe.write_all(input.as_bytes()).expect("write stdin");
        }
        let started = Instant::now();
        while child.try_wait().expect("wait for portcullis").is_none() {
            if started.elapsed() > Duration::from_secs(60) {
                let _ = child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        child.wait_with_output().expect("portcullis output")
    }
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Runs a blocking command off the async workers.
async fn run(run: Run<'_>, args: &[&str]) -> Output {
    tokio::task::block_in_place(|| run.run(args))
}

/// `portcullis user create --password-stdin <args>` with `password` on standard input.
async fn user_create(url: &str, password: &str, args: &[&str]) -> Output {
    let input = format!("{password}\n");
    let args: Vec<&str> = ["user", "create", "--password-stdin"].iter().chain(args).copied().collect();
    run(Run::on(url).stdin(&input), &args).await
}

fn assert_success(output: &Output, what: &str) {
    assert!(output.status.success(), "{what} failed: {output:?}\nstderr: {}", stderr(output));
}

fn assert_failure(output: &Output, what: &str) {
    assert!(!output.status.success(), "{what} succeeded: {}", stdout(output));
    assert!(output.status.code().is_some(), "{what} died of a signal: {output:?}");
}

on_both_backends! {
    async fn migrate_applies_the_migrations_once_then_reports_up_to_date(backend) {
        let db = TestDb::empty(backend).await;
        let first = run(Run::on(db.url()), &["migrate"]).await;
        assert_success(&first, "first migrate");
        assert!(stdout(&first).contains("applied"), "{}", stdout(&first));

        let second = run(Run::on(db.url()), &["migrate"]).await;
        assert_success(&second, "second migrate");
        assert!(stdout(&second).contains("up to date"), "{}", stdout(&second));
        assert!(!stdout(&second).contains("applied"), "{}", stdout(&second));
    }

    async fn user_create_makes_an_admin_who_can_log_in(backend) {
        let db = TestDb::empty(backend).await;
        let email = "root@example.com";
        let output = user_create(db.url(), PASSWORD, &["--email", email, "--role", "admin"]).await;
        assert_success(&output, "user create");
        let printed = stdout(&output);

        let app = TestApp::builder(backend).with_db(db).build().await;
        let user = TestUser { id: String::new(), email: email.to_owned(), password: PASSWORD.to_owned() };
        let tokens = app.login(&user).await;
        let me = app.get_authed("/users/me", &tokens.access).await;
        assert_eq!(me.status(), Status::Ok);
        let me: Value = me.into_json().await.unwrap();
        let id = me["id"].as_str().expect("user id");
        assert!(printed.contains(id), "the id {id} is printed: {printed}");
        assert_eq!(me["email"], email);
        assert_eq!(me["roles"], serde_json::json!(["admin"]));
    }

    async fn user_create_refuses_a_taken_email(backend) {
        let db = TestDb::empty(backend).await;
        let first = user_create(db.url(), PASSWORD, &["--email", "root@example.com"]).await;
        assert_success(&first, "first user create");
        let again = user_create(db.url(), PASSWORD, &["--email", "ROOT@example.com"]).await;
        assert_failure(&again, "a duplicate user create");
        assert!(stderr(&again).contains("already registered"), "{}", stderr(&again));
    }

    async fn user_create_refuses_an_unknown_role(backend) {
        let db = TestDb::empty(backend).await;
        let output = user_create(db.url(), PASSWORD, &["--email", "root@example.com", "--role", "wizard"]).await;
        assert_failure(&output, "user create with an unknown role");
        assert!(stderr(&output).contains("wizard"), "{}", stderr(&output));
    }

    async fn user_create_refuses_a_short_password(backend) {
        let db = TestDb::empty(backend).await;
        let output = user_create(db.url(), "short", &["--email", "root@example.com"]).await;
        assert_failure(&output, "user create with a short password");
        assert!(stderr(&output).contains("password"), "{}", stderr(&output));
    }

    async fn user_create_without_a_terminal_asks_for_password_stdin(backend) {
        let db = TestDb::empty(backend).await;
        let output = run(Run::on(db.url()), &["user", "create", "--email", "root@example.com"]).await;
        assert_failure(&output, "user create without a terminal");
        assert!(stderr(&output).contains("--password-stdin"), "{}", stderr(&output));
    }

    async fn client_create_prints_a_client_id_and_secret_that_get_a_token(backend) {
        let db = TestDb::empty(backend).await;
        let output = run(Run::on(db.url()), &["client", "create", "--name", "prometheus", "--permission", "metrics:read"]).await;
        assert_success(&output, "client create");
        let printed = stdout(&output);
        let field = |name: &str| {
            printed.lines().find_map(|l| l.strip_prefix(&format!("{name}: "))).unwrap_or_else(|| panic!("{name} in {printed}")).to_owned()
        };
        let (id, secret) = (field("client_id"), field("client_secret"));
        let app = TestApp::builder(backend).with_db(db).build().await;
        let form = format!("grant_type=client_credentials&client_id={id}&client_secret={secret}");
        let response = app.client.post("/oauth/token").header(rocket::http::ContentType::Form).body(form).dispatch().await;
        assert_eq!(response.status(), Status::Ok);
        let body: Value = response.into_json().await.unwrap();
        assert_eq!(body["scope"], "metrics:read");
        let unknown = run(Run::on(app.db_url()), &["client", "create", "--name", "x", "--permission", "no:such"]).await;
        assert_failure(&unknown, "client create with an unknown permission");
        assert!(stderr(&unknown).contains("no:such"), "{}", stderr(&unknown));
    }

    async fn client_create_makes_a_public_first_party_client_with_its_redirect_uris_and_grants(backend) {
        let db = TestDb::empty(backend).await;
        let args = ["client", "create", "--name", "spa", "--type", "public", "--redirect-uri", "https://app.example/cb",
            "--redirect-uri", "http://127.0.0.1:8080/cb", "--grant-type", "authorization_code", "--first-party"];
        let output = run(Run::on(db.url()), &args).await;
        assert_success(&output, "client create --type public");
        let printed = stdout(&output);
        assert!(!printed.contains("client_secret:"), "{printed}");
        let id = printed.lines().find_map(|l| l.strip_prefix("client_id: ")).expect("client_id").to_owned();
        let app = TestApp::builder(backend).with_db(db).build().await;
        let (_, admin) = crate::admin_support::with_admin(&app).await;
        let listed = crate::admin_support::get_json(&app, "/admin/clients", &admin.access).await;
        let client = &listed["clients"][0];
        assert_eq!((client["client_id"].as_str(), &client["type"], &client["first_party"]), (Some(id.as_str()), &serde_json::json!("public"), &serde_json::json!(true)));
        assert_eq!(client["redirect_uris"], serde_json::json!(["https://app.example/cb", "http://127.0.0.1:8080/cb"]));
        assert_eq!(client["grant_types"], serde_json::json!(["authorization_code"]));
        let bad = run(Run::on(app.db_url()), &["client", "create", "--name", "x", "--type", "public", "--grant-type", "password"]).await;
        assert_failure(&bad, "a public client with the password grant");
        assert!(stderr(&bad).contains("grant_types"), "{}", stderr(&bad));
    }

    async fn keys_rotate_makes_a_new_key_active_and_keeps_the_old_one_published(backend) {
        let db = TestDb::empty(backend).await;
        assert_success(&run(Run::on(db.url()), &["migrate"]).await, "migrate");
        let app = TestApp::builder(backend).with_db(db).build().await;
        let user = app.with_user().await;
        let before = app.login(&user).await;
        let output = run(Run::on(app.db_url()), &["keys", "rotate"]).await;
        assert_success(&output, "keys rotate");
        let jwks = async || -> Value { app.client.get("/.well-known/jwks.json").dispatch().await.into_json().await.unwrap() };
        // The running app reloads its keys on its poll interval.
        // Access-token keys, then the ID-token keys (`id-...`), each generation newest first.
        let access_kids = async || -> Vec<String> {
            let kids = jwks().await["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap().to_owned()).collect::<Vec<_>>();
            kids.into_iter().filter(|k| !k.starts_with("id-")).collect()
        };
        eventually("the app publishes the rotated key", async || access_kids().await.len() >= 2).await;
        let kids = access_kids().await;
        assert_eq!(kids.len(), 2, "{kids:?}");
        assert!(stdout(&output).contains(&kids[0]), "the new kid is printed: {}", stdout(&output));
        assert_eq!(app.me_status(&before.access).await, Status::Ok);
        let id_kids = async || jwks().await["keys"].as_array().unwrap().iter().filter(|k| k["kid"].as_str().unwrap().starts_with("id-")).count();
        eventually("the ID-token keys rotated too", async || id_kids().await == 4).await;
        // With a configured secret only the ID-token keys are generated ones, and only they rotate.
        let hs256 = run(Run::on(app.db_url()).auth("{secret=\"a-configured-hs256-key-of-at-least-32-bytes\"}"), &["keys", "rotate"]).await;
        assert_success(&hs256, "keys rotate with a configured secret");
        assert!(stdout(&hs256).contains("only the ID-token keys rotate"), "{}", stdout(&hs256));
    }

    async fn serve_warns_that_a_database_reader_can_mint_tokens_on_postgresql_without_a_key(backend) {
        let db = TestDb::empty(backend).await;
        // The port is taken, so the server stops right after start-up (and its log) instead of serving.
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = taken.local_addr().unwrap().port().to_string();
        let serve = |auth| Run::on(db.url()).auth(auth).env("ROCKET_LOG_LEVEL", "normal").env("ROCKET_ADDRESS", "127.0.0.1").env("ROCKET_PORT", port.clone());
        let output = run(serve(FAST_AUTH), &["serve"]).await;
        assert_failure(&output, "serve on a taken port");
        let log = format!("{}{}", stdout(&output), stderr(&output));
        assert_eq!(log.contains("can mint tokens"), backend == Backend::Postgres, "{log}");
        let with_key = "{argon2_memory_kib=256,argon2_iterations=1,key_encryption_key=\"a key-encryption key for the tests, 32+ bytes\"}";
        let output = run(serve(with_key), &["serve"]).await;
        let log = format!("{}{}", stdout(&output), stderr(&output));
        assert!(!log.contains("can mint tokens"), "{log}");
    }

    async fn a_weak_secret_stops_migrate_and_serve_naming_auth_secret(backend) {
        let db = TestDb::empty(backend).await;
        for command in ["migrate", "serve"] {
            let output = run(Run::on(db.url()).auth("{secret=\"changeme\"}"), &[command]).await;
            assert_failure(&output, command);
            assert!(stderr(&output).contains("auth.secret"), "{command}: {}", stderr(&output));
        }
        let output = run(Run::on(db.url()).auth("{access_ttl=0}"), &["migrate"]).await;
        assert_failure(&output, "migrate with access_ttl = 0");
        assert!(stderr(&output).contains("auth.access_ttl"), "{}", stderr(&output));
    }
}

#[test]
fn user_create_requires_an_email() {
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().join("cli.db");
    let output = Run::on(url.to_str().unwrap()).run(&["user", "create", "--password-stdin"]);
    assert_failure(&output, "user create without --email");
    assert!(stderr(&output).contains("--email"), "{}", stderr(&output));
    assert!(!url.exists(), "nothing was created without --email");
}

#[test]
fn help_lists_the_commands() {
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().join("cli.db");
    let output = Run::on(url.to_str().unwrap()).run(&["--help"]);
    assert_success(&output, "--help");
    let help = stdout(&output);
    for command in ["serve", "migrate", "user", "client", "keys"] {
        assert!(help.lines().any(|l| l.trim_start().starts_with(command)), "{command} in:\n{help}");
    }
    let output = Run::on(url.to_str().unwrap()).run(&["user", "create", "--help"]);
    assert_success(&output, "user create --help");
    for option in ["--email", "--role", "--password-stdin"] {
        assert!(stdout(&output).contains(option), "{option} in:\n{}", stdout(&output));
    }
}
