//! `GET /api/health` and `GET /api/ready`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// Whether the server is serving normally.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    /// Serving.
    Ok,
    /// Shutting down: finishing in-flight work, accepting nothing new.
    Draining,
    /// Serving, but a dependency other than the database is out (in cluster mode: Redis is
    /// unreachable, so only local delivery works); `reason` says which. `GET /api/ready`
    /// answers it with 200: the node stays in rotation for its local clients.
    Degraded,
}

/// Body of `GET /api/health` (and of `GET /api/ready` when ready).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct HealthResponse {
    /// Serving or draining.
    pub status: HealthStatus,
    /// The server's version.
    pub version: String,
    /// The protocol version it speaks.
    pub protocol_version: String,
    /// Seconds since the server started.
    pub uptime_seconds: u32,
    /// Open realtime connections (WebSocket and SSE streams).
    pub connections: u32,
    /// Why the status is `degraded` (absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub reason: Option<String>,
}
