//! The guard types work over any [`Source`], not only Portcullis's two: here a stub that trusts
//! tokens of the form `user/<id>/<session>/<role,...>` or `client/<id>/<scope,...>` — the shape a
//! developer could use to test handlers without an issuer. It also pins down the guards' rules
//! apart from any source: which guard takes which caller, the source's own rule before the
//! permission, and the request-local cache.

use std::sync::atomic::{AtomicUsize, Ordering};

use portcullis_rocket::core::AccessClaims;
use portcullis_rocket::guards::{Caller, Client, Identity, Source, User};
use portcullis_rocket::{error, permission, AuthError, Authorized};
use rocket::http::{Header, Status};
use rocket::local::asynchronous::Client as LocalClient;
use rocket::{get, routes, Orbit, Rocket};
use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
struct StubId(String);

impl std::fmt::Display for StubId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Trusts every well-formed stub token; `banned` roles are refused by its own rule.
#[derive(Default)]
struct Stub {
    verifications: AtomicUsize,
}

impl Identity for StubId {
    type Source = Stub;
}

#[rocket::async_trait]
impl Source<StubId> for Stub {
    type Error = AuthError;

    fn of(rocket: &Rocket<Orbit>) -> Result<&Self, AuthError> {
        rocket.state::<Stub>().ok_or_else(|| AuthError::unavailable("no stub"))
    }

    async fn verify(&self, token: &str) -> Result<AccessClaims<StubId>, AuthError> {
        self.verifications.fetch_add(1, Ordering::SeqCst);
        let id = |s: &str| StubId(s.to_owned());
        let mut claims = AccessClaims {
            iss: "stub".into(),
            aud: "stub".into(),
            sub: id(""),
            jti: id("j"),
            iat: 0,
            exp: i64::MAX,
            nbf: None,
            sid: None,
            roles: None,
            client_id: None,
            scope: None,
            amr: vec!["pwd".into()],
        };
        match token.split('/').collect::<Vec<_>>()[..] {
            ["user", user, session, roles] => {
                claims.sub = id(user);
                claims.sid = Some(id(session));
                claims.roles = Some(roles.split(',').filter(|r| !r.is_empty()).map(str::to_owned).collect());
            }
            ["client", client, scope] => {
                (claims.sub, claims.client_id) = (id(client), Some(client.to_owned()));
                claims.scope = Some(scope.replace(',', " "));
            }
            _ => return Err(AuthError::invalid_token("Not a stub token.")),
        }
        Ok(claims)
    }

    fn refusal(&self, claims: &AccessClaims<StubId>) -> Option<&'static str> {
        (claims.sid.as_ref().is_some_and(|s| s.0 == "ended")).then_some("The session of this access token has ended.")
    }

    fn grants(&self, roles: &[String], permission: &str) -> bool {
        roles.iter().any(|r| r == "editor") && permission.starts_with("reports:")
    }

    async fn admits(&self, _req: &rocket::Request<'_>, caller: &Caller<StubId>) -> Result<(), AuthError> {
        match caller {
            Caller::User(user) if user.roles.iter().any(|r| r == "banned") => {
                Err(AuthError::forbidden("Banned users may not use permissions."))
            }
            _ => Ok(()),
        }
    }
}

permission!(ReportsRead = "reports:read");

#[get("/me")]
fn me(user: User<StubId>) -> String {
    format!("{} in {}", user.user_id, user.session_id)
}

#[get("/service")]
fn service(client: Client<StubId>) -> String {
    client.scope.join(" ")
}

/// Two guards on one route: the token is verified once.
#[get("/reports")]
fn reports(caller: Authorized<ReportsRead, StubId>, also: Caller<StubId>) -> String {
    assert_eq!(&caller.caller, &also);
    caller.id().to_string()
}

async fn app() -> LocalClient {
    let rocket = rocket::build()
        .manage(Stub::default())
        .mount("/", routes![me, service, reports])
        .register("/", error::catchers());
    LocalClient::untracked(rocket).await.unwrap()
}

async fn get(app: &LocalClient, path: &str, token: &str) -> (Status, String) {
    let response = app.get(path.to_owned()).header(Header::new("Authorization", format!("Bearer {token}"))).dispatch();
    let response = response.await;
    (response.status(), response.into_string().await.unwrap_or_default())
}

#[rocket::async_test]
async fn each_guard_takes_its_kind_of_caller_and_refuses_the_other_with_403() {
    let app = app().await;
    assert_eq!(get(&app, "/me", "user/u1/s1/").await, (Status::Ok, "u1 in s1".into()));
    assert_eq!(get(&app, "/service", "client/c1/reports:read").await, (Status::Ok, "reports:read".into()));
    let (status, body) = get(&app, "/me", "client/c1/reports:read").await;
    assert_eq!(status, Status::Forbidden);
    assert!(body.contains("insufficient_permissions") && body.contains("for users"), "{body}");
    assert_eq!(get(&app, "/service", "user/u1/s1/").await.0, Status::Forbidden);
}

#[rocket::async_test]
async fn a_permission_comes_from_a_users_roles_or_a_clients_scope_after_the_sources_own_rule() {
    let app = app().await;
    assert_eq!(get(&app, "/reports", "user/u1/s1/editor").await, (Status::Ok, "u1".into()));
    assert_eq!(get(&app, "/reports", "client/c1/reports:read").await, (Status::Ok, "c1".into()));
    let (status, body) = get(&app, "/reports", "user/u1/s1/viewer").await;
    assert_eq!(status, Status::Forbidden);
    assert!(body.contains("This requires the reports:read permission."), "{body}");
    assert_eq!(get(&app, "/reports", "client/c1/reports:write").await.0, Status::Forbidden);
    let (status, body) = get(&app, "/reports", "user/u1/s1/editor,banned").await;
    assert_eq!(status, Status::Forbidden);
    assert!(body.contains("Banned users"), "{body}");
}

#[rocket::async_test]
async fn a_refused_or_unreadable_token_is_401_with_the_challenge() {
    let app = app().await;
    for (path, token) in [("/me", "user/u1/ended/"), ("/reports", "user/u1/ended/editor"), ("/me", "junk")] {
        let response = app.get(path).header(Header::new("Authorization", format!("Bearer {token}"))).dispatch().await;
        assert_eq!(response.status(), Status::Unauthorized, "{token}");
        let challenge = response.headers().get_one("WWW-Authenticate").unwrap();
        assert!(challenge.starts_with("Bearer error=\"invalid_token\""), "{challenge}");
    }
    let response = app.get("/me").dispatch().await;
    assert_eq!(response.headers().get_one("WWW-Authenticate"), Some("Bearer"));
}

#[rocket::async_test]
async fn a_token_is_verified_once_per_request_however_many_guards_ask() {
    let app = app().await;
    assert_eq!(get(&app, "/reports", "user/u1/s1/editor").await.0, Status::Ok);
    let stub = app.rocket().state::<Stub>().unwrap();
    assert_eq!(stub.verifications.load(Ordering::SeqCst), 1);
}
