//! The Prometheus metrics of the service, recorded where things happen and exposed at
//! `GET /metrics` (see `routes::metrics`).
//!
//! One process-wide registry: recording is a counter or histogram update on atomics (no
//! allocation, no lock held across an await), so hot paths call these functions directly.
//! Values that are cheaper to read than to track (pool status, revocation set size, RSS) are
//! sampled at scrape time by [`render`].
//!
//! Labels are bounded by construction: route templates (`/admin/users/<id>`, never a raw path),
//! status classes, fixed outcome names and session-ending reasons chosen by the code.
//!
//! This module depends on nothing else in the crate, so every layer (down to `db`) may record.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::LazyLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

/// The route label of requests that matched no route (one value, whatever the path).
pub const UNMATCHED: &str = "unmatched";

/// Latency buckets in seconds: from a cached token check to a slow password hash.
const LATENCY_BUCKETS: &[f64] = &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

/// Every metric of the service.
pub struct Metrics {
    registry: Registry,
    started: Instant,
    started_unix: f64,
    http_requests: IntCounterVec,
    http_latency: HistogramVec,
    logins: IntCounterVec,
    passkey_sign_ins: IntCounterVec,
    refreshes: IntCounterVec,
    reuse_detected: IntCounter,
    sessions_ended: IntCounterVec,
    hash_queue_depth: IntGauge,
    hash_wait: Histogram,
    pool_connections: IntGaugeVec,
    pool_waiting: IntGauge,
    pool_max: IntGauge,
    write_batch_size: Histogram,
    revoked_sessions: IntGauge,
    feed_lag: prometheus::Gauge,
    /// Unix seconds of the last successful revocation-feed read (0: none yet).
    feed_read_at: AtomicI64,
    rss: IntGauge,
    mail_outbox_depth: IntGauge,
    mail: IntCounterVec,
    uptime: prometheus::Gauge,
    start_time: prometheus::Gauge,
}

fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

impl Metrics {
    fn new() -> Metrics {
        let registry = Registry::new();
        // Names and labels are constants: registration cannot fail, so a failure is a bug.
        fn reg<M: prometheus::core::Collector + Clone + 'static>(registry: &Registry, metric: M) -> M {
            registry.register(Box::new(metric.clone())).expect("metric names are unique");
            metric
        }
        let counter_vec = |name: &str, help: &str, labels: &[&str]| {
            reg(&registry, IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric"))
        };
        let gauge = |name: &str, help: &str| reg(&registry, IntGauge::new(name, help).expect("valid metric"));
        let fgauge = |name: &str, help: &str| reg(&registry, prometheus::Gauge::new(name, help).expect("valid metric"));
        let histogram = |name: &str, help: &str, buckets: Vec<f64>| {
            reg(&registry, Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets)).expect("valid metric"))
        };
        Metrics {
            http_requests: counter_vec(
                "portcullis_http_requests_total",
                "HTTP requests by route template, method and status class.",
                &["route", "method", "status"],
            ),
            http_latency: reg(
                &registry,
                HistogramVec::new(
                    HistogramOpts::new(
                        "portcullis_http_request_duration_seconds",
                        "HTTP request latency by route template.",
                    )
                    .buckets(LATENCY_BUCKETS.to_vec()),
                    &["route", "method"],
                )
                .expect("valid metric"),
            ),
            logins: counter_vec(
                "portcullis_logins_total",
                "Login attempts by outcome: succeeded, failed, throttled, mfa_required.",
                &["outcome"],
            ),
            passkey_sign_ins: counter_vec(
                "portcullis_passkey_sign_ins_total",
                "Passkey sign-ins by step (passwordless, second_factor) and outcome: succeeded, failed, throttled.",
                &["step", "outcome"],
            ),
            refreshes: counter_vec("portcullis_refreshes_total", "Refresh-token exchanges by outcome.", &["outcome"]),
            reuse_detected: reg(
                &registry,
                IntCounter::new("portcullis_refresh_reuse_detected_total", "Reuses of a spent refresh token.")
                    .expect("valid metric"),
            ),
            sessions_ended: counter_vec("portcullis_sessions_ended_total", "Sessions ended, by reason.", &["reason"]),
            hash_queue_depth: gauge(
                "portcullis_password_hash_queue_depth",
                "Password hashes waiting for a hashing thread.",
            ),
            hash_wait: histogram(
                "portcullis_password_hash_wait_seconds",
                "Time a password hash waited for a hashing thread.",
                vec![0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0],
            ),
            pool_connections: reg(
                &registry,
                IntGaugeVec::new(
                    Opts::new("portcullis_db_pool_connections", "Database pool connections by state (in_use, idle)."),
                    &["state"],
                )
                .expect("valid metric"),
            ),
            pool_waiting: gauge("portcullis_db_pool_waiting", "Requests waiting for a database connection."),
            pool_max: gauge("portcullis_db_pool_max_connections", "The database pool's size limit."),
            write_batch_size: histogram(
                "portcullis_sqlite_write_batch_size",
                "Write transactions committed together in one SQLite batch.",
                vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0],
            ),
            revoked_sessions: gauge(
                "portcullis_revoked_sessions",
                "Sessions in the in-memory revocation set (ended, with access tokens not yet expired).",
            ),
            feed_lag: fgauge(
                "portcullis_revocation_feed_lag_seconds",
                "Seconds since the revocation feed was last read successfully.",
            ),
            feed_read_at: AtomicI64::new(0),
            rss: gauge("process_resident_memory_bytes", "Resident memory size in bytes."),
            mail_outbox_depth: gauge("portcullis_mail_outbox_depth", "Messages in the outbox (last sender pass)."),
            mail: counter_vec("portcullis_mail_total", "Messages by outcome: sent, retried, failed.", &["outcome"]),
            uptime: fgauge("portcullis_uptime_seconds", "Seconds since the process started."),
            start_time: fgauge(
                "process_start_time_seconds",
                "Start time of the process since the Unix epoch in seconds.",
            ),
            started: Instant::now(),
            started_unix: unix_now(),
            registry,
        }
    }
}

// Built at start-up (`crate::rocket` calls `get`), which is also when storage's batch hook is
// installed: `db` reports through it rather than importing this module.
static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    crate::db::observe_batches(write_batch);
    Metrics::new()
});

/// The registry; forced at start-up so the uptime counts from there.
pub fn get() -> &'static Metrics {
    &METRICS
}

/// One HTTP response: `route` is the matched route's template, or [`UNMATCHED`].
pub fn http_request(route: &str, method: &str, status: u16, seconds: f64) {
    let class = match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    };
    let m = get();
    m.http_requests.with_label_values(&[route, method, class]).inc();
    m.http_latency.with_label_values(&[route, method]).observe(seconds);
}

/// A login attempt's outcome: `succeeded`, `failed`, `throttled`, `mfa_required` or `error`.
pub fn login(outcome: &'static str) {
    get().logins.with_label_values(&[outcome]).inc();
}

/// A passkey sign-in's outcome at `step` (`passwordless` or `second_factor`): `succeeded`,
/// `failed`, `throttled` or `error`.
pub fn passkey_sign_in(step: &'static str, outcome: &'static str) {
    get().passkey_sign_ins.with_label_values(&[step, outcome]).inc();
}

/// A refresh-token exchange's outcome: `succeeded`, `failed` or `error`.
pub fn refresh(outcome: &'static str) {
    get().refreshes.with_label_values(&[outcome]).inc();
}

/// A spent refresh token was presented again (its session ends).
pub fn reuse_detected() {
    get().reuse_detected.inc();
}

/// `count` sessions ended for `reason` (one of the code's fixed reasons).
pub fn sessions_ended(reason: &str, count: usize) {
    if count > 0 {
        get().sessions_ended.with_label_values(&[reason]).inc_by(count as u64);
    }
}

/// A password hash joins the queue; dropping the guard takes it out and records the wait.
pub fn hash_queued() -> HashQueued {
    get().hash_queue_depth.inc();
    HashQueued(Instant::now())
}

/// See [`hash_queued`].
pub struct HashQueued(Instant);

impl Drop for HashQueued {
    fn drop(&mut self) {
        let m = get();
        m.hash_queue_depth.dec();
        m.hash_wait.observe(self.0.elapsed().as_secs_f64());
    }
}

/// An SQLite batch of `bodies` write transactions committed.
pub fn write_batch(bodies: usize) {
    get().write_batch_size.observe(bodies as f64);
}

/// The revocation feed was read successfully just now.
pub fn feed_read() {
    get().feed_read_at.store(unix_now() as i64, Ordering::Relaxed);
}

/// A message's delivery outcome: `sent`, `retried` or `failed` (given up).
pub fn mail(outcome: &'static str) {
    get().mail.with_label_values(&[outcome]).inc();
}

/// Messages waiting in the outbox, as the sender last counted them.
pub fn mail_outbox_depth(depth: i64) {
    get().mail_outbox_depth.set(depth);
}

/// What [`render`] samples at scrape time.
#[derive(Debug, Default, Clone, Copy)]
pub struct Sample {
    pub pool_max: usize,
    pub pool_size: usize,
    pub pool_idle: usize,
    pub pool_waiting: usize,
    pub revoked_sessions: usize,
}

/// Resident set size from `/proc/self/statm` (0 where there is none).
fn rss_bytes() -> i64 {
    let pages = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|p| p.parse::<i64>().ok()))
        .unwrap_or(0);
    // SAFETY: sysconf only reads a system constant.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    pages * if page > 0 { page as i64 } else { 4096 }
}

/// The text exposition (format 0.0.4) of every metric, with `sample` and the process gauges.
pub fn render(sample: Sample) -> String {
    let m = get();
    m.pool_max.set(sample.pool_max as i64);
    m.pool_connections.with_label_values(&["in_use"]).set(sample.pool_size.saturating_sub(sample.pool_idle) as i64);
    m.pool_connections.with_label_values(&["idle"]).set(sample.pool_idle as i64);
    m.pool_waiting.set(sample.pool_waiting as i64);
    m.revoked_sessions.set(sample.revoked_sessions as i64);
    let now = unix_now();
    let read_at = m.feed_read_at.load(Ordering::Relaxed);
    let since = if read_at > 0 { read_at as f64 } else { m.started_unix };
    m.feed_lag.set((now - since).max(0.0));
    m.rss.set(rss_bytes());
    m.uptime.set(m.started.elapsed().as_secs_f64());
    m.start_time.set(m.started_unix);
    let mut out = Vec::with_capacity(16 * 1024);
    // Encoding into a Vec cannot fail for well-formed metric families.
    let _ = TextEncoder::new().encode(&m.registry.gather(), &mut out);
    String::from_utf8(out).unwrap_or_default()
}

/// The exposition's content type.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
