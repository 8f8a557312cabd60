//! The realtime transports and what they share.
//!
//! [`websocket`] serves the Toju envelopes over WebSocket; [`rate_limit`] (token buckets),
//! [`connection_gate`] (connection caps) and [`metrics`] (transport counters) are shared with
//! the SSE transport. Transports own sockets and streams; routing is the hub's
//! ([`crate::hub`]) and envelope semantics the handlers' ([`crate::handlers`]).

pub mod connection_gate;
pub mod metrics;
pub mod rate_limit;
pub mod sse;
pub mod websocket;
