//! One line per request on standard output, for release builds where Rocket's own multi-line
//! request logging is turned down (`access_log = true` in `Rocket.toml`).
//!
//! Lines go through a channel to a writer thread, which writes whatever has queued up in one
//! `write` and then waits for more: under load many lines share a system call (one `write` per
//! line cost about a tenth of the server's CPU on the cheapest routes), and when idle each line
//! is written at once. Shutdown drains the queue.

use std::io::Write;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::Instant;

use rocket::fairing::{Fairing, Info, Kind};
use rocket::{Data, Orbit, Request, Response, Rocket};

/// The access-log fairing.
pub struct AccessLog {
    lines: Mutex<Option<Sender<String>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

struct Started(Instant);

impl AccessLog {
    /// Starts the writer thread.
    pub fn new() -> AccessLog {
        let (tx, rx) = channel();
        let writer = std::thread::Builder::new().name("access-log".into()).spawn(move || write_lines(rx)).ok();
        AccessLog { lines: Mutex::new(writer.is_some().then_some(tx)), writer: Mutex::new(writer) }
    }

    fn send(&self, line: String) {
        if let Some(tx) = self.lines.lock().ok().as_ref().and_then(|tx| tx.as_ref()) {
            let _ = tx.send(line);
        }
    }
}

impl Default for AccessLog {
    fn default() -> Self {
        AccessLog::new()
    }
}

fn write_lines(rx: Receiver<String>) {
    let mut batch = String::new();
    while let Ok(line) = rx.recv() {
        batch.push_str(&line);
        while let Ok(line) = rx.try_recv() {
            batch.push_str(&line);
            if batch.len() >= 64 * 1024 {
                break;
            }
        }
        let _ = std::io::stdout().lock().write_all(batch.as_bytes());
        batch.clear();
    }
}

#[rocket::async_trait]
impl Fairing for AccessLog {
    fn info(&self) -> Info {
        Info { name: "Access log", kind: Kind::Request | Kind::Response | Kind::Shutdown }
    }

    async fn on_request(&self, req: &mut Request<'_>, _: &mut Data<'_>) {
        req.local_cache(|| Started(Instant::now()));
    }

    async fn on_response<'r>(&self, req: &'r Request<'_>, res: &mut Response<'r>) {
        let elapsed = req.local_cache(|| Started(Instant::now())).0.elapsed();
        let ip = req.client_ip().map(|ip| ip.to_string()).unwrap_or_else(|| "-".into());
        self.send(format!(
            "{} {ip} \"{} {}\" {} {:.1}ms\n",
            crate::clock::rfc3339(crate::clock::Clock::new().now()),
            req.method(),
            req.uri().path(),
            res.status().code,
            elapsed.as_secs_f64() * 1000.0
        ));
    }

    async fn on_shutdown(&self, _: &Rocket<Orbit>) {
        // Closing the channel ends the writer once it has written what is queued.
        self.lines.lock().ok().and_then(|mut tx| tx.take());
        if let Some(writer) = self.writer.lock().ok().and_then(|mut w| w.take()) {
            let _ = rocket::tokio::task::spawn_blocking(move || writer.join()).await;
        }
    }
}
