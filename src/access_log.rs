//! One line per request on standard output, for release builds where Rocket's own multi-line
//! request logging is turned down (`access_log = true` in `Rocket.toml`).
//!
//! Two formats (`log_format`): `text`, the default —
//! `<time> <ip> "<method> <path>" <status> <latency>ms <request id>` — and `json`, one object
//! per line with `time`, `level` (`info`, or `error` for a 5xx), `request_id`, `method`,
//! `route` (the template), `path`, `status`, `latency_ms`, `ip`, and `user_id` or `client_id` when a token was
//! verified. Never a query string, header, body or token.
//!
//! Lines are appended to an in-memory buffer that a flusher thread writes out every
//! `FLUSH_EVERY` (100 ms), or that a request writes out itself once it holds `FLUSH_AT` bytes: under
//! load many lines share one `write` (a `write` per line cost about a tenth of the server's CPU
//! on the cheapest routes), and no request wakes a thread. Shutdown writes what is left.

use crate::auth::guards;
use std::io::Write;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use rocket::fairing::{Fairing, Info, Kind};
use rocket::{Data, Orbit, Request, Response, Rocket};
use serde::Serialize;

use crate::ops::json_log::LogFormat;
use crate::ops::request_id;

/// How long a line may wait in the buffer.
const FLUSH_EVERY: Duration = Duration::from_millis(100);
/// A buffer this full is written out at once.
const FLUSH_AT: usize = 256 * 1024;

/// Where written lines go.
pub type Sink = Arc<dyn Fn(&[u8]) + Send + Sync>;

/// The access-log fairing.
pub struct AccessLog {
    buffer: Arc<Mutex<Vec<u8>>>,
    format: LogFormat,
    /// Where full buffers go: standard output, or a test's sink.
    sink: Sink,
}

/// One request in the JSON format.
#[derive(Serialize)]
struct JsonLine<'a> {
    time: String,
    level: &'static str,
    request_id: &'a str,
    method: &'a str,
    route: &'a str,
    path: &'a str,
    status: u16,
    latency_ms: f64,
    ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_id: Option<String>,
}

fn stdout(bytes: &[u8]) {
    let _ = std::io::stdout().lock().write_all(bytes);
}

impl AccessLog {
    /// The fairing, in the text format, with its flusher thread (which ends when the fairing is dropped).
    pub fn new() -> AccessLog {
        AccessLog::with_format(LogFormat::Text)
    }

    /// The fairing in `format`, writing to standard output.
    pub fn with_format(format: LogFormat) -> AccessLog {
        AccessLog::with_sink(format, Arc::new(stdout))
    }

    /// The fairing in `format`, handing what it writes to `sink`.
    pub fn with_sink(format: LogFormat, sink: Sink) -> AccessLog {
        let buffer = Arc::new(Mutex::new(Vec::with_capacity(FLUSH_AT)));
        let weak = Arc::downgrade(&buffer);
        let flusher_sink = sink.clone();
        let _ =
            std::thread::Builder::new().name("access-log".into()).spawn(move || flush_periodically(weak, flusher_sink));
        AccessLog { buffer, format, sink }
    }

    fn flush(&self) {
        flush(&self.buffer, &*self.sink);
    }

    fn write_line(&self, buffer: &mut Vec<u8>, req: &Request<'_>, res: &Response<'_>) {
        let meta = request_id::meta(req);
        let latency_ms = meta.started.elapsed().as_secs_f64() * 1000.0;
        let time = crate::clock::rfc3339(crate::clock::Clock::new().now());
        let ip = req.client_ip().map(|ip| ip.to_string());
        match self.format {
            LogFormat::Text => {
                let _ = writeln!(
                    buffer,
                    "{time} {} \"{} {}\" {} {latency_ms:.1}ms {}",
                    ip.as_deref().unwrap_or("-"),
                    req.method(),
                    req.uri().path(),
                    res.status().code,
                    meta.id,
                );
            }
            LogFormat::Json => {
                let status = res.status().code;
                let actor = crate::auth::guards::verified_actor(req);
                let line = JsonLine {
                    time,
                    level: if status >= 500 { "error" } else { "info" },
                    request_id: &meta.id,
                    method: req.method().as_str(),
                    route: crate::ops::http::route_label(req),
                    path: req.uri().path().as_str(),
                    status,
                    latency_ms: (latency_ms * 1000.0).round() / 1000.0,
                    ip,
                    user_id: match &actor {
                        Some(guards::Caller::User(user)) => Some(user.user_id.to_string()),
                        _ => None,
                    },
                    client_id: match &actor {
                        Some(guards::Caller::Client(client)) => Some(client.client_id.to_string()),
                        _ => None,
                    },
                };
                if serde_json::to_writer(&mut *buffer, &line).is_ok() {
                    buffer.push(b'\n');
                }
            }
        }
    }
}

impl Default for AccessLog {
    fn default() -> Self {
        AccessLog::new()
    }
}

fn flush(buffer: &Mutex<Vec<u8>>, sink: &(dyn Fn(&[u8]) + Send + Sync)) {
    let pending = match buffer.lock() {
        Ok(mut buffer) if !buffer.is_empty() => std::mem::replace(&mut *buffer, Vec::with_capacity(FLUSH_AT)),
        _ => return,
    };
    sink(&pending);
}

fn flush_periodically(buffer: Weak<Mutex<Vec<u8>>>, sink: Sink) {
    loop {
        std::thread::sleep(FLUSH_EVERY);
        match buffer.upgrade() {
            Some(buffer) => flush(&buffer, &*sink),
            None => return,
        }
    }
}

#[rocket::async_trait]
impl Fairing for AccessLog {
    fn info(&self) -> Info {
        Info { name: "Access log", kind: Kind::Request | Kind::Response | Kind::Shutdown }
    }

    async fn on_request(&self, req: &mut Request<'_>, _: &mut Data<'_>) {
        request_id::meta(req);
    }

    async fn on_response<'r>(&self, req: &'r Request<'_>, res: &mut Response<'r>) {
        let full = match self.buffer.lock() {
            Ok(mut buffer) => {
                self.write_line(&mut buffer, req, res);
                buffer.len() >= FLUSH_AT
            }
            Err(_) => false,
        };
        if full {
            self.flush();
        }
    }

    async fn on_shutdown(&self, _: &Rocket<Orbit>) {
        self.flush();
    }
}

impl Drop for AccessLog {
    fn drop(&mut self) {
        self.flush();
    }
}
