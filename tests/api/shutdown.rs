//! Graceful shutdown of the real binary under refresh load: SIGTERM, exit 0 within 10 s, and
//! every rotation that answered 200 still there after a restart.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::helpers::*;
use crate::on_both_backends;
use serde_json::{json, Value};

/// A port nobody listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// One HTTP/1.1 request on a fresh connection: `(status, JSON body)`.
pub fn http(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&Value>,
    token: Option<&str>,
) -> std::io::Result<(u16, Value)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(20)))?;
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP response: {response:?}")))?;
    let json = response.split_once("\r\n\r\n").map(|(_, b)| b).and_then(|b| serde_json::from_str(b).ok());
    Ok((status, json.unwrap_or(Value::Null)))
}

/// The binary serving `url` on `port`, in an empty directory, with extra `ROCKET_*` variables.
/// Where a server's standard output and error go: files, not pipes, so a server that logs more
/// than a pipe holds never blocks on a write nobody reads (it did, under refresh load).
pub struct ServerLogs {
    stdout: tempfile::NamedTempFile,
    stderr: tempfile::NamedTempFile,
}

impl ServerLogs {
    pub fn stdout(&self) -> String {
        std::fs::read_to_string(self.stdout.path()).unwrap_or_default()
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.stderr.path()).unwrap_or_default()
    }
}

pub fn start_server(url: &str, port: u16, extra: &[(&str, &str)]) -> (Child, ServerLogs) {
    let logs = ServerLogs {
        stdout: tempfile::NamedTempFile::new().expect("stdout file"),
        stderr: tempfile::NamedTempFile::new().expect("stderr file"),
    };
    let mut command = Command::new(env!("CARGO_BIN_EXE_portcullis"));
    command
        .arg("serve")
        .current_dir(std::env::temp_dir())
        .env("ROCKET_CONFIG", "/nonexistent/Rocket.toml")
        .env("ROCKET_DATABASES", format!("{{main={{url=\"{url}\"}}}}"))
        .env("ROCKET_AUTH", "{argon2_memory_kib=256,argon2_iterations=1}")
        .env("ROCKET_ADDRESS", "127.0.0.1")
        .env("ROCKET_PORT", port.to_string())
        .env("ROCKET_LOG_LEVEL", "off")
        .env_remove("ROCKET_PROFILE")
        .stdin(Stdio::null())
        .stdout(Stdio::from(logs.stdout.reopen().expect("stdout file")))
        .stderr(Stdio::from(logs.stderr.reopen().expect("stderr file")));
    for (key, value) in extra {
        command.env(key, value);
    }
    let mut child = command.spawn().expect("portcullis starts");
    let started = Instant::now();
    while http(port, "GET", "/health/live", None, None).is_err() {
        assert!(child.try_wait().unwrap().is_none(), "portcullis exited at start-up");
        assert!(started.elapsed() < Duration::from_secs(60), "portcullis did not listen within a minute");
        std::thread::sleep(Duration::from_millis(50));
    }
    (child, logs)
}

/// Sends SIGTERM and waits (at most `bound`) for the exit; returns the exit code.
pub fn terminate(child: &mut Child, bound: Duration) -> Option<i32> {
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let sent = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        if sent.elapsed() > bound {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn login(port: u16, email: &str) -> String {
    let body = json!({"email": email, "password": PASSWORD});
    let (status, _) = http(port, "POST", "/auth/register", Some(&body), None).unwrap();
    assert_eq!(status, 201);
    let (status, tokens) = http(port, "POST", "/auth/login", Some(&body), None).unwrap();
    assert_eq!(status, 200);
    tokens["refresh_token"].as_str().unwrap().to_owned()
}

on_both_backends! {
    async fn sigterm_under_refresh_load_exits_0_and_loses_no_acknowledged_rotation(backend) {
        let db = TestDb::migrated(backend).await;
        let url = db.url().to_owned();
        tokio::task::spawn_blocking(move || {
            let port = free_port();
            let extra = [("ROCKET_ACCESS_LOG", "true"), ("ROCKET_LOG_FORMAT", "json")];
            let (mut server, logs) = start_server(&url, port, &extra);
            const CLIENTS: usize = 8;
            let refreshed = Arc::new(AtomicUsize::new(0));
            let workers: Vec<_> = (0..CLIENTS)
                .map(|i| {
                    let mut token = login(port, &format!("load{i}@example.com"));
                    let refreshed = refreshed.clone();
                    std::thread::spawn(move || {
                        // Rotates until the server stops answering; keeps the last acknowledged token.
                        loop {
                            match http(port, "POST", "/auth/refresh", Some(&json!({"refresh_token": token})), None) {
                                Ok((200, body)) => {
                                    token = body["refresh_token"].as_str().unwrap().to_owned();
                                    refreshed.fetch_add(1, Ordering::SeqCst);
                                }
                                Ok((status, body)) => panic!("refresh answered {status}: {body}"),
                                Err(_) => return token,
                            }
                        }
                    })
                })
                .collect();
            let started = Instant::now();
            while refreshed.load(Ordering::SeqCst) < 10 * CLIENTS {
                assert!(started.elapsed() < Duration::from_secs(60), "no refresh load");
                std::thread::sleep(Duration::from_millis(10));
            }
            let sent = Instant::now();
            let code = terminate(&mut server, Duration::from_secs(10));
            eprintln!("exited {:?} after SIGTERM, {} refreshes answered 200", sent.elapsed(), refreshed.load(Ordering::SeqCst));
            let (stdout, stderr) = (logs.stdout(), logs.stderr());
            assert_eq!(code, Some(0), "exit code after SIGTERM (None: still running after 10 s): {stderr}");
            let acknowledged: Vec<String> = workers.into_iter().map(|w| w.join().expect("worker")).collect();
            assert!(stdout.lines().any(|l| l.contains("\"route\":\"/auth/refresh\"")), "the access log was flushed at exit: {stdout}\n{stderr}");
            for line in stdout.lines().chain(stderr.lines()) {
                let record: Value = serde_json::from_str(line).unwrap_or_else(|_| panic!("not a JSON log line: {line}"));
                assert!(record["time"].is_string(), "{line}");
            }

            let port = free_port();
            let (mut restarted, _logs) = start_server(&url, port, &[]);
            for token in &acknowledged {
                let (status, body) = http(port, "POST", "/auth/refresh", Some(&json!({"refresh_token": token})), None).unwrap();
                assert_eq!(status, 200, "an acknowledged rotation was lost: {body}");
            }
            assert_eq!(terminate(&mut restarted, Duration::from_secs(10)), Some(0));
        })
        .await
        .unwrap();
    }
}
