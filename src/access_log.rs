//! One line per request on standard output, for release builds where Rocket's own multi-line
//! request logging is turned down (`access_log = true` in `Rocket.toml`).

use std::io::Write;
use std::time::Instant;

use rocket::fairing::{Fairing, Info, Kind};
use rocket::{Data, Request, Response};

/// The access-log fairing.
pub struct AccessLog;

struct Started(Instant);

#[rocket::async_trait]
impl Fairing for AccessLog {
    fn info(&self) -> Info {
        Info { name: "Access log", kind: Kind::Request | Kind::Response }
    }

    async fn on_request(&self, req: &mut Request<'_>, _: &mut Data<'_>) {
        req.local_cache(|| Started(Instant::now()));
    }

    async fn on_response<'r>(&self, req: &'r Request<'_>, res: &mut Response<'r>) {
        let elapsed = req.local_cache(|| Started(Instant::now())).0.elapsed();
        let ip = req.client_ip().map(|ip| ip.to_string()).unwrap_or_else(|| "-".into());
        let line = format!(
            "{} {ip} \"{} {}\" {} {:.1}ms\n",
            crate::clock::rfc3339(crate::clock::Clock::new().now()),
            req.method(),
            req.uri().path(),
            res.status().code,
            elapsed.as_secs_f64() * 1000.0
        );
        let _ = std::io::stdout().lock().write_all(line.as_bytes());
    }
}
