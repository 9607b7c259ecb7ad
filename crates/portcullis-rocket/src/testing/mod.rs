//! A test kit for apps built on this crate (the `testing` feature): an in-process [`Issuer`] that
//! mints signed access tokens and makes the changes Portcullis's change feed would carry.
//!
//! Its fairing ([`Issuer::fairing`]) is a [`Portcullis`] fairing that manages a [`Trust`] holding
//! the issuer's public key, instead of connecting to a Portcullis. The app's guards then work as in
//! production — the same verification core (signature, `typ`, `kid`, `iss`, `aud`, `exp`), the
//! same refusal rule and role table — and what the test changes (an ended session, a role taken
//! away, a permission removed, a deleted client) reaches them at once, as a feed answer applied
//! in process. No network, no database: an issuer and a token take well under a millisecond.
//!
//! ```
//! use portcullis_rocket::testing::{bearer, Issuer};
//! use portcullis_rocket::{permission, Authorized};
//! use rocket::http::Status;
//! use rocket::local::blocking::Client;
//!
//! permission!(ReportsWrite = "reports:write");
//!
//! #[rocket::post("/reports")]
//! fn create(_who: Authorized<ReportsWrite>) -> Status {
//!     Status::Created
//! }
//!
//! let issuer = Issuer::new().role("editor", ["reports:write"]);
//! let app = rocket::build().mount("/", rocket::routes![create]).attach(issuer.fairing());
//! let client = Client::tracked(app).unwrap();
//! let token = issuer.user("alice").roles(["editor"]).token();
//! assert_eq!(client.post("/reports").header(bearer(&token)).dispatch().status(), Status::Created);
//! issuer.remove_permission("editor", "reports:write");
//! assert_eq!(client.post("/reports").header(bearer(&token)).dispatch().status(), Status::Forbidden);
//! ```

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::changes::{DeletedClient, Ended, FeedAnswer, RoleChange};
use crate::core::{self, AccessClaims, Expected, KeySet};
use crate::trust::{now, Trust};
use crate::Portcullis;

mod tokens;

pub use tokens::{bearer, ClientToken, UserToken};

/// The `iss` of the kit's tokens.
pub const ISSUER: &str = "https://portcullis.test";
/// The `aud` of the kit's tokens: Portcullis's default `auth.audience`.
pub const AUDIENCE: &str = "portcullis";

/// An in-process Portcullis for tests: a signing key, roles, users, clients and sessions.
///
/// A cheap handle: clones share one issuer, so a test keeps one while the app holds its fairing.
/// Changes reach every app the issuer's fairing is attached to before the method returns.
#[derive(Clone)]
pub struct Issuer(Arc<Inner>);

struct Inner {
    key: ed25519_dalek::SigningKey,
    kid: String,
    trust: Trust,
    books: Mutex<Books>,
}

/// What Portcullis's database would hold, as far as the change feed tells it.
#[derive(Default)]
struct Books {
    /// Role → permissions.
    roles: HashMap<String, BTreeSet<String>>,
    /// User → the roles they hold: every role a token was minted with, less those taken away.
    users: HashMap<String, BTreeSet<String>>,
    /// Users who lost a role: their tokens are checked against their current roles.
    changed_users: BTreeSet<String>,
    ended_sessions: BTreeSet<String>,
    deleted_clients: BTreeSet<String>,
    /// The feed's cursor: one more per change.
    cursor: i64,
}

impl std::fmt::Debug for Issuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issuer").field("kid", &self.0.kid).finish_non_exhaustive()
    }
}

impl Default for Issuer {
    fn default() -> Self {
        Issuer::new()
    }
}

impl Issuer {
    /// A new issuer with a fresh Ed25519 key (its own `kid`, so tokens of one issuer are refused
    /// by an app trusting another) and no roles.
    pub fn new() -> Issuer {
        let key = ed25519_dalek::SigningKey::from_bytes(&tokens::random());
        let kid = format!("test-{}", tokens::hex(&tokens::random::<4>()));
        let expected = Expected { issuer: ISSUER.into(), audience: AUDIENCE.into(), leeway: 0 };
        let trust = Trust::in_process(expected, KeySet::from([(kid.clone(), key.verifying_key())]));
        let issuer = Issuer(Arc::new(Inner { key, kid, trust, books: Mutex::default() }));
        issuer.publish(issuer.books());
        issuer
    }

    /// Defines the role `name` with exactly `permissions` (replacing an earlier definition).
    /// Roles a token names but no call defined grant no permission.
    pub fn role<S: Into<String>>(self, name: &str, permissions: impl IntoIterator<Item = S>) -> Issuer {
        let mut books = self.books();
        books.roles.insert(name.to_owned(), permissions.into_iter().map(Into::into).collect());
        self.publish(books);
        self
    }

    /// A Portcullis fairing that trusts this issuer: attach it instead of
    /// [`Portcullis::fairing`], or after it — being the same singleton fairing, the last one
    /// attached replaces the app's own. Like the real one it registers the JSON catchers; it
    /// reads no configuration.
    pub fn fairing(&self) -> Portcullis {
        Portcullis::preset(self.0.trust.clone())
    }

    /// A token for the user `user_id` (`sub`), in a new session; see [`UserToken`].
    pub fn user(&self, user_id: &str) -> UserToken<'_> {
        UserToken::new(self, user_id)
    }

    /// A client-credentials token for the service client `client_id`; see [`ClientToken`].
    pub fn client(&self, client_id: &str) -> ClientToken<'_> {
        ClientToken::new(self, client_id)
    }

    /// Ends the session of `token` (a logout): every token of that session is refused with 401.
    ///
    /// # Panics
    /// When `token` is not a user's token signed by this issuer.
    pub fn end_session(&self, token: &str) {
        let claims = self.read(token);
        let sid = claims.sid.unwrap_or_else(|| panic!("end_session: a client's token has no session"));
        let mut books = self.books();
        books.ended_sessions.insert(sid);
        self.publish(books);
    }

    /// Takes `role` away from `user_id`: their tokens naming it are refused with 401 (they must
    /// be refreshed), and their tokens naming only roles they still hold keep working.
    pub fn remove_role(&self, user_id: &str, role: &str) {
        let mut books = self.books();
        books.users.entry(user_id.to_owned()).or_default().remove(role);
        books.changed_users.insert(user_id.to_owned());
        self.publish(books);
    }

    /// Removes `permission` from `role`: users holding it through that role only get 403 from
    /// guards requiring it; their tokens stay valid.
    pub fn remove_permission(&self, role: &str, permission: &str) {
        let mut books = self.books();
        if let Some(permissions) = books.roles.get_mut(role) {
            permissions.remove(permission);
        }
        self.publish(books);
    }

    /// Deletes the service client `client_id`: its tokens, earlier and later, are refused with 401.
    pub fn delete_client(&self, client_id: &str) {
        let mut books = self.books();
        books.deleted_clients.insert(client_id.to_owned());
        self.publish(books);
    }

    /// Records that `user_id` holds `roles` (Portcullis issues a token with the user's roles).
    fn grant(&self, user_id: &str, roles: &[String]) {
        let mut books = self.books();
        let held = books.users.entry(user_id.to_owned()).or_default();
        let before = held.len();
        held.extend(roles.iter().cloned());
        if held.len() != before && books.changed_users.contains(user_id) {
            self.publish(books);
        }
    }

    /// The claims of one of this issuer's tokens, whatever its time (the verification core's
    /// checks but the clock's).
    fn read(&self, token: &str) -> AccessClaims {
        let keys = KeySet::from([(self.0.kid.clone(), self.0.key.verifying_key())]);
        match core::verify_signed(token, &keys, &self.0.trust.0.expected) {
            Ok((claims, _)) => claims,
            Err(e) => panic!("not a token of this issuer: {}", e.description()),
        }
    }

    fn books(&self) -> MutexGuard<'_, Books> {
        self.0.books.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Hands the apps what the change feed would: the whole state as a snapshot, applied by the
    /// same code that applies the feed's answers. Entries never expire (`until` is the far future),
    /// whatever lifetime the test gave its tokens.
    fn publish(&self, mut books: MutexGuard<'_, Books>) {
        books.cursor += 1;
        let until = i64::MAX;
        let answer = FeedAnswer {
            cursor: books.cursor,
            snapshot: true,
            ended_sessions: books.ended_sessions.iter().map(|sid| Ended { sid: sid.clone(), until }).collect(),
            deleted_clients: books
                .deleted_clients
                .iter()
                .map(|client_id| DeletedClient { client_id: client_id.clone(), until })
                .collect(),
            client_cutoffs: vec![],
            role_changes: books
                .changed_users
                .iter()
                .map(|sub| RoleChange {
                    sub: sub.clone(),
                    version: books.cursor,
                    roles: books.users.get(sub).cloned().unwrap_or_default(),
                    until,
                })
                .collect(),
            roles: books.roles.clone(),
        };
        self.0.trust.changes().apply(answer, now());
    }
}
