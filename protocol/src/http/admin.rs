//! `GET /admin/stats`: the operator dashboard's snapshot (the page at `/admin` polls it).
//!
//! Counters are totals since the server started (the page turns them into rates); gauges are
//! values now. Counts are JSON numbers (exact up to 2^53).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::ids::ServerId;

/// Body of `GET /admin/stats` (operator token, or loopback only when no operator is configured).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct AdminStats {
    /// Seconds since the server started.
    pub uptime_seconds: u32,
    /// Open realtime connections, by transport.
    pub connections: TransportConnections,
    /// Users with at least one identified connection.
    pub users_online: u32,
    /// The servers with the most joined connections, most first (at most ten).
    pub top_servers: Vec<ServerLoad>,
    /// Client envelopes received since start, by wire type (every type, zeros included).
    pub envelopes_in: Vec<NamedCount>,
    /// Server envelopes queued for a connection since start, by wire type (one per recipient).
    pub envelopes_out: Vec<NamedCount>,
    /// `error` envelopes sent since start, by error code (every code, zeros included).
    pub errors: Vec<NamedCount>,
    /// Connections the server closed since start, by close code (the code as a string).
    pub closes: Vec<NamedCount>,
    /// WebSocket upgrades refused since start, by reason (`server_full`, `ip_full`, `draining`).
    pub upgrades_refused: Vec<NamedCount>,
    /// Forward latency (frame read to delivery queued) since start.
    pub forward_latency: LatencySummary,
    /// The SSE transport.
    pub sse: SseSummary,
}

/// Open connections of each transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct TransportConnections {
    /// Open WebSocket connections.
    pub websocket: u32,
    /// SSE sessions with an open event stream.
    pub sse_streams: u32,
}

/// A server and its joined connections.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct ServerLoad {
    /// The server.
    pub server_id: ServerId,
    /// Connections that joined it.
    pub members: u32,
}

/// A count under a name (a wire type, an error code, a close code, a reason).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct NamedCount {
    /// What is counted.
    pub name: String,
    /// How many.
    #[ts(type = "number")]
    pub count: u64,
}

/// Percentiles of the forward latency histogram, as the upper bound of the bucket each falls
/// in, in microseconds; `null` when no forward was observed or the percentile lies above the
/// largest bucket (250 ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct LatencySummary {
    /// Forwards observed.
    #[ts(type = "number")]
    pub count: u64,
    /// Median.
    #[ts(type = "number | null")]
    pub p50_us: Option<u64>,
    /// 90th percentile.
    #[ts(type = "number | null")]
    pub p90_us: Option<u64>,
    /// 99th percentile.
    #[ts(type = "number | null")]
    pub p99_us: Option<u64>,
}

/// The SSE transport's sessions and counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct SseSummary {
    /// Sessions held now (with or without a stream).
    pub sessions: u32,
    /// Sessions created since start.
    #[ts(type = "number")]
    pub sessions_created: u64,
    /// Sessions resumed since start.
    #[ts(type = "number")]
    pub sessions_resumed: u64,
    /// Sessions pruned after the idle timeout since start.
    #[ts(type = "number")]
    pub sessions_pruned: u64,
    /// Streams dropped because the client stopped reading, since start.
    #[ts(type = "number")]
    pub streams_dropped_slow: u64,
}
