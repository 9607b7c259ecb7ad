//! Rocket request guards for services that trust Portcullis:
//! tokens verified locally from the JWKS, and ended sessions, deleted clients, removed roles and
//! removed permissions refused within a second through Portcullis's change feed — with no call to
//! Portcullis per request.
//!
//! ```no_run
//! use portcullis_rocket::{permission, Authorized, Portcullis, User};
//!
//! permission!(ReportsRead = "reports:read");
//!
//! #[rocket::get("/whoami")]
//! fn whoami(user: User) -> String {
//!     user.user_id
//! }
//!
//! #[rocket::get("/reports")]
//! fn reports(_caller: Authorized<ReportsRead>) -> &'static str {
//!     "[]"
//! }
//!
//! #[rocket::launch]
//! fn rocket() -> _ {
//!     // Rocket.toml: [default.portcullis] url = "http://127.0.0.1:8000", client_id = "…", client_secret = "…"
//!     rocket::build().attach(Portcullis::fairing()).mount("/", rocket::routes![whoami, reports])
//! }
//! ```
//!
//! Refusals use Portcullis's JSON error shape `{"error", "error_description"}`: 401
//! `invalid_token` with the RFC 6750 challenge, 403 `insufficient_permissions`, and 503
//! `unavailable` once the change feed has been unreachable for longer than `max_staleness`.

pub mod changes;
pub mod core;
pub mod error;
#[cfg(feature = "remote")]
mod fairing;
pub mod guards;
#[cfg(feature = "remote")]
pub mod settings;
#[cfg(feature = "testing")]
pub mod testing;
#[cfg(feature = "remote")]
pub mod trust;

pub use crate::core::Permission;
pub use error::AuthError;
#[cfg(feature = "remote")]
pub use fairing::{readiness_routes, Portcullis};
pub use guards::{Authorized, Caller, Client, User};
#[cfg(feature = "remote")]
pub use settings::Settings;
#[cfg(feature = "remote")]
pub use trust::{ConnectError, Readiness, Trust};

/// The README's quick start, compiled as a doctest.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

/// Declares a permission type for [`Authorized`], named as in Portcullis's `auth.permissions`.
///
/// ```
/// portcullis_rocket::permission!(ReportsWrite = "reports:write");
/// use portcullis_rocket::Permission;
/// assert_eq!(ReportsWrite::NAME, "reports:write");
/// ```
#[macro_export]
macro_rules! permission {
    ($(#[$meta:meta])* $vis:vis $name:ident = $value:literal) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy)]
        $vis struct $name;
        impl $crate::Permission for $name {
            const NAME: &'static str = $value;
        }
    };
}
