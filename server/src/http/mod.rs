//! What every REST route shares: the one error type ([`ApiFailure`], sent as
//! `protocol::http::ApiError`), body reading with a size cap, JSON parsing that names the bad
//! field, percent-decoding of path segments, and the `Idempotency-Key` store.
//!
//! Never knows a route's business (see [`crate::routes`]) and never puts a secret in an error
//! message.

pub mod address_limits;
mod body;
pub mod embedded;
mod error;
pub mod idempotency;

pub use body::{parse_json, percent_decode, read_capped};
pub use error::ApiFailure;
