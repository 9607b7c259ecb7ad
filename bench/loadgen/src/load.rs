//! Closed-loop load: N connections, each sending its next request when the last one answered.
//!
//! A run has a warm-up (not measured) and a measured window. Throughput and latency count the
//! requests that complete inside the window; errors (non-2xx answers and transport failures)
//! count over warm-up and window alike, so a scenario that must have none shows every one.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use hyper::header::HeaderValue;
use serde::{Deserialize, Serialize};

use crate::codeflow::{Browser, CodeClient, FlowError, Steps};
use crate::http::{bearer, Call, Client, Target};
use crate::logout::Sessions;
use crate::procstat;

const WARMUP: u8 = 0;
const MEASURE: u8 = 1;
const STOP: u8 = 2;

/// An account the seed step registered.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct User {
    pub email: String,
    pub password: String,
}

/// What `seed` leaves for the scenarios.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub users: Vec<User>,
    /// Access tokens of distinct sessions.
    pub access_tokens: Vec<String>,
}

/// What one group of connections does.
#[derive(Clone)]
pub enum Work {
    /// GET `path`, with the connection's token when `tokens` is given.
    Get { path: &'static str, tokens: Option<Arc<Vec<String>>> },
    /// POST /auth/login with the connection's account.
    Login { users: Arc<Vec<User>> },
    /// POST /auth/refresh with the refresh token the connection got last; the chain starts from
    /// a login of the connection's account before the clock starts.
    Refresh { users: Arc<Vec<User>> },
    /// POST /auth/register with a new email each time.
    Register { prefix: String },
    /// POST /auth/logout with the access token of a session no request has ended yet; the
    /// measured window ends early when every session has been logged out.
    Logout { sessions: Arc<Sessions> },
    /// One code-flow sign-in per iteration (src/codeflow.rs), with the password of the
    /// connection's account.
    CodePassword { app: Arc<CodeClient>, users: Arc<Vec<User>> },
    /// One code-flow sign-in per iteration with a browser session: the connection registers
    /// `browsers` accounts (emails from `prefix`), signs each in once through the hosted form
    /// before the clock starts, and takes its browsers in turn.
    CodeSession { app: Arc<CodeClient>, browsers: usize, prefix: String },
}

/// A named set of connections doing one kind of work.
pub struct Group {
    pub name: &'static str,
    pub connections: usize,
    pub work: Work,
}

/// Per-connection tally, merged into the group's.
pub struct Tally {
    latency_us: Histogram<u64>,
    measured: u64,
    statuses: BTreeMap<u16, u64>,
    non_2xx: u64,
    transport: u64,
    broken_chains: u64,
    first_error: Option<String>,
    /// The code flows' steps in the window: how many and their total microseconds.
    steps: BTreeMap<&'static str, (u64, u64)>,
}

impl Tally {
    fn new() -> Tally {
        Tally {
            latency_us: Histogram::new_with_bounds(1, 120_000_000, 3).expect("valid histogram bounds"),
            measured: 0,
            statuses: BTreeMap::new(),
            non_2xx: 0,
            transport: 0,
            broken_chains: 0,
            first_error: None,
            steps: BTreeMap::new(),
        }
    }

    fn merge(&mut self, other: Tally) {
        self.latency_us.add(&other.latency_us).expect("same histogram bounds");
        self.measured += other.measured;
        for (status, n) in other.statuses {
            *self.statuses.entry(status).or_default() += n;
        }
        self.non_2xx += other.non_2xx;
        self.transport += other.transport;
        self.broken_chains += other.broken_chains;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        for (step, (n, us)) in other.steps {
            let entry = self.steps.entry(step).or_default();
            entry.0 += n;
            entry.1 += us;
        }
    }

    fn error(&mut self, message: String) {
        if self.first_error.is_none() {
            self.first_error = Some(message);
        }
    }

    /// Counts one code-flow sign-in that took `elapsed`: in the window only when it succeeded
    /// (a token response of 200 with an access token); a failure is an error either way.
    fn sign_in(&mut self, result: Result<Steps, FlowError>, elapsed: Duration, measuring: bool) {
        match result {
            Ok(steps) if measuring => {
                self.measured += 1;
                let _ = self.latency_us.record((elapsed.as_micros() as u64).max(1));
                *self.statuses.entry(200).or_default() += 1;
                for (step, took) in steps {
                    let entry = self.steps.entry(step).or_default();
                    entry.0 += 1;
                    entry.1 += took.as_micros() as u64;
                }
            }
            Ok(_) => {}
            Err(e) => {
                match e.status {
                    Some(status) => {
                        self.non_2xx += 1;
                        if measuring {
                            *self.statuses.entry(status).or_default() += 1;
                        }
                    }
                    None => self.transport += 1,
                }
                self.error(e.message);
            }
        }
    }
}

/// One JSON line of results per group.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct GroupReport {
    pub kind: String,
    pub label: String,
    pub scenario: String,
    pub group: String,
    pub connections: usize,
    pub duration_s: f64,
    pub requests: u64,
    pub rps: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
    pub errors: u64,
    pub non_2xx: u64,
    pub transport_errors: u64,
    pub broken_chains: u64,
    pub statuses: BTreeMap<String, u64>,
    pub first_error: Option<String>,
    pub server_peak_rss_kib: u64,
    pub server_hwm_kib: u64,
    pub server_cpu_cores: f64,
    pub loadgen_cpu_cores: f64,
    pub machine_busy_cores: f64,
    /// CPU of every `postgres` process on the machine (the database, and any other user of it).
    pub postgres_cpu_cores: f64,
    pub other_cpu_cores: f64,
    pub loadgen_threads: usize,
    /// Server CPU time per request completed in the window (all groups together), microseconds.
    pub server_cpu_us_per_req: f64,
    /// Server context switches (all threads) per request completed in the window (all groups).
    pub server_switches_per_req: f64,
    /// The code flows: the mean client-side milliseconds of each step of a sign-in.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub step_ms: BTreeMap<String, f64>,
}

fn json_body(value: serde_json::Value) -> Bytes {
    Bytes::from(value.to_string())
}

fn login_body(user: &User) -> Bytes {
    json_body(serde_json::json!({"email": user.email, "password": user.password}))
}

/// Logs `user` in; the access and refresh tokens.
pub async fn login(client: &mut Client, user: &User) -> Result<(String, String), String> {
    let (status, body) = client.send(&Call::post_json("/auth/login", login_body(user))).await?;
    if !status.is_success() {
        return Err(format!("login of {} answered {status}: {}", user.email, String::from_utf8_lossy(&body)));
    }
    let value: serde_json::Value = serde_json::from_slice(&body).map_err(|e| format!("login response: {e}"))?;
    let field =
        |name: &str| value[name].as_str().map(str::to_owned).ok_or_else(|| format!("login response lacks {name}"));
    Ok((field("access_token")?, field("refresh_token")?))
}

fn unix_nanos() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
}

/// Registers `user` (409: registered before).
pub async fn register(client: &mut Client, user: &User) -> Result<(), String> {
    let (status, body) = client.send(&Call::post_json("/auth/register", login_body(user))).await?;
    if status.is_success() || status.as_u16() == 409 {
        return Ok(());
    }
    Err(format!("register {} answered {status}: {}", user.email, String::from_utf8_lossy(&body)))
}

/// What one connection sends next, and what it keeps between requests.
struct Connection {
    work: Work,
    index: usize,
    counter: u64,
    bearer: Option<HeaderValue>,
    body: Option<Bytes>,
    refresh_token: Option<String>,
    /// The code flows' browsers, taken in turn.
    browsers: Vec<Browser>,
}

impl Connection {
    async fn new(work: Work, index: usize, client: &mut Client) -> Result<Connection, String> {
        let mut conn = Connection {
            work: work.clone(),
            index,
            counter: 0,
            bearer: None,
            body: None,
            refresh_token: None,
            browsers: Vec::new(),
        };
        match &work {
            Work::Get { tokens: Some(tokens), .. } => {
                conn.bearer = Some(bearer(&tokens[index % tokens.len()]));
            }
            Work::Get { tokens: None, .. } | Work::Register { .. } | Work::Logout { .. } => {}
            Work::Login { users } => conn.body = Some(login_body(&users[index % users.len()])),
            Work::Refresh { users } => {
                let (_, refresh) = login(client, &users[index % users.len()]).await?;
                conn.refresh_token = Some(refresh);
            }
            Work::CodePassword { users, .. } => {
                let seed = format!("{}-{index}-{}", std::process::id(), unix_nanos());
                conn.browsers.push(Browser::new(users[index % users.len()].clone(), seed));
            }
            Work::CodeSession { app, browsers, prefix } => {
                for k in 0..*browsers {
                    let user = User {
                        email: format!("{prefix}-{index}-{k}@bench.example.com"),
                        password: format!("bench-password-{index}-{k}"),
                    };
                    register(client, &user).await?;
                    let mut browser = Browser::new(user, format!("{prefix}-{index}-{k}-{}", unix_nanos()));
                    app.with_password(client, &mut browser, true)
                        .await
                        .map_err(|e| format!("signing in: {}", e.message))?;
                    conn.browsers.push(browser);
                }
            }
        }
        Ok(conn)
    }

    /// The code flows' next sign-in, with the connection's browsers in turn; `None` for the
    /// other work.
    async fn sign_in(&mut self, client: &mut Client) -> Option<Result<Steps, FlowError>> {
        let (app, with_password) = match &self.work {
            Work::CodePassword { app, .. } => (app.clone(), true),
            Work::CodeSession { app, .. } => (app.clone(), false),
            _ => return None,
        };
        self.counter += 1;
        let turn = self.counter as usize % self.browsers.len();
        let browser = &mut self.browsers[turn];
        Some(match with_password {
            true => app.with_password(client, browser, false).await,
            false => app.with_session(client, browser).await,
        })
    }

    /// The next request; `None` when the work is used up (every session logged out).
    fn next_call(&mut self) -> Option<Call> {
        self.counter += 1;
        Some(match &self.work {
            Work::Get { path, .. } => Call::get(*path, self.bearer.clone()),
            Work::Login { .. } => Call::post_json("/auth/login", self.body.clone().unwrap_or_default()),
            Work::Refresh { .. } => Call::post_json(
                "/auth/refresh",
                json_body(serde_json::json!({"refresh_token": self.refresh_token.as_deref().unwrap_or("")})),
            ),
            Work::Register { prefix } => {
                let email = format!("{prefix}-{}-{}@bench.example.com", self.index, self.counter);
                Call::post_json(
                    "/auth/register",
                    json_body(serde_json::json!({"email": email, "password": "bench-password-123"})),
                )
            }
            Work::Logout { sessions } => {
                Call { bearer: Some(sessions.take()?), ..Call::post_json("/auth/logout", Bytes::from_static(b"{}")) }
            }
            Work::CodePassword { .. } | Work::CodeSession { .. } => return None,
        })
    }

    /// Takes what the response carries forward; `Err` when the connection cannot go on.
    fn absorb(&mut self, body: &Bytes) -> Result<(), String> {
        if let Work::Refresh { .. } = self.work {
            let value: serde_json::Value =
                serde_json::from_slice(body).map_err(|e| format!("refresh response: {e}"))?;
            let token = value["refresh_token"].as_str().ok_or("refresh response lacks refresh_token")?;
            self.refresh_token = Some(token.to_owned());
        }
        Ok(())
    }

    /// Whether an error ends this connection's work (a broken rotation chain cannot go on).
    fn fatal_on_error(&self) -> bool {
        matches!(self.work, Work::Refresh { .. })
    }
}

async fn drive(target: Target, work: Work, index: usize, phase: Arc<AtomicU8>, ready: Arc<AtomicU64>) -> Tally {
    let mut tally = Tally::new();
    let mut client = Client::new(target);
    let mut conn = match Connection::new(work, index, &mut client).await {
        Ok(conn) => conn,
        Err(e) => {
            tally.transport += 1;
            tally.broken_chains += 1;
            tally.error(format!("setup: {e}"));
            ready.fetch_add(1, Ordering::AcqRel);
            return tally;
        }
    };
    ready.fetch_add(1, Ordering::AcqRel);
    loop {
        if phase.load(Ordering::Acquire) == STOP {
            break;
        }
        let started = Instant::now();
        if let Some(result) = conn.sign_in(&mut client).await {
            let transport = matches!(&result, Err(FlowError { status: None, .. }));
            tally.sign_in(result, started.elapsed(), phase.load(Ordering::Acquire) == MEASURE);
            if transport {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            continue;
        }
        let Some(call) = conn.next_call() else {
            // Out of work: the window ends now for every connection, so the rate counts only
            // time in which all of them had requests to send.
            if phase.swap(STOP, Ordering::AcqRel) == WARMUP {
                tally.error("the seeded sessions ran out during the warm-up; seed more".into());
            }
            break;
        };
        let result = client.send(&call).await;
        let elapsed = started.elapsed();
        let measuring = phase.load(Ordering::Acquire) == MEASURE;
        match result {
            Ok((status, body)) => {
                if measuring {
                    tally.measured += 1;
                    let _ = tally.latency_us.record((elapsed.as_micros() as u64).max(1));
                    *tally.statuses.entry(status.as_u16()).or_default() += 1;
                }
                if status.is_success() {
                    if let Err(e) = conn.absorb(&body) {
                        tally.non_2xx += 1;
                        tally.error(e);
                        if conn.fatal_on_error() {
                            tally.broken_chains += 1;
                            break;
                        }
                    }
                } else {
                    tally.non_2xx += 1;
                    tally.error(format!(
                        "{status}: {}",
                        String::from_utf8_lossy(&body).chars().take(200).collect::<String>()
                    ));
                    if conn.fatal_on_error() {
                        tally.broken_chains += 1;
                        break;
                    }
                }
            }
            Err(e) => {
                tally.transport += 1;
                tally.error(e);
                if conn.fatal_on_error() {
                    tally.broken_chains += 1;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    tally
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// Runs `groups` at once: connections set up (and, for refresh, logged in), then `warmup`
/// unmeasured, then `duration` measured. One report per group.
pub async fn run(
    target: &Target,
    groups: Vec<Group>,
    warmup: Duration,
    duration: Duration,
    pid: Option<u32>,
) -> Vec<(String, usize, Tally, Measured)> {
    let phase = Arc::new(AtomicU8::new(WARMUP));
    let ready = Arc::new(AtomicU64::new(0));
    let total: usize = groups.iter().map(|g| g.connections).sum();
    let mut handles = Vec::new();
    for group in &groups {
        let mut tasks = Vec::new();
        for index in 0..group.connections {
            tasks.push(tokio::spawn(drive(target.clone(), group.work.clone(), index, phase.clone(), ready.clone())));
        }
        handles.push((group.name.to_string(), group.connections, tasks));
    }
    // Each connection starts sending once it is set up (refresh chains log in first); the
    // warm-up clock starts when all of them are.
    while ready.load(Ordering::Acquire) < total as u64 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(warmup).await;
    let sampler = procstat::RssSampler::start(pid);
    let server_cpu0 = pid.and_then(procstat::process_cpu_seconds);
    let self_cpu0 = procstat::self_cpu_seconds();
    let machine0 = procstat::machine_busy_seconds();
    let switches0 = pid.and_then(procstat::context_switches);
    let postgres0 = procstat::postgres_cpu_seconds();
    let started = Instant::now();
    // Unless the work ran out during the warm-up already.
    let _ = phase.compare_exchange(WARMUP, MEASURE, Ordering::AcqRel, Ordering::Acquire);
    while phase.load(Ordering::Acquire) == MEASURE && started.elapsed() < duration {
        tokio::time::sleep((duration - started.elapsed()).min(Duration::from_millis(5))).await;
    }
    phase.store(STOP, Ordering::Release);
    let elapsed = started.elapsed().as_secs_f64();
    let self_cpu = procstat::self_cpu_seconds() - self_cpu0;
    let server_cpu = match (server_cpu0, pid.and_then(procstat::process_cpu_seconds)) {
        (Some(a), Some(b)) => b - a,
        _ => 0.0,
    };
    let machine = match (machine0, procstat::machine_busy_seconds()) {
        (Some(a), Some(b)) => b - a,
        _ => 0.0,
    };
    let postgres = procstat::postgres_cpu_seconds() - postgres0;
    let switches = match (switches0, pid.and_then(procstat::context_switches)) {
        (Some(a), Some(b)) => b.saturating_sub(a),
        _ => 0,
    };
    let peak_rss = sampler.finish();
    let hwm = pid.and_then(procstat::memory_kib).map(|(_, hwm)| hwm).unwrap_or(0);
    let measured = Measured {
        elapsed,
        server_cpu_cores: server_cpu / elapsed,
        loadgen_cpu_cores: self_cpu / elapsed,
        machine_busy_cores: machine / elapsed,
        postgres_cpu_cores: postgres.max(0.0) / elapsed,
        peak_rss,
        hwm,
        switches,
        requests: 0,
    };
    let mut out = Vec::new();
    for (name, connections, tasks) in handles {
        let mut tally = Tally::new();
        for task in tasks {
            match task.await {
                Ok(t) => tally.merge(t),
                Err(e) => tally.error(format!("connection task failed: {e}")),
            }
        }
        out.push((name, connections, tally));
    }
    let measured = Measured { requests: out.iter().map(|(_, _, t)| t.measured).sum(), ..measured };
    out.into_iter().map(|(name, connections, tally)| (name, connections, tally, measured.clone())).collect()
}

/// Process-level numbers of one measured window.
#[derive(Debug, Clone)]
pub struct Measured {
    pub elapsed: f64,
    pub server_cpu_cores: f64,
    pub loadgen_cpu_cores: f64,
    pub machine_busy_cores: f64,
    pub postgres_cpu_cores: f64,
    pub peak_rss: u64,
    pub hwm: u64,
    /// Context switches of every server thread in the window.
    pub switches: u64,
    /// Requests completed in the window by every group together.
    pub requests: u64,
}

/// Turns one group's tally into its report line.
pub fn report(
    label: &str,
    scenario: &str,
    group: &str,
    connections: usize,
    tally: &Tally,
    m: &Measured,
    threads: usize,
) -> GroupReport {
    let h = &tally.latency_us;
    let nonempty = !h.is_empty();
    let pct = |q: f64| if nonempty { ms(h.value_at_quantile(q)) } else { 0.0 };
    GroupReport {
        kind: "scenario".into(),
        label: label.into(),
        scenario: scenario.into(),
        group: group.into(),
        connections,
        duration_s: m.elapsed,
        requests: tally.measured,
        rps: tally.measured as f64 / m.elapsed,
        p50_ms: pct(0.50),
        p90_ms: pct(0.90),
        p99_ms: pct(0.99),
        max_ms: if nonempty { ms(h.max()) } else { 0.0 },
        mean_ms: if nonempty { h.mean() / 1000.0 } else { 0.0 },
        errors: tally.non_2xx + tally.transport,
        non_2xx: tally.non_2xx,
        transport_errors: tally.transport,
        broken_chains: tally.broken_chains,
        statuses: tally.statuses.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        first_error: tally.first_error.clone(),
        server_peak_rss_kib: m.peak_rss,
        server_hwm_kib: m.hwm,
        server_cpu_cores: m.server_cpu_cores,
        loadgen_cpu_cores: m.loadgen_cpu_cores,
        machine_busy_cores: m.machine_busy_cores,
        postgres_cpu_cores: m.postgres_cpu_cores,
        other_cpu_cores: (m.machine_busy_cores - m.server_cpu_cores - m.loadgen_cpu_cores - m.postgres_cpu_cores)
            .max(0.0),
        loadgen_threads: threads,
        server_cpu_us_per_req: if m.requests > 0 {
            m.server_cpu_cores * m.elapsed * 1e6 / m.requests as f64
        } else {
            0.0
        },
        server_switches_per_req: if m.requests > 0 { m.switches as f64 / m.requests as f64 } else { 0.0 },
        step_ms: tally
            .steps
            .iter()
            .map(|(step, (n, us))| (step.to_string(), *us as f64 / 1000.0 / *n as f64))
            .collect(),
    }
}
