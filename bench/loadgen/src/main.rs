//! `portcullis-loadgen`: the load generator and report writer behind `bench/run`.
//!
//! ```text
//! portcullis-loadgen free-port
//! portcullis-loadgen wait-ready --url URL [--pid PID] [--timeout SECS]
//! portcullis-loadgen idle --pid PID --label LABEL
//! portcullis-loadgen seed --url URL --out FILE [--users 16] [--sessions 64]
//! portcullis-loadgen run --url URL --scenario NAME --state FILE --label LABEL
//!                        [--duration 10] [--warmup 1] [--pid PID] [--connections N] [--threads 1]
//!                        [--sessions FILE --chain-key FILE]   (logout: see src/logout.rs)
//!                        [--client-id ID --redirect-uri URI]  (code-password, code-session)
//! portcullis-loadgen report --results FILE --meta FILE --out FILE [--criterion DIR]
//! portcullis-loadgen app-seed --url URL --admin-email E --admin-password P --out FILE [--sessions 64]
//! portcullis-loadgen revocation --url URL --app APP_URL --state FILE --admin-email E
//!                        --admin-password P --change logout|role --label LABEL [--trials 200]
//! ```
//!
//! Scenarios: ceiling, guard-only, me, login, login+me, refresh, register, logout, the code-flow
//! sign-ins code-password and code-session (src/codeflow.rs; `--client-id` of a first-party
//! public client registered with `--redirect-uri`), and `reports` (`GET /reports` of the example
//! resource server, with the tokens `app-seed` leaves; `--url` is the app's). `wait-ready` takes `--path` (default `/health/ready`). `run` prints one JSON
//! line per group of connections (login+me has two) on standard output and a summary on
//! standard error.

mod app;
mod codeflow;
mod http;
mod load;
mod logout;
mod procstat;
mod report;

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use codeflow::CodeClient;
use http::{Call, Client, Target};
use load::{Group, State, User, Work};

const SCENARIOS: &[&str] = &[
    "ceiling",
    "guard-only",
    "me",
    "login",
    "login+me",
    "refresh",
    "register",
    "logout",
    "code-password",
    "code-session",
    "reports",
];

/// Browsers (accounts) per connection of `code-session`: every code exchange starts a session of
/// the account, and the session cap's query lists an account's live sessions, so the sign-ins
/// are spread over many accounts as a real sign-in load is.
const CODE_SESSION_BROWSERS: usize = 8;

struct Args {
    command: String,
    options: HashMap<String, String>,
}

impl Args {
    fn parse() -> Result<Args, String> {
        let mut raw = std::env::args().skip(1);
        let command =
            raw.next().ok_or("usage: portcullis-loadgen <command> [--key value]...; see the source header")?;
        let mut options = HashMap::new();
        while let Some(key) = raw.next() {
            let name = key.strip_prefix("--").ok_or_else(|| format!("unexpected argument {key:?}"))?;
            let value = raw.next().ok_or_else(|| format!("--{name} needs a value"))?;
            options.insert(name.to_owned(), value);
        }
        Ok(Args { command, options })
    }

    fn get(&self, name: &str) -> Result<&str, String> {
        self.options.get(name).map(String::as_str).ok_or_else(|| format!("--{name} is required"))
    }

    fn num<T: std::str::FromStr>(&self, name: &str, default: T) -> Result<T, String> {
        match self.options.get(name) {
            Some(v) => v.parse().map_err(|_| format!("--{name}: not a number: {v:?}")),
            None => Ok(default),
        }
    }

    fn pid(&self) -> Result<Option<u32>, String> {
        self.options.get("pid").map(|p| p.parse().map_err(|_| format!("--pid: {p:?}"))).transpose()
    }
}

fn main() -> ExitCode {
    match Args::parse().and_then(dispatch) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loadgen: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn runtime(threads: usize) -> Result<tokio::runtime::Runtime, String> {
    if threads <= 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    } else {
        tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build()
    }
    .map_err(|e| e.to_string())
}

fn dispatch(args: Args) -> Result<(), String> {
    match args.command.as_str() {
        "free-port" => {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
            println!("{}", listener.local_addr().map_err(|e| e.to_string())?.port());
            Ok(())
        }
        "wait-ready" => {
            let target = Target::parse(args.get("url")?)?;
            let timeout = Duration::from_secs(args.num("timeout", 60)?);
            let path = args.get("path").unwrap_or("/health/ready").to_owned();
            runtime(1)?.block_on(wait_ready(target, path, args.pid()?, timeout))
        }
        "idle" => {
            let pid = args.pid()?.ok_or("--pid is required")?;
            let (rss, hwm) = procstat::memory_kib(pid).ok_or_else(|| format!("no process {pid}"))?;
            let line = serde_json::json!({"kind": "idle", "label": args.get("label")?, "rss_kib": rss, "hwm_kib": hwm});
            println!("{line}");
            Ok(())
        }
        "seed" => {
            let target = Target::parse(args.get("url")?)?;
            let state = runtime(1)?.block_on(seed(target, args.num("users", 16)?, args.num("sessions", 64)?))?;
            let json = serde_json::to_string(&state).map_err(|e| e.to_string())?;
            std::fs::write(args.get("out")?, json).map_err(|e| format!("{}: {e}", args.get("out").unwrap_or("")))
        }
        "run" => run(&args),
        "app-seed" => {
            let target = Target::parse(args.get("url")?)?;
            let admin = User { email: args.get("admin-email")?.into(), password: args.get("admin-password")?.into() };
            let (state, user_id) = runtime(1)?.block_on(app::seed(target, admin, args.num("sessions", 64)?))?;
            let mut json = serde_json::to_value(&state).map_err(|e| e.to_string())?;
            json["user_id"] = user_id.into();
            let out = args.get("out")?;
            std::fs::write(out, json.to_string()).map_err(|e| format!("{out}: {e}"))
        }
        "revocation" => revocation(&args),
        "report" => report::write(
            args.get("results")?,
            args.get("meta")?,
            args.options.get("criterion").map(String::as_str),
            args.get("out")?,
        ),
        other => Err(format!("unknown command {other:?}")),
    }
}

async fn wait_ready(target: Target, path: String, pid: Option<u32>, timeout: Duration) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(pid) = pid {
            if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                return Err(format!("the server (pid {pid}) exited before it was ready"));
            }
        }
        let mut client = Client::new(target.clone());
        let last = match client.send(&Call::get(path.clone(), None)).await {
            Ok((status, _)) if status.is_success() => return Ok(()),
            Ok((status, body)) => format!("{status}: {}", String::from_utf8_lossy(&body)),
            Err(e) => e,
        };
        if Instant::now() > deadline {
            return Err(format!("{path} did not answer 200 within {timeout:?} (last: {last})"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Registers `users` accounts and logs in `sessions` times (round-robin over them), eight at a
/// time; every login is a password hash, so this takes about `(users + sessions) × hash ÷ cores`.
async fn seed(target: Target, users: usize, sessions: usize) -> Result<State, String> {
    let run_id = format!(
        "{}-{}",
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
        std::process::id()
    );
    let accounts: Vec<User> = (0..users.max(1))
        .map(|i| User {
            email: format!("seed-{run_id}-{i}@bench.example.com"),
            password: format!("bench-password-{i}"),
        })
        .collect();
    let accounts = Arc::new(accounts);
    let workers = 8;
    let mut tasks = Vec::new();
    for w in 0..workers {
        let (target, accounts) = (target.clone(), accounts.clone());
        tasks.push(tokio::spawn(async move {
            let mut client = Client::new(target);
            for user in accounts.iter().skip(w).step_by(workers) {
                load::register(&mut client, user).await?;
            }
            Ok::<_, String>(())
        }));
    }
    for task in tasks {
        task.await.map_err(|e| e.to_string())??;
    }
    let mut tasks = Vec::new();
    for w in 0..workers {
        let (target, accounts) = (target.clone(), accounts.clone());
        tasks.push(tokio::spawn(async move {
            let mut client = Client::new(target);
            let mut tokens = Vec::new();
            for i in (w..sessions).step_by(workers) {
                let (access, _) = load::login(&mut client, &accounts[i % accounts.len()]).await?;
                tokens.push(access);
            }
            Ok::<_, String>(tokens)
        }));
    }
    let mut access_tokens = Vec::new();
    for task in tasks {
        access_tokens.extend(task.await.map_err(|e| e.to_string())??);
    }
    if access_tokens.is_empty() {
        return Err("--sessions must be at least 1".into());
    }
    Ok(State { users: accounts.to_vec(), access_tokens })
}

fn groups(
    scenario: &str,
    state: &State,
    connections: Option<usize>,
    sessions: Option<Arc<logout::Sessions>>,
    code: Option<Arc<CodeClient>>,
) -> Result<Vec<Group>, String> {
    let tokens = Some(Arc::new(state.access_tokens.clone()));
    let users = Arc::new(state.users.clone());
    let me = |c| Group { name: "me", connections: c, work: Work::Get { path: "/users/me", tokens: tokens.clone() } };
    let login = |c| Group { name: "login", connections: c, work: Work::Login { users: users.clone() } };
    let c = |default: usize| connections.unwrap_or(default);
    Ok(match scenario {
        "ceiling" => {
            vec![Group { name: "ceiling", connections: c(64), work: Work::Get { path: "/health/live", tokens: None } }]
        }
        "guard-only" => vec![Group {
            name: "guard-only",
            connections: c(64),
            work: Work::Get { path: "/users/me/token", tokens: tokens.clone() },
        }],
        "me" => vec![me(c(64))],
        "reports" => vec![Group {
            name: "reports",
            connections: c(64),
            work: Work::Get { path: "/reports", tokens: tokens.clone() },
        }],
        "login" => vec![login(c(8))],
        "login+me" => vec![login(8), me(64)],
        "refresh" => vec![Group { name: "refresh", connections: c(16), work: Work::Refresh { users: users.clone() } }],
        "register" => {
            let millis =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
            let prefix = format!("reg-{}-{millis}", std::process::id());
            vec![Group { name: "register", connections: c(8), work: Work::Register { prefix } }]
        }
        "logout" => {
            let sessions = sessions.ok_or("logout needs --sessions FILE and --chain-key FILE")?;
            vec![Group { name: "logout", connections: c(16), work: Work::Logout { sessions } }]
        }
        "code-password" => {
            let app = code.ok_or("code-password needs --client-id and --redirect-uri")?;
            vec![Group { name: "code-password", connections: c(8), work: Work::CodePassword { app, users } }]
        }
        "code-session" => {
            let app = code.ok_or("code-session needs --client-id and --redirect-uri")?;
            let millis =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
            let prefix = format!("code-{}-{millis}", std::process::id());
            let work = Work::CodeSession { app, browsers: CODE_SESSION_BROWSERS, prefix };
            vec![Group { name: "code-session", connections: c(16), work }]
        }
        other => return Err(format!("unknown scenario {other:?}; one of {}", SCENARIOS.join(", "))),
    })
}

fn run(args: &Args) -> Result<(), String> {
    let target = Target::parse(args.get("url")?)?;
    let scenario = args.get("scenario")?;
    let label = args.get("label")?;
    let state_path = args.get("state")?;
    let state: State =
        serde_json::from_str(&std::fs::read_to_string(state_path).map_err(|e| format!("{state_path}: {e}"))?)
            .map_err(|e| format!("{state_path}: {e}"))?;
    let connections =
        args.options.get("connections").map(|c| c.parse().map_err(|_| "--connections: not a number")).transpose()?;
    let threads: usize = args.num("threads", 1)?;
    let duration = Duration::from_secs_f64(args.num("duration", 10.0)?);
    let warmup = Duration::from_secs_f64(args.num("warmup", 1.0)?);
    let pid = args.pid()?;
    let runtime = runtime(threads)?;
    let sessions = match scenario {
        "logout" => {
            let (ids, key) = (args.get("sessions")?, args.get("chain-key")?);
            let sessions = runtime.block_on(logout::prepare(target.clone(), ids, key))?;
            eprintln!(
                "  {label:<8} logout     {} seeded sessions, each exchanged once for an access token",
                sessions.len()
            );
            Some(sessions)
        }
        _ => None,
    };
    let code = match (args.options.get("client-id"), args.options.get("redirect-uri")) {
        (Some(client_id), Some(redirect_uri)) => {
            Some(Arc::new(CodeClient { client_id: client_id.clone(), redirect_uri: redirect_uri.clone() }))
        }
        _ => None,
    };
    let groups = groups(scenario, &state, connections, sessions, code)?;
    let results = runtime.block_on(load::run(&target, groups, warmup, duration, pid));
    for (group, connections, tally, measured) in results {
        let line = load::report(label, scenario, &group, connections, &tally, &measured, threads);
        eprintln!(
            "  {label:<8} {scenario:<10} {group:<10} c={connections:<3} {:>9.1} req/s  p50 {:>7.2} ms  p99 {:>7.2} ms  errors {:<5} rss {:>6.1} MB  cpu server {:.2} loadgen {:.2} postgres {:.2} other {:.2}  server {:.0} us/req {:.1} ctxsw/req",
            line.rps,
            line.p50_ms,
            line.p99_ms,
            line.errors,
            line.server_peak_rss_kib as f64 * 1024.0 / 1e6,
            line.server_cpu_cores,
            line.loadgen_cpu_cores,
            line.postgres_cpu_cores,
            line.other_cpu_cores,
            line.server_cpu_us_per_req,
            line.server_switches_per_req,
        );
        if !line.step_ms.is_empty() {
            let steps: Vec<String> = line.step_ms.iter().map(|(step, ms)| format!("{step} {ms:.2} ms")).collect();
            eprintln!("    mean per step: {}", steps.join(", "));
        }
        if let Some(e) = &line.first_error {
            eprintln!("    first error: {e}");
        }
        println!("{}", serde_json::to_string(&line).map_err(|e| e.to_string())?);
    }
    Ok(())
}

/// `revocation`: the delays of `--trials` changes at Portcullis until the app refuses the token.
fn revocation(args: &Args) -> Result<(), String> {
    let state_path = args.get("state")?;
    let text = std::fs::read_to_string(state_path).map_err(|e| format!("{state_path}: {e}"))?;
    let state: State = serde_json::from_str(&text).map_err(|e| format!("{state_path}: {e}"))?;
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("{state_path}: {e}"))?;
    let user_id = value["user_id"].as_str().ok_or_else(|| format!("{state_path}: no user_id (from app-seed)"))?;
    let admin = User { email: args.get("admin-email")?.into(), password: args.get("admin-password")?.into() };
    let (change, label, trials) = (args.get("change")?, args.get("label")?, args.num("trials", 200)?);
    let (portcullis, app) = (Target::parse(args.get("url")?)?, Target::parse(args.get("app")?)?);
    let delays = runtime(1)?.block_on(app::revocation(portcullis, app, &state, user_id, admin, change, trials))?;
    let (p50, p99, max) =
        (app::quantile_ms(&delays, 0.5), app::quantile_ms(&delays, 0.99), app::quantile_ms(&delays, 1.0));
    eprintln!(
        "  {label:<8} revocation {change:<6} {} trials  p50 {p50:.1} ms  p99 {p99:.1} ms  max {max:.1} ms",
        delays.len()
    );
    let line = serde_json::json!({"kind": "revocation", "label": label, "change": change, "trials": delays.len(),
        "p50_ms": p50, "p99_ms": p99, "max_ms": max});
    println!("{line}");
    Ok(())
}
