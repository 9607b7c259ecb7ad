//! PostgreSQL's exchange in one round trip: a data-modifying CTE moves the session to its next
//! generation and returns it with the user's role names, without `BEGIN`/`COMMIT` (one
//! statement is atomic). It applies only to the plain case — the presented generation is the
//! current one, the session lives, the account is enabled — and matches no row otherwise; the
//! caller then runs the general exchange in a transaction, which sees what this wrote. The row
//! lock decides concurrent exchanges as in [`SessionStore::advance_session`](super::SessionStore).
//! SQLite has no data-modifying CTEs and no network round trips to save.

use diesel::sql_types::{BigInt, Nullable, Text};
use diesel::QueryableByName;
use diesel_async::RunQueryDsl;

use super::user::fold_roles;
use super::{PgConn, Session};
use crate::clock::UnixMillis;
use crate::db::{DbUuid, Id, StatementCache};

#[derive(QueryableByName)]
struct MovedRow {
    #[diesel(embed)]
    session: Session,
    #[diesel(sql_type = Nullable<Text>)]
    role_name: Option<String>,
}

/// The exchange of generation `from` of session `id`, when it belongs to client `bound`, at
/// `now_ms` (`grace_ms` in milliseconds), or `None` when it is not the plain case (the caller
/// falls back to the transaction, which also decides whether another client may exchange it).
pub async fn advance_in_one_statement(
    conn: &mut PgConn,
    (id, from, bound): (Id, i64, &str),
    (now_ms, grace_ms): (UnixMillis, i64),
    refresh_ttl: i64,
) -> diesel::QueryResult<Option<(Session, Vec<String>)>> {
    // The run-of-quick-exchanges columns follow `judge` in auth::rotation.
    const SQL: &str = "WITH moved AS ( \
        UPDATE sessions s SET \
            generation = s.generation + 1, \
            rotated_at = $6, \
            burst_generation = CASE WHEN s.rotated_at IS NOT NULL AND s.burst_at IS NOT NULL \
                AND $6 - s.rotated_at <= $4 THEN s.burst_generation ELSE s.generation END, \
            burst_at = CASE WHEN s.rotated_at IS NOT NULL AND s.burst_at IS NOT NULL \
                AND $6 - s.rotated_at <= $4 THEN s.burst_at ELSE $6 END, \
            last_used_at = GREATEST(s.last_used_at, $2) \
        FROM users u \
        WHERE s.id = $1 AND s.generation = $3 AND s.ended_at IS NULL AND s.expires_at > $2 \
            AND s.last_used_at > $2 - $5 AND s.client_id = $7 AND u.id = s.user_id AND NOT u.disabled \
        RETURNING s.* ) \
        SELECT moved.*, ur.role_name FROM moved \
        LEFT JOIN user_roles ur ON ur.user_id = moved.user_id ORDER BY ur.role_name";
    // Prepared once per connection (a raw query is otherwise parsed and planned every time).
    let query = diesel::sql_query(SQL)
        .bind::<DbUuid, _>(id)
        .bind::<BigInt, _>(now_ms.seconds().0)
        .bind::<BigInt, _>(from)
        .bind::<BigInt, _>(grace_ms)
        .bind::<BigInt, _>(refresh_ttl)
        .bind::<BigInt, _>(now_ms.0)
        .bind::<Text, _>(bound);
    let rows: Vec<MovedRow> = StatementCache(query).load(conn).await?;
    Ok(fold_roles(rows.into_iter().map(|row| (row.session, row.role_name))))
}
