//! The SSE transport's settings: the `sse` object of the variables file.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use signalbox_protocol::limits;

use super::{ConfigError, RateLimit};

/// `sse` in `data/variables.json`. Every key is optional; defaults come from
/// `signalbox_protocol::limits`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct SseSettings {
    /// Interval between `: keepalive` comments on a stream, in milliseconds.
    pub keepalive_interval_ms: u64,
    /// A session with no stream and no request for this long is pruned, in milliseconds.
    pub session_idle_timeout_ms: u64,
    /// How often idle sessions are looked for, in milliseconds.
    pub prune_scan_interval_ms: u64,
    /// Sessions held at once in every room together (503 past it).
    pub max_sessions: usize,
    /// Sessions held at once in one room (503 past it).
    pub max_sessions_per_room: usize,
    /// Events buffered for one session; a stream this far behind is dropped (the session stays
    /// resumable), and a session without a stream keeps at most this many for its return.
    pub stream_buffer_events: usize,
    /// Largest `POST /api/signal` / `POST /api/leave` body, in bytes (413 past it).
    pub max_body_bytes: usize,
    /// Signals one session may send in a burst (429 past it).
    pub rate_limit_burst: u32,
    /// Signals added back to a session's bucket per second.
    pub rate_limit_refill_per_sec: u32,
}

impl Default for SseSettings {
    fn default() -> Self {
        Self {
            keepalive_interval_ms: limits::SSE_KEEPALIVE_INTERVAL_MS,
            session_idle_timeout_ms: limits::SSE_SESSION_IDLE_TIMEOUT_MS,
            prune_scan_interval_ms: limits::SSE_PRUNE_SCAN_INTERVAL_MS,
            max_sessions: limits::SSE_MAX_SESSIONS,
            max_sessions_per_room: limits::SSE_MAX_SESSIONS_PER_ROOM,
            stream_buffer_events: limits::SSE_STREAM_BUFFER_EVENTS,
            max_body_bytes: limits::SSE_MAX_BODY_BYTES,
            rate_limit_burst: limits::RATE_LIMIT_BURST,
            rate_limit_refill_per_sec: limits::RATE_LIMIT_REFILL_PER_SEC,
        }
    }
}

impl SseSettings {
    /// The token bucket of one session.
    pub fn rate_limit(&self) -> RateLimit {
        RateLimit {
            burst: self.rate_limit_burst,
            refill_per_sec: self.rate_limit_refill_per_sec,
        }
    }

    /// Every value must be positive; the error names the key (`sse.NAME`).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let values: [(&str, u64); 9] = [
            ("keepaliveIntervalMs", self.keepalive_interval_ms),
            ("sessionIdleTimeoutMs", self.session_idle_timeout_ms),
            ("pruneScanIntervalMs", self.prune_scan_interval_ms),
            ("maxSessions", self.max_sessions as u64),
            ("maxSessionsPerRoom", self.max_sessions_per_room as u64),
            ("streamBufferEvents", self.stream_buffer_events as u64),
            ("maxBodyBytes", self.max_body_bytes as u64),
            ("rateLimitBurst", u64::from(self.rate_limit_burst)),
            (
                "rateLimitRefillPerSec",
                u64::from(self.rate_limit_refill_per_sec),
            ),
        ];
        for (key, value) in values {
            if value == 0 {
                return Err(ConfigError::Invalid {
                    key: format!("sse.{key}"),
                    message: "must be greater than 0".into(),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_protocol_limits_and_zero_is_refused() {
        let settings = SseSettings::default();
        assert_eq!(settings.keepalive_interval_ms, 10_000);
        assert_eq!(settings.rate_limit(), RateLimit::default());
        assert!(settings.validate().is_ok());
        let zero = SseSettings {
            max_sessions: 0,
            ..SseSettings::default()
        };
        let err = zero.validate().expect_err("zero is refused");
        assert!(err.to_string().contains("sse.maxSessions"), "{err}");
    }
}
