//! Realtime transports (WebSocket, SSE) and what they share. Each transport owns its socket or
//! stream and hands envelopes to the hub; none of them routes, persists or authorizes by itself.

pub mod rate_limit;
pub mod sse;
