//! A fresh database per test — a temporary SQLite file, or a new PostgreSQL database that is
//! dropped afterwards — copied from a template the test process migrated once, so ~400 tests do
//! not each run every migration. Tests of migrations themselves start from [`TestDb::empty`].
//!
//! The template also holds one generation of ID-token keys ([`id_token_keys`]): generating a
//! 2048-bit RSA key takes a noticeable moment, which ~800 test databases should not each pay.
//! Tests of that generation itself start from [`TestDb::empty`] too.
//!
//! PostgreSQL runs when `PORTCULLIS_TEST_POSTGRES_URL` names a server (an admin URL such as
//! `postgres://postgres@127.0.0.1:5432/postgres`); without it the `postgres` variant of a test
//! says it was skipped, and fails under `CI=true`. `.ci/run` always sets it.

use std::io::Write;
use std::path::{Path, PathBuf};

use diesel::sql_types::BigInt;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use portcullis::db::schema::id_token_keys;
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The admin URL of the PostgreSQL server for tests, if configured.
pub fn postgres_admin_url() -> Option<String> {
    std::env::var("PORTCULLIS_TEST_POSTGRES_URL").ok().filter(|u| !u.trim().is_empty())
}

/// Whether the PostgreSQL test `test` can run. Without `PORTCULLIS_TEST_POSTGRES_URL` it says on
/// standard error that it was skipped (written past the test harness's capture, so a plain
/// `cargo test` shows it) — and under `CI=true` fails instead: CI must cover both backends.
pub fn postgres_or_skip(test: &str) -> bool {
    if postgres_admin_url().is_some() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{test}: PORTCULLIS_TEST_POSTGRES_URL is not set, and CI=true runs every PostgreSQL test"
    );
    let _ = writeln!(std::io::stderr(), "skipped: {test}: PORTCULLIS_TEST_POSTGRES_URL is not set");
    false
}

/// A fresh database, removed when dropped.
pub enum TestDb {
    Sqlite { _dir: tempfile::TempDir, url: String },
    Postgres { admin_url: String, name: String, url: String },
}

impl TestDb {
    /// A fresh database with every migration applied (a copy of this process's template).
    pub async fn migrated(backend: Backend) -> TestDb {
        match backend {
            Backend::Sqlite => {
                let db = Self::empty(Backend::Sqlite).await;
                let template = SQLITE_TEMPLATE.get_or_init(sqlite_template).await;
                std::fs::copy(template, db.url()).expect("copy the SQLite template");
                db
            }
            Backend::Postgres => {
                let admin_url = postgres_admin_url().expect("PORTCULLIS_TEST_POSTGRES_URL");
                let template = POSTGRES_TEMPLATE.get_or_init(|| postgres_template(&admin_url)).await;
                Self::postgres(admin_url, &format!("TEMPLATE {template}")).await
            }
        }
    }

    /// A fresh database without any table, for tests of the migrations themselves.
    pub async fn empty(backend: Backend) -> TestDb {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = dir.path().join("test.db").to_string_lossy().into_owned();
                TestDb::Sqlite { _dir: dir, url }
            }
            Backend::Postgres => Self::postgres(postgres_admin_url().expect("PORTCULLIS_TEST_POSTGRES_URL"), "").await,
        }
    }

    /// `CREATE DATABASE <a new name> <options>` on the server of `admin_url`.
    async fn postgres(admin_url: String, options: &str) -> TestDb {
        let name = format!("portcullis_test_{}", uuid::Uuid::new_v4().simple());
        admin(&admin_url)
            .await
            .batch_execute(&format!("CREATE DATABASE {name} {options}"))
            .await
            .expect("create database");
        let url = on_server(&admin_url, &name);
        TestDb::Postgres { admin_url, name, url }
    }

    pub fn url(&self) -> &str {
        match self {
            TestDb::Sqlite { url, .. } | TestDb::Postgres { url, .. } => url,
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let TestDb::Postgres { admin_url, name, .. } = self {
            let (admin_url, name) = (admin_url.clone(), name.clone());
            // Drop runs inside the test's runtime: use a thread with a runtime of its own.
            let _ = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
                runtime.block_on(async {
                    if let Ok(mut admin) = AsyncPgConnection::establish(&admin_url).await {
                        let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
                    }
                });
            })
            .join();
        }
    }
}

/// One generation of ID-token keys, stored in clear (the service seals them at start-up when it
/// has a key-encryption key, as it does any key found in clear).
async fn id_token_keys() -> Vec<portcullis::models::StoredIdTokenKey> {
    let clear = portcullis::auth::keys::kek::AtRest::new(None);
    portcullis::auth::oidc::keys::new_generation(&clear, 1, 0).await.expect("ID-token keys")
}

static SQLITE_TEMPLATE: OnceCell<PathBuf> = OnceCell::const_new();
static POSTGRES_TEMPLATE: OnceCell<String> = OnceCell::const_new();

async fn admin(admin_url: &str) -> AsyncPgConnection {
    AsyncPgConnection::establish(admin_url)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at PORTCULLIS_TEST_POSTGRES_URL is unreachable: {e}"))
}

/// The URL of database `name` on the server of `admin_url`.
fn on_server(admin_url: &str, name: &str) -> String {
    let base = admin_url.rsplit_once('/').map(|(base, _)| base).unwrap_or(admin_url);
    format!("{base}/{name}")
}

/// The first 16 hex digits of a SHA-256 over every file (path and content) of
/// `migrations/<backend>` and what else the template holds: a changed migration gets a template
/// of its own.
fn migrations_hash(backend: &str) -> String {
    fn files(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("the migrations folder") {
            let path = entry.expect("a migrations entry").path();
            if path.is_dir() {
                files(&path, out);
            } else {
                out.push(path);
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations").join(backend);
    let mut paths = Vec::new();
    files(&root, &mut paths);
    paths.sort();
    let mut digest = Sha256::new();
    // What the template holds besides the schema: a change here gets a template of its own.
    digest.update(b"template with one generation of ID-token keys");
    for path in paths {
        digest.update(path.strip_prefix(&root).unwrap().to_string_lossy().as_bytes());
        digest.update(std::fs::read(&path).expect("a migration file"));
    }
    digest.finalize()[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// The migrated SQLite file copied for each test, kept in Cargo's per-target scratch folder
/// across runs. Built under a unique name and renamed into place, so concurrent test processes
/// never see half of one. Left in rollback-journal mode, so the one file holds everything (a
/// `-wal` beside it would not be copied); the service turns on WAL when it opens the copy.
async fn sqlite_template() -> PathBuf {
    let path =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("portcullis-template-{}.db", migrations_hash("sqlite")));
    if path.exists() {
        return path;
    }
    let building = path.with_extension(format!("{}.building", uuid::Uuid::new_v4().simple()));
    let url = building.to_string_lossy().into_owned();
    portcullis::db::run_migrations(&url).await.expect("migrate the SQLite template");
    let keys = id_token_keys().await;
    {
        use diesel::connection::SimpleConnection;
        use diesel::Connection;
        let mut conn = diesel::SqliteConnection::establish(&url).expect("open the SQLite template");
        for key in &keys {
            diesel::RunQueryDsl::execute(diesel::insert_into(id_token_keys::table).values(key), &mut conn)
                .expect("store the template's ID-token keys");
        }
        conn.batch_execute("PRAGMA journal_mode = DELETE").expect("leave WAL mode");
    }
    assert!(!Path::new(&format!("{url}-wal")).exists(), "the template's WAL was checkpointed");
    std::fs::rename(&building, &path).expect("publish the SQLite template");
    path
}

/// The name of the migrated PostgreSQL template database: `portcullis_tpl_<migrations hash>`,
/// made by the first test process that needs it and kept on the server for later runs (a
/// changed migration makes a new one). Built under a temporary name and renamed once migrated,
/// under an advisory lock that serialises test processes. PostgreSQL copies a template only
/// while nobody is connected to it: the migration's connection is closed before the rename (which
/// waits for it, as `CREATE DATABASE … TEMPLATE` does), and nothing connects to it afterwards.
async fn postgres_template(admin_url: &str) -> String {
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let name = format!("portcullis_tpl_{}", migrations_hash("postgres"));
    let mut admin = admin(admin_url).await;
    admin.batch_execute(&format!("SELECT pg_advisory_lock(hashtext('{name}'))")).await.expect("template lock");
    let existing: Count = diesel::sql_query(format!("SELECT count(*) AS n FROM pg_database WHERE datname = '{name}'"))
        .get_result(&mut admin)
        .await
        .expect("look for the template");
    if existing.n == 0 {
        let building = format!("{name}_b{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        admin.batch_execute(&format!("CREATE DATABASE {building}")).await.expect("create the template");
        portcullis::db::run_migrations(&on_server(admin_url, &building)).await.expect("migrate the template");
        {
            let mut conn = AsyncPgConnection::establish(&on_server(admin_url, &building)).await.expect("the template");
            for key in &id_token_keys().await {
                diesel::insert_into(id_token_keys::table)
                    .values(key)
                    .execute(&mut conn)
                    .await
                    .expect("store the template's ID-token keys");
            }
        }
        admin
            .batch_execute(&format!("ALTER DATABASE {building} RENAME TO {name}"))
            .await
            .expect("publish the template");
    }
    admin.batch_execute(&format!("SELECT pg_advisory_unlock(hashtext('{name}'))")).await.expect("template unlock");
    name
}
