//! The SQLite writer's group commit, driven directly from many tasks on a multi-threaded
//! runtime: bodies share batches, a failing body takes only its own writes back, and a write is
//! visible to other connections by the time `run` returns.

use std::sync::Arc;

use diesel::sql_types::BigInt;
use diesel::{Connection, QueryableByName, SqliteConnection};
use diesel_async::SimpleAsyncConnection;
use portcullis::db::{WriterLock, SQLITE_PRAGMAS};

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

fn count(path: &str, sql: &str) -> i64 {
    let mut conn = SqliteConnection::establish(path).expect("a reader");
    diesel::RunQueryDsl::get_result::<Count>(diesel::sql_query(sql), &mut conn).expect("count").n
}

const TASKS: i64 = 16;
const WRITES: i64 = 40;

#[test]
fn concurrent_write_transactions_commit_exactly_the_bodies_that_succeeded() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("writer.db").to_string_lossy().into_owned();
    {
        let mut conn = SqliteConnection::establish(&path).expect("setup");
        diesel::connection::SimpleConnection::batch_execute(
            &mut conn,
            &format!(
                "{SQLITE_PRAGMAS} CREATE TABLE rows (task INTEGER NOT NULL, i INTEGER NOT NULL, UNIQUE (task, i));"
            ),
        )
        .expect("schema");
    }
    let runtime = rocket::tokio::runtime::Builder::new_multi_thread().worker_threads(4).enable_all().build().unwrap();
    let writer = Arc::new(WriterLock::new(&path));
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let (writer, path) = (writer.clone(), path.clone());
            runtime.spawn(async move {
                for i in 0..WRITES {
                    let fail = i % 4 == 3;
                    let result = writer
                        .run(async |c| {
                            c.batch_execute(&format!("INSERT INTO rows VALUES ({task}, {i})")).await?;
                            // A duplicate within the same body: the statement fails, the body
                            // carries on, as a unique violation does in the service.
                            let duplicate = diesel_async::RunQueryDsl::execute(
                                diesel::sql_query(format!("INSERT INTO rows VALUES ({task}, {i})")),
                                c,
                            )
                            .await;
                            assert!(duplicate.is_err());
                            if fail {
                                return Err(diesel::result::Error::RollbackTransaction);
                            }
                            Ok(())
                        })
                        .await;
                    assert_eq!(result.is_err(), fail, "task {task} write {i}: {result:?}");
                    let sql = format!("SELECT COUNT(*) AS n FROM rows WHERE task = {task} AND i = {i}");
                    assert_eq!(count(&path, &sql), if fail { 0 } else { 1 }, "task {task} write {i} seen by a reader");
                    rocket::tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    runtime.block_on(async {
        for task in tasks {
            task.await.expect("task");
        }
    });
    let expected = TASKS * (WRITES - WRITES / 4);
    assert_eq!(count(&path, "SELECT COUNT(*) AS n FROM rows"), expected);
    assert_eq!(count(&path, "SELECT COUNT(*) AS n FROM rows WHERE i % 4 = 3"), 0);
}
