//! The resource-server part of `bench/run`: seeding Portcullis for the example app (a role with
//! `reports:read`, a user holding it, and sessions of that user), and the revocation delay
//! Portcullis → app (end a session or take the role away at Portcullis, then poll the app
//! until it refuses the token).

use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::Method;
use serde_json::{json, Value};

use crate::http::{bearer, Call, Client, Target};
use crate::load::{login, State, User};

/// The role the app's `GET /reports` needs, and the roles the bench's user holds.
const ROLE: &str = "bench-analyst";
const ROLES_WITH: [&str; 2] = ["user", ROLE];
const ROLES_WITHOUT: [&str; 1] = ["user"];

/// A trial that has not seen a refusal after this long fails the command.
const TRIAL_LIMIT: Duration = Duration::from_secs(10);

/// Sends `method path` with a JSON `body` as `token`; the status and parsed body.
async fn call(
    client: &mut Client,
    method: Method,
    path: &str,
    token: &str,
    body: Value,
) -> Result<(u16, Value), String> {
    let call =
        Call { method, bearer: Some(bearer(token)), ..Call::post_json(path.to_owned(), Bytes::from(body.to_string())) };
    let (status, body) = client.send(&call).await?;
    Ok((status.as_u16(), serde_json::from_slice(&body).unwrap_or(Value::Null)))
}

fn expect(what: &str, status: u16, ok: &[u16], body: &Value) -> Result<(), String> {
    if ok.contains(&status) {
        Ok(())
    } else {
        Err(format!("{what} answered {status}: {body}"))
    }
}

/// The admin's access token.
async fn admin_token(client: &mut Client, admin: &User) -> Result<String, String> {
    Ok(login(client, admin).await?.0)
}

async fn set_roles(client: &mut Client, admin: &str, user_id: &str, roles: &[&str]) -> Result<(), String> {
    let (status, body) =
        call(client, Method::PUT, &format!("/admin/users/{user_id}/roles"), admin, json!({ "roles": roles })).await?;
    expect("PUT /admin/users/{id}/roles", status, &[200], &body)
}

/// Creates the role, registers a user holding it and logs it in `sessions` times.
pub async fn seed(target: Target, admin: User, sessions: usize) -> Result<(State, String), String> {
    let mut client = Client::new(target.clone());
    let admin = admin_token(&mut client, &admin).await?;
    let role = json!({"name": ROLE, "description": "bench/run: reads reports", "permissions": ["reports:read"]});
    let (status, body) = call(&mut client, Method::POST, "/admin/roles", &admin, role).await?;
    expect("POST /admin/roles", status, &[201, 409], &body)?;
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
    let user = User { email: format!("analyst-{stamp}@bench.example.com"), password: "bench-password-analyst".into() };
    let register = json!({"email": user.email, "password": user.password});
    let (status, body) = call(&mut client, Method::POST, "/auth/register", &admin, register).await?;
    expect("POST /auth/register", status, &[201], &body)?;
    let user_id = body["id"].as_str().ok_or("register answered no id")?.to_owned();
    set_roles(&mut client, &admin, &user_id, &ROLES_WITH).await?;
    let mut tokens = Vec::with_capacity(sessions);
    for _ in 0..sessions.max(1) {
        tokens.push(login(&mut client, &user).await?.0);
    }
    Ok((State { users: vec![user], access_tokens: tokens }, user_id))
}

/// How the app answers `GET /reports` with `token`.
async fn app_status(app: &mut Client, token: &str) -> Result<u16, String> {
    Ok(app.send(&Call::get("/reports", Some(bearer(token)))).await?.0.as_u16())
}

/// Polls the app until it answers 401 to `token`; the time since `since`.
async fn until_refused(app: &mut Client, token: &str, since: Instant) -> Result<Duration, String> {
    loop {
        match app_status(app, token).await? {
            401 => return Ok(since.elapsed()),
            200 => {}
            other => return Err(format!("the app answered {other} while the change propagated")),
        }
        if since.elapsed() > TRIAL_LIMIT {
            return Err(format!("the app still accepted the token after {TRIAL_LIMIT:?}"));
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Until the app accepts `token` (a role given back reaches it through the feed, too).
async fn until_accepted(app: &mut Client, token: &str) -> Result<(), String> {
    let since = Instant::now();
    while app_status(app, token).await? != 200 {
        if since.elapsed() > TRIAL_LIMIT {
            return Err("the app did not accept a fresh token".into());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}

/// `trials` times: a fresh token the app accepts, then `change` at Portcullis (`logout`: the
/// session ends; `role`: the admin takes the role away, given back after the trial), then the
/// time until the app refuses the token. The delays, sorted.
pub async fn revocation(
    portcullis: Target,
    app: Target,
    state: &State,
    user_id: &str,
    admin: User,
    change: &str,
    trials: usize,
) -> Result<Vec<Duration>, String> {
    let (mut client, mut app) = (Client::new(portcullis), Client::new(app));
    let admin = admin_token(&mut client, &admin).await?;
    let user = state.users.first().ok_or("the state has no user")?;
    let mut delays = Vec::with_capacity(trials);
    for _ in 0..trials {
        let (token, _) = login(&mut client, user).await?;
        until_accepted(&mut app, &token).await?;
        let since = match change {
            "logout" => {
                let (status, body) = call(&mut client, Method::POST, "/auth/logout", &token, json!({})).await?;
                expect("POST /auth/logout", status, &[204], &body)?;
                Instant::now()
            }
            "role" => {
                set_roles(&mut client, &admin, user_id, &ROLES_WITHOUT).await?;
                Instant::now()
            }
            other => return Err(format!("unknown change {other:?} (logout, role)")),
        };
        delays.push(until_refused(&mut app, &token, since).await?);
        if change == "role" {
            set_roles(&mut client, &admin, user_id, &ROLES_WITH).await?;
            let (status, body) = call(&mut client, Method::POST, "/auth/logout", &token, json!({})).await?;
            expect("POST /auth/logout", status, &[204, 401], &body)?;
        }
    }
    delays.sort();
    Ok(delays)
}

/// The delay at quantile `q` of sorted `delays`, in milliseconds.
pub fn quantile_ms(delays: &[Duration], q: f64) -> f64 {
    let i = ((delays.len() as f64 * q).ceil() as usize).clamp(1, delays.len().max(1)) - 1;
    delays.get(i).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}
