//! Micro-benchmarks of the auth hot paths: access-token signing and verification, the bearer
//! guard's check (verification plus the ended-session set), refresh-token minting, argon2id
//! with the default parameters, and the SQLite read of `GET /users/me`.
//!
//! `cargo bench --bench auth` runs them all (about a minute); `cargo bench --bench auth -- argon2`
//! only the password hashes, which `bench/run` uses for the login limit (cores ÷ one hash).

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use portcullis::auth::keys::tokens::{AccessClaims, TokenKeys};
use portcullis::auth::password::PasswordHasherPool;
use portcullis::auth::secrets::{hash_token, OpaqueToken};
use portcullis::auth::sync::revocation::RevokedSessions;
use portcullis::clock::Clock;
use portcullis::config::AuthConfig;
use portcullis::db::Id;

const SECRET: &[u8] = b"bench-only-secret-0123456789abcdefghijklmnopqrstuvwxyz";
const PASSWORD: &str = "correct horse battery staple";
/// Ended sessions in the set while the guard checks a live one.
const REVOKED: usize = 4096;

fn claims(now: i64, config: &AuthConfig) -> AccessClaims {
    AccessClaims {
        iss: config.issuer.clone(),
        aud: config.audience.clone(),
        sub: Id::new(),
        jti: Id::new(),
        iat: now,
        exp: now + config.access_ttl as i64,
        nbf: None,
        sid: Some(Id::new()),
        roles: Some(vec!["user".into()]),
        client_id: None,
        scope: None,
        amr: vec!["pwd".into()],
    }
}

fn tokens(c: &mut Criterion) {
    let config = AuthConfig::default();
    let keys = TokenKeys::hs256(SECRET, &config);
    let now = Clock::new().now();
    let claims = claims(now, &config);
    let token = keys.sign(&claims).expect("signs");

    let mut group = c.benchmark_group("tokens");
    group.bench_function("sign", |b| b.iter(|| keys.sign(black_box(&claims)).expect("signs")));
    group.bench_function("verify", |b| b.iter(|| keys.verify(black_box(&token), now).expect("verifies")));
    group.finish();
}

/// The same with the default algorithm since version 2: EdDSA (Ed25519).
fn tokens_eddsa(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let (private_key, _) = portcullis::auth::keys::files::generate(dir.path(), "bench").expect("key pair");
    let key = portcullis::auth::keys::files::EdKeyConfig {
        kid: "bench".into(),
        private_key: Some(private_key),
        public_key: None,
    };
    let config = AuthConfig { eddsa_keys: vec![key], ..AuthConfig::default() };
    let keys = portcullis::auth::keys::files::token_keys(&config).expect("EdDSA keys");
    let now = Clock::new().now();
    let claims = claims(now, &config);
    let token = keys.sign(&claims).expect("signs");

    let mut group = c.benchmark_group("tokens_eddsa");
    group.bench_function("sign", |b| b.iter(|| keys.sign(black_box(&claims)).expect("signs")));
    group.bench_function("verify", |b| b.iter(|| keys.verify(black_box(&token), now).expect("verifies")));
    // What the guard does: a token presented again is not verified again.
    let ring =
        portcullis::auth::keys::ring::KeyRing::new(portcullis::auth::keys::files::token_keys(&config).expect("keys"));
    group.bench_function("verify_again_through_the_key_ring", |b| {
        b.iter(|| ring.verify(black_box(&token), now).expect("verifies"))
    });
    group.finish();
}

fn guard(c: &mut Criterion) {
    let config = AuthConfig::default();
    let keys = TokenKeys::hs256(SECRET, &config);
    let clock = Clock::new();
    let now = clock.now();
    let token = keys.sign(&claims(now, &config)).expect("signs");
    let revoked = RevokedSessions::new();
    for _ in 0..REVOKED {
        revoked.insert(Id::new(), now + 900);
    }
    let ended = Id::new();
    revoked.insert(ended, now + 900);

    let mut group = c.benchmark_group("guard");
    // What `guards::User` does per request: verify at the clock's now, then the ended-session check.
    group.bench_function(format!("verify_and_check_{REVOKED}_ended"), |b| {
        b.iter(|| {
            let claims = keys.verify(black_box(&token), clock.now()).expect("verifies");
            assert!(!revoked.contains(&claims.sid.expect("a session")));
            claims
        })
    });
    group.bench_function("ended_session_check", |b| b.iter(|| revoked.contains(black_box(&ended))));
    group.finish();
}

fn refresh_tokens(c: &mut Criterion) {
    let presented = OpaqueToken::generate().into_plaintext();
    let mut group = c.benchmark_group("refresh_token");
    group.bench_function("generate_and_hash", |b| b.iter(OpaqueToken::generate));
    group.bench_function("hash_presented", |b| b.iter(|| hash_token(black_box(&presented))));
    group.finish();
}

fn argon2(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    let config = AuthConfig::default();
    let cores = config.hash_permits();
    let pool = runtime.block_on(PasswordHasherPool::new(&config)).expect("hasher pool");
    let stored = runtime.block_on(pool.hash(PASSWORD)).expect("hashes");

    let mut group = c.benchmark_group("argon2");
    // Flat sampling and 20 samples: the fastest sample stays a usable estimate on a machine that
    // other processes share (bench/run takes the fastest, criterion prints the mean).
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    // One hash at a time: the `cores ÷ hash time` login limit of bench/run divides by this.
    group.bench_function("hash_default", |b| {
        b.iter(|| runtime.block_on(pool.hash(black_box(PASSWORD))).expect("hashes"))
    });
    // The common-password check every new password passes before it is hashed: a hit and a miss.
    portcullis::auth::common_passwords::is_common("warm the list up");
    group.bench_function("common_password_check_hit", |b| {
        b.iter(|| portcullis::auth::common_passwords::is_common(black_box("Password1")))
    });
    group.bench_function("common_password_check_miss", |b| {
        b.iter(|| portcullis::auth::common_passwords::is_common(black_box(PASSWORD)))
    });
    group.bench_function("verify_default", |b| {
        b.iter(|| runtime.block_on(pool.verify(black_box(PASSWORD), Some(&stored))))
    });
    // One hash per core at once, through the pool's permits: the throughput logins can reach.
    group.throughput(Throughput::Elements(cores as u64));
    group.bench_function(format!("pool_x{cores}"), |b| {
        b.iter(|| {
            runtime.block_on(async {
                let hashes = (0..cores).map(|_| pool.hash(PASSWORD));
                for hash in futures::future::join_all(hashes).await {
                    hash.expect("hashes");
                }
            })
        })
    });
    group.finish();
}

/// The database read of `GET /users/me` on SQLite (account and roles, one query), through the
/// service's store on its inline connection, next to the same query on diesel's synchronous
/// connection (the floor without the async wrapper) and a one-column key lookup (the floor of
/// any read transaction: WAL locks and one index probe).
fn sqlite_read(c: &mut Criterion) {
    use diesel::prelude::*;
    use diesel_async::AsyncConnection;
    use portcullis::db::schema::{user_roles, users};
    use portcullis::db::SqliteConn;
    use portcullis::models::{NewUser, User, UserStore};

    let runtime = rocket::tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bench.db").to_string_lossy().into_owned();
    runtime.block_on(portcullis::db::run_migrations(&path)).expect("migrations");
    let id = Id::new();
    let mut conn = runtime.block_on(async {
        let mut conn = SqliteConn::establish(&path).await.expect("connects");
        diesel_async::SimpleAsyncConnection::batch_execute(&mut conn, portcullis::db::SQLITE_PRAGMAS).await.unwrap();
        let user = NewUser {
            id,
            email: "bench@example.com",
            password_hash: "x",
            disabled: false,
            created_at: 0,
            updated_at: 0,
            email_verified: true,
        };
        conn.insert_user(&user, &["user".to_string(), "admin".to_string()]).await.expect("inserts");
        conn
    });
    let mut sync = diesel::SqliteConnection::establish(&path).expect("connects");
    diesel::connection::SimpleConnection::batch_execute(&mut sync, portcullis::db::SQLITE_PRAGMAS).unwrap();

    let mut group = c.benchmark_group("sqlite");
    group.bench_function("me_read_service", |b| {
        b.iter(|| runtime.block_on(conn.find_user_with_roles(black_box(id))).unwrap().expect("found"))
    });
    group.bench_function("me_read_diesel_sync", |b| {
        b.iter(|| {
            let rows: Vec<(User, Option<String>)> = users::table
                .left_join(user_roles::table)
                .filter(users::id.eq(black_box(id)))
                .select((User::as_select(), user_roles::role_name.nullable()))
                .order(user_roles::role_name)
                .load(&mut sync)
                .unwrap();
            rows
        })
    });
    group.bench_function("key_lookup_diesel_sync", |b| {
        b.iter(|| users::table.find(black_box(id)).select(users::id).get_result::<Id>(&mut sync).unwrap())
    });
    group.finish();
}

criterion_group!(benches, tokens, tokens_eddsa, guard, refresh_tokens, argon2, sqlite_read);
criterion_main!(benches);
