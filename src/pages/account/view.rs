//! What the account page shows: the account, its sessions, second factors, passkeys and
//! consents, read through the same `auth` functions as the API's lists, rendered with
//! `templates/account.html`.

use std::collections::HashMap;

use askama::Template;
use rocket::http::Status;

use super::SignedIn;
use crate::auth::Auth;
use crate::db::{Db, Id};
use crate::error::{ApiError, ApiResult};
use crate::models::{Consent, PasskeyRow, Session, User, UserStore, FIRST_PARTY_CLIENT};
use crate::page::Page;
use crate::pages::Html;

/// One session, as the list shows it.
pub struct SessionItem {
    pub id: String,
    /// "This browser", "Browser sign-in", "Sign-in through the API" or the client's name.
    pub kind: String,
    pub this_browser: bool,
    pub user_agent: String,
    pub created: String,
    pub last_used: String,
}

pub struct ConsentItem {
    pub client_id: String,
    pub name: String,
    pub scope: String,
    pub granted: String,
}

pub struct PasskeyItem {
    pub id: String,
    pub name: String,
    pub created: String,
    pub last_used: String,
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage<'a> {
    site: &'a str,
    error: Option<&'a str>,
    notice: Option<&'a str>,
    csrf: &'a str,
    email: &'a str,
    email_verified: bool,
    totp_on: bool,
    sessions: Vec<SessionItem>,
    consents: Vec<ConsentItem>,
    passkeys: Vec<PasskeyItem>,
}

/// Everything the page lists, read in one go.
struct Overview {
    user: User,
    sessions: Vec<Session>,
    browser_sessions: Vec<Id>,
    consents: Vec<Consent>,
    passkeys: Vec<PasskeyRow>,
}

async fn overview(auth: &Auth, db: &Db, me: &SignedIn) -> ApiResult<Overview> {
    let mut conn = db.conn().await?;
    let user_id = me.user.user_id;
    let user = crate::db::with_conn!(&mut conn, |c| c.find_user_with_roles(user_id).await)?
        .map(|(user, _)| user)
        .ok_or_else(|| ApiError::not_found("The account no longer exists."))?;
    let all = Page { limit: Page::MAX_LIMIT, offset: 0 };
    let sessions = auth.list_sessions(&mut conn, user_id, all).await?;
    let ids: Vec<Id> = sessions.iter().map(|s| s.id).collect();
    let browser_sessions = super::signed_in::browser_sessions_among(auth, &mut conn, &ids).await?;
    let consents = auth.list_consents(&mut conn, &me.user).await?;
    let passkeys = auth.list_passkeys(&mut conn, &me.user).await?;
    Ok(Overview { user, sessions, browser_sessions, consents, passkeys })
}

/// A date as people read it, in UTC.
pub fn when(unix: i64) -> String {
    let text = crate::clock::rfc3339(unix);
    match (text.get(..10), text.get(11..16)) {
        (Some(day), Some(time)) => format!("{day} {time} UTC"),
        _ => text,
    }
}

fn session_item(s: &Session, me: &SignedIn, browser: &[Id], clients: &HashMap<String, &str>) -> SessionItem {
    let this_browser = s.id == me.session_id();
    let kind = if this_browser {
        "This browser".to_owned()
    } else if browser.contains(&s.id) {
        "Browser sign-in".to_owned()
    } else if s.client_id == FIRST_PARTY_CLIENT {
        "Sign-in through the API".to_owned()
    } else {
        match clients.get(&s.client_id) {
            Some(name) => format!("Application: {name}"),
            None => "Application".to_owned(),
        }
    };
    SessionItem {
        id: s.id.to_string(),
        kind,
        this_browser,
        user_agent: s.user_agent.clone().unwrap_or_else(|| "Unknown device".into()),
        created: when(s.created_at),
        last_used: when(s.last_used_at),
    }
}

fn render(page: &AccountPage<'_>) -> String {
    page.render().unwrap_or_else(|_| "<!doctype html><title>Error</title><p>The page could not be shown.</p>".into())
}

/// The page, with a one-time `notice` or the `error` of a refused form (whose status it takes).
pub async fn page(auth: &Auth, db: &Db, me: &SignedIn, notice: Option<&str>, error: Option<&ApiError>) -> Html {
    let site = auth.config.display_name();
    let status = error.map_or(Status::Ok, |e| e.status);
    let overview = match overview(auth, db, me).await {
        Ok(overview) => overview,
        Err(e) => {
            let failed = AccountPage {
                site: &site,
                error: Some(e.description()),
                notice: None,
                csrf: &me.csrf,
                email: "",
                email_verified: false,
                totp_on: false,
                sessions: vec![],
                consents: vec![],
                passkeys: vec![],
            };
            return Html { status: e.status, body: render(&failed) };
        }
    };
    let clients: HashMap<String, &str> =
        overview.consents.iter().map(|c| (c.client_id.to_string(), c.client_name.as_str())).collect();
    let sessions =
        overview.sessions.iter().map(|s| session_item(s, me, &overview.browser_sessions, &clients)).collect();
    let consents = overview
        .consents
        .iter()
        .map(|c| ConsentItem {
            client_id: c.client_id.to_string(),
            name: c.client_name.clone(),
            scope: c.scope.clone(),
            granted: when(c.granted_at),
        })
        .collect();
    let passkeys = overview
        .passkeys
        .iter()
        .map(|p| PasskeyItem {
            id: p.id.to_string(),
            name: p.name.clone(),
            created: when(p.created_at),
            last_used: p.last_used_at.map_or_else(|| "never".to_owned(), when),
        })
        .collect();
    let body = render(&AccountPage {
        site: &site,
        error: error.map(|e| e.description()),
        notice,
        csrf: &me.csrf,
        email: &overview.user.email,
        email_verified: overview.user.email_verified,
        totp_on: overview.user.mfa_enabled,
        sessions,
        consents,
        passkeys,
    });
    Html { status, body }
}
