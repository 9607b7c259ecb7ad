//! Embedded migrations, one folder per backend with the same version names.

use diesel::SqliteConnection;
use diesel_async::{
    AnsiTransactionManager, AsyncConnection, AsyncMigrationHarness, AsyncPgConnection, SimpleAsyncConnection,
    TransactionManager,
};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use rocket::fairing::AdHoc;

use super::pool::{Backend, PoolSettings};
use super::sqlite::SQLITE_PRAGMAS;

const SQLITE: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// Serialises concurrent start-ups of several instances on one PostgreSQL database.
const PG_MIGRATION_LOCK: i64 = 0x706f_7274_6375;

/// Applies pending migrations to the database at `url` and returns the versions it applied
/// (empty when the schema was already current). Needs the multi-threaded tokio runtime.
pub async fn run_migrations(url: &str) -> Result<Vec<String>, String> {
    match Backend::from_url(url) {
        Backend::Postgres(url) => {
            let mut conn =
                AsyncPgConnection::establish(&url).await.map_err(|e| format!("cannot connect to PostgreSQL: {e}"))?;
            conn.batch_execute(&format!("SELECT pg_advisory_lock({PG_MIGRATION_LOCK})"))
                .await
                .map_err(|e| e.to_string())?;
            apply(conn, POSTGRES).await
        }
        Backend::Sqlite(path) => {
            if let Some(parent) = std::path::Path::new(&path).parent() {
                if !parent.as_os_str().is_empty() {
                    std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
                }
            }
            tokio::task::spawn_blocking(move || migrate_sqlite(&path))
                .await
                .map_err(|e| format!("migration task failed: {e}"))?
        }
    }
}

/// The SQLite half of [`run_migrations`], blocking. The write lock is taken before the harness
/// reads which migrations are applied, as the advisory lock does on PostgreSQL: of instances
/// starting at once on a fresh file, one migrates and the others wait, then find nothing pending
/// (they failed with "table already exists" otherwise). SQLite's DDL is transactional.
fn migrate_sqlite(path: &str) -> Result<Vec<String>, String> {
    use diesel::connection::SimpleConnection;
    use diesel::Connection;
    let mut conn =
        SqliteConnection::establish(path).map_err(|e| format!("cannot open SQLite database {path:?}: {e}"))?;
    conn.batch_execute(SQLITE_PRAGMAS).map_err(|e| e.to_string())?;
    // Waiting for another instance's migrations may take longer than a request should wait for
    // the writer (a loaded disk, many migrations): start-up waits up to a minute, not 5 s.
    conn.batch_execute("PRAGMA busy_timeout = 60000").map_err(|e| e.to_string())?;
    conn.immediate_transaction::<_, Box<dyn std::error::Error + Send + Sync>, _>(|c| {
        Ok(c.run_pending_migrations(SQLITE)?.iter().map(|v| v.to_string()).collect())
    })
    .map_err(|e| format!("migration failed: {e}"))
}

/// Applies pending migrations to the `databases.main` of `settings`: on PostgreSQL over its
/// [`session_url`](PoolSettings::session_url), or, behind a transaction pooler without a
/// `direct_url`, in one transaction through the pooler.
pub async fn run_migrations_for(settings: &PoolSettings) -> Result<Vec<String>, String> {
    match (Backend::from_url(&settings.url), settings.session_url()) {
        (Backend::Postgres(_), Some(session_url)) => run_migrations(session_url).await,
        (Backend::Postgres(url), None) => run_in_one_transaction(&url).await,
        (Backend::Sqlite(_), _) => run_migrations(&settings.url).await,
    }
}

/// Behind a transaction pooler a session lock would stay on whichever server took it, and a
/// statement would reach servers that never prepared it: so the lock is transaction-scoped and
/// every migration runs, uncached, inside one transaction (PostgreSQL's DDL is transactional).
async fn run_in_one_transaction(url: &str) -> Result<Vec<String>, String> {
    // Connected as the pool connects through the pooler: uncached, its set-up in a transaction.
    let mut conn =
        super::pg::connect_through_pooler(url).await.map_err(|e| format!("cannot connect to PostgreSQL: {e}"))?;
    AnsiTransactionManager::begin_transaction(&mut conn).await.map_err(|e| e.to_string())?;
    conn.batch_execute(&format!("SELECT pg_advisory_xact_lock({PG_MIGRATION_LOCK})"))
        .await
        .map_err(|e| e.to_string())?;
    let (applied, mut conn) = apply_keeping(conn, POSTGRES).await?;
    match applied {
        Ok(applied) => {
            AnsiTransactionManager::commit_transaction(&mut conn).await.map(|()| applied).map_err(|e| e.to_string())
        }
        Err(e) => {
            let _ = AnsiTransactionManager::rollback_transaction(&mut conn).await;
            Err(e)
        }
    }
}

async fn apply<C>(conn: C, migrations: EmbeddedMigrations) -> Result<Vec<String>, String>
where
    C: AsyncConnection + 'static,
    AsyncMigrationHarness<C>: MigrationHarness<C::Backend>,
{
    apply_keeping(conn, migrations).await?.0
}

/// Runs the pending `migrations` on `conn` (the harness is synchronous: in the blocking pool)
/// and gives the connection back with the outcome, for a caller that must still end a
/// transaction on it.
async fn apply_keeping<C>(conn: C, migrations: EmbeddedMigrations) -> Result<(Result<Vec<String>, String>, C), String>
where
    C: AsyncConnection + 'static,
    AsyncMigrationHarness<C>: MigrationHarness<C::Backend>,
{
    tokio::task::spawn_blocking(move || {
        let mut harness = AsyncMigrationHarness::new(conn);
        let applied = harness
            .run_pending_migrations(migrations)
            .map(|done| done.iter().map(|v| v.to_string()).collect())
            .map_err(|e| format!("migration failed: {e}"));
        (applied, harness.into_inner())
    })
    .await
    .map_err(|e| format!("migration task failed: {e}"))
}

/// Applies pending migrations when the Rocket ignites; a failure stops start-up.
pub fn migrations_fairing() -> AdHoc {
    AdHoc::try_on_ignite("Database migrations", |rocket| async move {
        let settings: PoolSettings = match rocket.figment().extract_inner("databases.main") {
            Ok(settings) => settings,
            Err(e) => {
                rocket::error!("databases.main: {e}");
                return Err(rocket);
            }
        };
        match run_migrations_for(&settings).await {
            Ok(applied) => {
                for version in applied {
                    rocket::info!("applied migration {version}");
                }
                Ok(rocket)
            }
            Err(e) => {
                rocket::error!("databases.main: {e}");
                Err(rocket)
            }
        }
    })
}
