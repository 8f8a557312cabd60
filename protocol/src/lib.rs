//! # signalbox-protocol
//!
//! Every message that crosses signalbox's wire, as Rust types: the WebSocket envelopes spoken by
//! the Toju chat client ([`ws`]), the Server-Sent-Events transport's events and bodies ([`sse`]),
//! and the JSON bodies of the HTTP routes ([`http`]). The server compiles against these types for
//! every byte it reads or writes, and `scripts/generate` derives the JSON Schema in `schemas/` and
//! the TypeScript in `bindings/typescript/` from them, so a wire change is a compile error on the
//! server and a diff in CI before it is a surprise in a client.
//!
//! This crate owns wire shapes, wire names, error and close codes, default limits and timings,
//! and the protocol version. It must never do I/O, hold state, or know how a message is routed:
//! that is the server's business.
//!
//! Wire conventions (kept from Toju on purpose, odd ones included):
//! - an envelope is one JSON object `{ "type": "...", ...fields }`, fields in camelCase;
//! - type names mix `snake_case` (`join_server`) and `kebab-case` (`direct-message`);
//! - the user identity field is spelled `oderId`;
//! - timestamps are milliseconds since the Unix epoch, as JSON numbers (never `bigint` in
//!   TypeScript);
//! - optional fields are omitted rather than sent as `null`, and a receiver accepts either.

pub mod catalog;
pub mod codes;
pub mod http;
pub mod ids;
pub mod json;
pub mod limits;
pub mod plain_str;
pub mod secret;
pub mod sse;
pub mod version;
pub mod ws;

pub use codes::{AccessDeniedReason, CloseCode, ErrorCode, UserStatus};
pub use ids::{ChannelId, ConnectionId, PluginId, RequestId, ServerId, TimestampMs, UserId};
pub use secret::Secret;
pub use version::{PROTOCOL_MAJOR, PROTOCOL_VERSION};
pub use ws::{ClientEnvelope, ServerEnvelope};
