//! The `realtime` section of the variables file: limits and timings of the WebSocket transport
//! and the hub. Every default is a constant of `signalbox_protocol::limits` (or of this module),
//! so the docs, the tests and the server read the same number. The hub turns these settings into
//! its own `HubConfig` (`crate::hub::HubConfig::from_settings`); this module never imports it.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use signalbox_protocol::limits;

use super::{ConfigError, RateLimit};

/// Default cap on open realtime connections.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 10_000;
/// Default cap on open realtime connections from one IP address.
pub const DEFAULT_MAX_CONNECTIONS_PER_IP: u32 = 64;
/// Default time a socket write may take before the connection is dropped, in milliseconds.
pub const DEFAULT_WRITE_TIMEOUT_MS: u64 = 10_000;

/// Default cap on the bytes queued for one connection, summed over its frames (8 MiB).
///
/// Frames are shared between recipients, so this overstates real memory for broadcasts; it
/// bounds the worst case of one client that stops reading while large frames are addressed to
/// it alone (a direct-message sync, say).
pub const DEFAULT_MAX_QUEUED_BYTES: usize = 8 * 1024 * 1024;

/// Whether forwarded envelopes require a shared server. Spelled `shared-server` / `open` in the
/// variables file (`realtime.forwarding`).
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum ForwardingPolicy {
    /// Sender and target must both have joined a shared server (viewing does not count; own
    /// devices always allowed).
    #[default]
    SharedServer,
    /// Forward to any online user (Toju's behaviour; operator setting `forwarding: open`).
    Open,
}

/// Longest timing accepted, in milliseconds (one day): larger values would overflow deadlines.
pub const MAX_TIMING_MS: u64 = 86_400_000;

/// Limits and timings of the WebSocket transport and the hub. Defaults are the protocol's
/// (`schemas/constants.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Realtime {
    /// Largest WebSocket frame accepted; larger ones close the socket with 1009.
    pub max_frame_bytes: usize,
    /// Interval between server pings, in milliseconds.
    pub heartbeat_interval_ms: u64,
    /// A socket silent for this long is closed with 4002, in milliseconds.
    pub heartbeat_timeout_ms: u64,
    /// Envelopes one connection may send in a burst.
    pub rate_limit_burst: u32,
    /// Envelopes added to a connection's allowance per second.
    pub rate_limit_refill_per_sec: u32,
    /// Rate-limited envelopes in a row before the socket is closed with 1008.
    pub rate_limit_strikes_before_close: u32,
    /// Frames queued for one connection before it is closed with 4008.
    pub outbound_queue_envelopes: usize,
    /// Bytes queued for one connection before it is closed with 4008.
    pub outbound_queue_bytes: usize,
    /// How long one socket write may take before the connection is dropped, in milliseconds.
    pub write_timeout_ms: u64,
    /// Open realtime connections, in total.
    pub max_connections: u32,
    /// Open realtime connections from one IP address.
    pub max_connections_per_ip: u32,
    /// Who a forwarded envelope (`offer`, `direct-message`, ...) may reach: `shared-server` (a
    /// user who, like the sender, has joined a shared server; viewing does not count; own
    /// devices always) or `open` (any online user, Toju's behaviour).
    pub forwarding: ForwardingPolicy,
}

impl Default for Realtime {
    fn default() -> Self {
        Self {
            max_frame_bytes: limits::MAX_FRAME_BYTES,
            heartbeat_interval_ms: limits::HEARTBEAT_INTERVAL_MS,
            heartbeat_timeout_ms: limits::HEARTBEAT_TIMEOUT_MS,
            rate_limit_burst: limits::RATE_LIMIT_BURST,
            rate_limit_refill_per_sec: limits::RATE_LIMIT_REFILL_PER_SEC,
            rate_limit_strikes_before_close: limits::RATE_LIMIT_STRIKES_BEFORE_CLOSE,
            outbound_queue_envelopes: limits::OUTBOUND_QUEUE_ENVELOPES,
            outbound_queue_bytes: DEFAULT_MAX_QUEUED_BYTES,
            write_timeout_ms: DEFAULT_WRITE_TIMEOUT_MS,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_ip: DEFAULT_MAX_CONNECTIONS_PER_IP,
            forwarding: ForwardingPolicy::SharedServer,
        }
    }
}

impl Realtime {
    /// Refuses zeros (a zero limit would refuse everything or nothing) and a timeout shorter than
    /// the ping interval (every connection would time out between two pings).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, message: &str| {
            Err(ConfigError::Invalid {
                key: format!("realtime.{key}"),
                message: message.into(),
            })
        };
        for (key, value) in [
            ("maxFrameBytes", self.max_frame_bytes as u64),
            ("heartbeatIntervalMs", self.heartbeat_interval_ms),
            ("heartbeatTimeoutMs", self.heartbeat_timeout_ms),
            ("rateLimitBurst", u64::from(self.rate_limit_burst)),
            (
                "rateLimitRefillPerSec",
                u64::from(self.rate_limit_refill_per_sec),
            ),
            (
                "rateLimitStrikesBeforeClose",
                u64::from(self.rate_limit_strikes_before_close),
            ),
            (
                "outboundQueueEnvelopes",
                self.outbound_queue_envelopes as u64,
            ),
            ("outboundQueueBytes", self.outbound_queue_bytes as u64),
            ("writeTimeoutMs", self.write_timeout_ms),
            ("maxConnections", u64::from(self.max_connections)),
            (
                "maxConnectionsPerIp",
                u64::from(self.max_connections_per_ip),
            ),
        ] {
            if value == 0 {
                return invalid(key, "must be greater than 0");
            }
        }
        for (key, value) in [
            ("heartbeatIntervalMs", self.heartbeat_interval_ms),
            ("heartbeatTimeoutMs", self.heartbeat_timeout_ms),
            ("writeTimeoutMs", self.write_timeout_ms),
        ] {
            if value > MAX_TIMING_MS {
                return invalid(key, "must be at most 86400000 (one day)");
            }
        }
        if self.heartbeat_timeout_ms <= self.heartbeat_interval_ms {
            return invalid(
                "heartbeatTimeoutMs",
                "must be longer than realtime.heartbeatIntervalMs",
            );
        }
        Ok(())
    }

    /// One connection's token bucket.
    pub fn rate_limit(&self) -> RateLimit {
        RateLimit {
            burst: self.rate_limit_burst,
            refill_per_sec: self.rate_limit_refill_per_sec,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_come_from_the_protocol_limits() {
        let realtime = Realtime::default();
        realtime.validate().expect("valid");
        assert_eq!(realtime.max_frame_bytes, limits::MAX_FRAME_BYTES);
        assert_eq!(realtime.rate_limit(), RateLimit::default());
    }

    #[test]
    fn a_timeout_not_longer_than_the_interval_is_refused() {
        let realtime = Realtime {
            heartbeat_interval_ms: 1_000,
            heartbeat_timeout_ms: 1_000,
            ..Realtime::default()
        };
        let err = realtime.validate().expect_err("refused");
        assert!(
            err.to_string().contains("realtime.heartbeatTimeoutMs"),
            "{err}"
        );
    }

    #[test]
    fn zero_refill_and_huge_timings_are_refused() {
        let no_refill = Realtime {
            rate_limit_refill_per_sec: 0,
            ..Realtime::default()
        };
        let err = no_refill.validate().expect_err("refused");
        assert!(err.to_string().contains("rateLimitRefillPerSec"), "{err}");
        let forever = Realtime {
            write_timeout_ms: u64::MAX,
            ..Realtime::default()
        };
        let err = forever.validate().expect_err("refused");
        assert!(err.to_string().contains("writeTimeoutMs"), "{err}");
    }

    #[test]
    fn forwarding_spellings() {
        let open: ForwardingPolicy = serde_json::from_str("\"open\"").expect("parses");
        assert_eq!(open, ForwardingPolicy::Open);
        let shared: ForwardingPolicy = serde_json::from_str("\"shared-server\"").expect("parses");
        assert_eq!(shared, ForwardingPolicy::SharedServer);
    }
}
