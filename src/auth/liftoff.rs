//! The background tasks every instance runs once it is listening: PostgreSQL notifications
//! (which wake the poller early), the storage poller ([`super::sync::poller`]), housekeeping and,
//! with mail configured, the mail sender ([`crate::mail::sender`]).

use std::time::Duration;

use rocket::{Orbit, Rocket};
use rocket_db_pools::Database;

use super::sync::poller;
use super::{housekeeping, Auth};
use crate::db::Db;

/// Spawns the tasks; each stops when Rocket shuts down.
pub(super) async fn start(rocket: &Rocket<Orbit>) {
    let (Some(auth), Some(db)) = (rocket.state::<Auth>(), Db::fetch(rocket)) else { return };
    let interval = Duration::from_millis(auth.config.revocation_poll_ms);
    if let crate::db::DbPool::Pg(_) = &**db {
        let settings = rocket.figment().extract_inner::<crate::db::PoolSettings>("databases.main");
        match settings.as_ref().map(|s| s.session_url()) {
            Ok(Some(url)) => {
                let wake = auth.sync_wake.clone();
                tokio::spawn(crate::db::notify::listen(url.to_owned(), move || wake.wake(), rocket.shutdown()));
            }
            Ok(None) => rocket::warn!(
                "feed notifications off, polling only: LISTEN needs databases.main.direct_url \
                 behind a transaction pooler"
            ),
            Err(e) => rocket::warn!("feed notifications off, polling only: {e}"),
        }
    }
    let views = poller::Views {
        revoked: auth.revoked.clone(),
        client_cutoffs: auth.client_cutoffs.clone(),
        role_changes: auth.role_changes.clone(),
        roles: auth.roles.clone(),
        wake: auth.sync_wake.clone(),
        signing: auth.signing.clone(),
        id_token_keys: auth.id_token_keys.clone(),
    };
    tokio::spawn(poller::run(views, (**db).clone(), auth.clock.clone(), interval, rocket.shutdown()));
    if auth.mail.is_on() {
        let (mail, pool, clock) = (auth.mail.clone(), (**db).clone(), auth.clock.clone());
        tokio::spawn(crate::mail::sender::run(mail, pool, clock, rocket.shutdown()));
    }
    tokio::spawn(housekeeping::run_periodically(
        (**db).clone(),
        auth.clock.clone(),
        auth.config.clone(),
        auth.housekeeping_passes.clone(),
        rocket.shutdown(),
    ));
}
