//! The page that shows an account's ten new recovery codes, once: after the first second factor
//! of any kind, a TOTP confirmation ([`super::totp`]) or a first passkey ([`super::passkey_add`])
//! (contract v3, "Second factors"). It answers 200 with the codes instead of 303: they are never
//! kept in clear, so no later GET could show them.

use askama::Template;
use rocket::http::Status;

use crate::auth::Auth;
use crate::pages::Html;

#[derive(Template)]
#[template(path = "account_codes.html")]
struct CodesPage<'a> {
    site: &'a str,
    error: Option<&'a str>,
    notice: &'a str,
    /// What the codes stand in for ("app", "passkey").
    factor: &'a str,
    /// The passkey just added, by its name.
    passkey: Option<&'a str>,
    codes: &'a [String],
}

/// What the new second factor was.
pub enum NewFactor<'a> {
    Totp,
    Passkey { name: &'a str },
}

/// The codes, with the notice of what was turned on.
pub fn page(auth: &Auth, new: NewFactor<'_>, codes: &[String]) -> Html {
    let site = auth.config.display_name();
    let (notice, factor, passkey) = match new {
        NewFactor::Totp => ("Two-step sign-in with an authenticator app is on.", "app", None),
        NewFactor::Passkey { name } => (super::Notice::PasskeyAdded.text(), "passkey", Some(name)),
    };
    let body = CodesPage { site: &site, error: None, notice, factor, passkey, codes }
        .render()
        .unwrap_or_else(|_| "<!doctype html><title>Error</title><p>The page could not be shown.</p>".into());
    Html { status: Status::Ok, body }
}
