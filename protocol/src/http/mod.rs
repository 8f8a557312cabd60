//! JSON bodies of the HTTP routes (`/api/...`), one module per route family.
//!
//! Every JSON error of these routes has one shape, [`ApiError`]; the SSE routes keep their own
//! (see [`crate::sse`]).

pub mod error;
pub mod health;

pub use error::*;
pub use health::*;

use crate::catalog::{CatalogVisitor, Entry, Examples, Surface};

/// Walks the HTTP bodies of the catalog; each route family adds its own lines here.
pub(crate) fn visit_catalog<V: CatalogVisitor>(visitor: &mut V) {
    let http = |usage| Entry {
        surface: Surface::Http,
        examples: Examples::One,
        usage,
    };
    visitor.visit::<ApiError>(http("every /api route (error body)"));
    visitor.visit::<HealthResponse>(http("GET /api/health, GET /api/ready (200 body)"));
}
