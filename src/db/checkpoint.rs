//! The SQLite backend's background checkpointer.
//!
//! In WAL mode every commit appends its pages to the `-wal` file, and a checkpoint copies them
//! back into the database file and `fsync`s it. By default SQLite checkpoints on the committing
//! connection: here the writer, on a worker thread, with every other writer queued behind it.
//! Instead a task runs a passive checkpoint on its own connection, in the blocking pool, every
//! [`CHECKPOINT_EVERY`] after commits; passive checkpoints wait for nobody.
//!
//! Passive checkpoints alone never let the WAL start over under continuous writes: SQLite
//! restarts it only at the beginning of a write transaction that finds every frame copied back,
//! and by then another commit has always landed. So once the WAL holds [`RESTART_AT`] frames,
//! the checkpointer takes the writer's turn, commits its open batch, finishes the checkpoint and
//! hands the turn back; the next transaction writes the WAL from its start again. Writers wait
//! for that one checkpoint, of pages mostly copied already.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use diesel::sql_types::BigInt;
use diesel::{Connection, QueryableByName, RunQueryDsl, SqliteConnection};

use super::sqlite::SQLITE_PRAGMAS;

/// How often the checkpointer looks for commits to copy back.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);
/// WAL frames (pages) after which the checkpointer makes the WAL start over: 16 MiB.
const RESTART_AT: i64 = 4096;

/// The row `PRAGMA wal_checkpoint` answers.
#[derive(QueryableByName)]
struct Progress {
    #[diesel(sql_type = BigInt)]
    log: i64,
}

/// Runs the checkpointer until the writer is gone (`dirty` dropped, or `writers_turn` answering
/// `None`). `writers_turn` waits for the writer's turn between two batches and holds it as long
/// as its output lives (the writer passes it in, so this module need not know the writer).
pub(super) fn spawn<F, Turn, Held>(path: Arc<str>, dirty: Weak<AtomicBool>, writers_turn: F)
where
    F: Fn() -> Option<Turn> + Send + 'static,
    Turn: Future<Output = Held> + Send,
    Held: Send,
{
    tokio::spawn(async move {
        let mut conn = None;
        let mut ticker = tokio::time::interval(CHECKPOINT_EVERY);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            match dirty.upgrade() {
                None => break,
                Some(dirty) if !dirty.swap(false, Ordering::Relaxed) => continue,
                Some(_) => {}
            }
            let log;
            (conn, log) = passive(conn, path.clone()).await;
            if log < RESTART_AT {
                continue;
            }
            let Some(turn) = writers_turn() else { break };
            let turn = turn.await;
            (conn, _) = passive(conn, path.clone()).await;
            drop(turn);
        }
    });
}

/// Copies what the WAL holds back into the database file now, on a connection of its own in the
/// blocking pool and without the writer's turn (writers go on meanwhile).
pub(super) async fn catch_up(path: Arc<str>) {
    let _ = passive(None, path).await;
}

/// One passive checkpoint in the blocking pool; returns the connection (none after a failure,
/// so the next round opens a new one) and the WAL's length in frames.
async fn passive(conn: Option<SqliteConnection>, path: Arc<str>) -> (Option<SqliteConnection>, i64) {
    match tokio::task::spawn_blocking(move || checkpoint(conn, &path)).await {
        Ok(Ok((conn, log))) => (Some(conn), log),
        Ok(Err(e)) => {
            rocket::warn!("sqlite checkpoint failed: {e}");
            (None, 0)
        }
        Err(_) => (None, 0),
    }
}

fn checkpoint(conn: Option<SqliteConnection>, path: &str) -> Result<(SqliteConnection, i64), String> {
    use diesel::connection::SimpleConnection;
    let mut conn = match conn {
        Some(conn) => conn,
        None => {
            let mut conn = SqliteConnection::establish(path).map_err(|e| e.to_string())?;
            conn.batch_execute(SQLITE_PRAGMAS).map_err(|e| e.to_string())?;
            conn
        }
    };
    let progress: Progress =
        diesel::sql_query("PRAGMA wal_checkpoint(PASSIVE)").get_result(&mut conn).map_err(|e| e.to_string())?;
    Ok((conn, progress.log))
}
