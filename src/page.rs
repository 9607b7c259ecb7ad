//! `limit`/`offset` of the list endpoints (contract: default 50, at most 200), parsed once for
//! every list: `/admin/*` and the session lists.

use crate::error::{ApiError, ApiResult};

/// `limit`/`offset` of list endpoints: default 50, at most 200.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub limit: i64,
    pub offset: i64,
}

impl Page {
    pub const DEFAULT_LIMIT: i64 = 50;
    pub const MAX_LIMIT: i64 = 200;

    /// Parses the query values: `limit` is clamped to 0..=200 (default 50); a negative or
    /// non-numeric value is 422 naming the parameter.
    pub fn parse(limit: Option<&str>, offset: Option<&str>) -> ApiResult<Page> {
        fn number(name: &str, value: Option<&str>, default: i64) -> ApiResult<i64> {
            match value.map(str::trim).filter(|v| !v.is_empty()) {
                None => Ok(default),
                Some(v) => v
                    .parse::<i64>()
                    .ok()
                    .filter(|n| *n >= 0)
                    .ok_or_else(|| ApiError::invalid_field(format!("{name}: must be a whole number, at least 0"))),
            }
        }
        let limit = number("limit", limit, Self::DEFAULT_LIMIT)?;
        Ok(Page { limit: limit.min(Self::MAX_LIMIT), offset: number("offset", offset, 0)? })
    }
}
