//! Pagination of list routes: `?limit=&cursor=` (and `q` where a route searches) in, `nextCursor`
//! out. The query parameters are documented in the OpenAPI document; these are their bounds.

/// Largest `limit` a list route accepts; larger values are clamped to it.
pub const MAX_PAGE_LIMIT: u32 = 100;

/// Items per page when `limit` is absent.
pub const DEFAULT_PAGE_LIMIT: u32 = 50;
