//! [`StatementCache`]: keeps diesel's UPDATEs and INSERTs in the prepared-statement cache.
//!
//! diesel prepares every UPDATE, and every INSERT of a struct with optional fields, afresh on
//! each call, because their SQL text can depend on the values (a `None` field may be skipped or
//! sent as `DEFAULT`). On the refresh path that meant parsing and planning three statements per
//! exchange, on both backends. Wrapped in [`StatementCache`], a statement is cached under its SQL text (no
//! static query id), so every distinct text gets its own prepared statement and reuse is always
//! correct. Only wrap statements with a small, fixed set of possible texts: never `IN (...)` over
//! a list of varying length.

use diesel::backend::Backend;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::QueryResult;

/// A statement cached under its SQL text; see the module docs.
#[derive(Debug, Clone, Copy)]
pub struct StatementCache<Q>(pub Q);

impl<Q> QueryId for StatementCache<Q> {
    type QueryId = ();
    // Keyed by the SQL text, never by the Rust type: the text may vary with the values.
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q: Query> Query for StatementCache<Q> {
    type SqlType = Q::SqlType;
}

impl<Q: QueryFragment<DB>, DB: Backend> QueryFragment<DB> for StatementCache<Q> {
    fn walk_ast<'b>(&'b self, pass: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        self.0.walk_ast(pass)
    }

    // A doc-hidden trait method of diesel 2.3 (public only under its "third-party backend"
    // feature), which both diesel-async connection types consult before caching.
    fn is_safe_to_cache_prepared(&self, _backend: &DB) -> QueryResult<bool> {
        Ok(true)
    }
}
