//! The `cluster` section of the variables file: standalone (one process, the default) or
//! several nodes sharing one Redis backplane (issue 13; docs/design/cluster-plan.md).
//!
//! Owns these settings, their defaults and bounds (the one source of truth: the backplane's
//! `crate::cluster::settings` re-exports them), and the refusal of `redis` mode on the
//! embedded SQLite directory (checked by `Variables::validate`, so `signalbox check-config`
//! refuses it too). Never prints the Redis URL (a [`Secret`]: it may carry a password), never
//! connects to anything.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use signalbox_protocol::Secret;

use super::ConfigError;

/// Default interval between two heartbeats of a node, in milliseconds.
pub const DEFAULT_HEARTBEAT_MS: u64 = 2_000;
/// Default time after its last heartbeat at which a node counts as dead, in milliseconds.
pub const DEFAULT_NODE_TTL_MS: u64 = 10_000;
/// Default prefix of every key and channel the backplane touches.
pub const DEFAULT_KEY_PREFIX: &str = "sb:";
/// Default bound of the publisher's queue (operations waiting for Redis).
pub const DEFAULT_PUBLISH_QUEUE: usize = 65_536;
/// Default time a node waits for the answer to a relayed SSE request, in milliseconds.
pub const DEFAULT_RELAY_TIMEOUT_MS: u64 = 2_000;
/// Default bound of relayed SSE requests awaiting an answer on one node.
pub const DEFAULT_MAX_PENDING_RELAYS: usize = 4_096;
/// Default bound of one connection's cross-node forwards awaiting Redis's receipt: one
/// publisher pipeline (`MAX_BATCH`, 64). A sender at 1,000 forwards/s with a 20 ms receipt has
/// 20 unresolved, so an ordinary client never meets it; a flooding one waits (backpressure)
/// while holding at most 64 small completions (the frames are in the publish queue already).
pub const DEFAULT_MAX_PENDING_FORWARDS_PER_CONNECTION: usize = 64;
/// Largest per-connection bound of unresolved cross-node forwards accepted.
pub const MAX_PENDING_FORWARDS_PER_CONNECTION: usize = 65_536;
/// Longest node id accepted (it is part of key and channel names).
pub const MAX_NODE_ID_LEN: usize = 64;
/// Longest key prefix accepted.
pub const MAX_KEY_PREFIX_LEN: usize = 32;
/// The node TTL must cover at least this many heartbeats (one lost heartbeat is no death).
pub const MIN_HEARTBEATS_PER_TTL: u64 = 3;
/// Largest publish queue and pending-relay bound accepted.
pub const MAX_QUEUE_BOUND: usize = 1 << 20;
/// Longest heartbeat interval, node TTL and relay timeout accepted, in milliseconds.
pub const MAX_INTERVAL_MS: u64 = 600_000;

/// How this process relates to other signalbox processes.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum ClusterMode {
    /// One process: the in-process hub alone, no Redis client.
    #[default]
    Standalone,
    /// One node of several on one Redis (`cluster.redisUrl`) and one PostgreSQL directory.
    Redis,
}

/// Cluster mode and the backplane's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// `standalone` (default) or `redis`; `redis` needs `directory.backend` `postgres`.
    /// Chat, forwards, rosters, status and SSE cross nodes; what each outage does, and the
    /// limits of this mode, are in docs/cluster.md.
    /// Environment: `SIGNALBOX_CLUSTER_MODE`.
    pub mode: ClusterMode,
    /// This node's id, unique in the cluster: 1 to 64 characters of `[A-Za-z0-9._-]`; `null`
    /// picks `<hostname>-<8 hex digits>` at each start. Environment: `SIGNALBOX_NODE_ID`.
    pub node_id: Option<String>,
    /// The Redis URL (`redis://[:password@]host:port[/db]`), required in `redis` mode.
    /// Environment: `SIGNALBOX_REDIS_URL`.
    pub redis_url: Option<Secret>,
    /// Interval between two heartbeats of this node, in milliseconds (1 to 600000).
    pub heartbeat_ms: u64,
    /// A node silent this long is dead: the others remove its users from every roster, in
    /// milliseconds (at least 3 heartbeats, at most 600000).
    pub node_ttl_ms: u64,
    /// Prefix of every Redis key and channel (at most 32 bytes, no whitespace); nodes of one
    /// cluster share it. Environment: `SIGNALBOX_CLUSTER_KEY_PREFIX`.
    pub key_prefix: String,
    /// Operations waiting for Redis at most (1 to 1048576); one more answers `UNAVAILABLE`.
    pub publish_queue: usize,
    /// How long a relayed SSE request waits for the node holding the stream, in milliseconds
    /// (1 to 600000); no answer by then is `503`. Also how long a cross-node forward whose
    /// target is not on this node waits for Redis's receipt before `UNAVAILABLE`.
    pub relay_timeout_ms: u64,
    /// Relayed SSE requests awaiting an answer on this node at most (1 to 1048576).
    pub max_pending_relays: usize,
    /// Cross-node forwards of one WebSocket connection awaiting Redis's receipt at most (1 to
    /// 65536). The connection goes on reading while they are pending (a refusal arrives when
    /// the receipt does); at the bound it waits for one to resolve (backpressure), never drops.
    pub max_pending_forwards_per_connection: usize,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            mode: ClusterMode::Standalone,
            node_id: None,
            redis_url: None,
            heartbeat_ms: DEFAULT_HEARTBEAT_MS,
            node_ttl_ms: DEFAULT_NODE_TTL_MS,
            key_prefix: DEFAULT_KEY_PREFIX.to_owned(),
            publish_queue: DEFAULT_PUBLISH_QUEUE,
            relay_timeout_ms: DEFAULT_RELAY_TIMEOUT_MS,
            max_pending_relays: DEFAULT_MAX_PENDING_RELAYS,
            max_pending_forwards_per_connection: DEFAULT_MAX_PENDING_FORWARDS_PER_CONNECTION,
        }
    }
}

/// Whether `id` may be a node id (it becomes part of Redis key and channel names).
pub fn is_valid_node_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_NODE_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Whether `prefix` may prefix Redis key and channel names.
pub fn is_valid_key_prefix(prefix: &str) -> bool {
    prefix.len() <= MAX_KEY_PREFIX_LEN
        && !prefix
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
}

impl ClusterConfig {
    /// Checks every bound and that `redis` mode has a URL; the error names the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, message: String| {
            Err(ConfigError::Invalid {
                key: format!("cluster.{key}"),
                message,
            })
        };
        if let Some(id) = &self.node_id
            && !is_valid_node_id(id)
        {
            return invalid(
                "nodeId",
                format!("must be 1 to {MAX_NODE_ID_LEN} characters of [A-Za-z0-9._-]"),
            );
        }
        if !is_valid_key_prefix(&self.key_prefix) {
            return invalid(
                "keyPrefix",
                format!("must be at most {MAX_KEY_PREFIX_LEN} bytes without whitespace"),
            );
        }
        for (key, value) in [
            ("heartbeatMs", self.heartbeat_ms),
            ("nodeTtlMs", self.node_ttl_ms),
            ("relayTimeoutMs", self.relay_timeout_ms),
        ] {
            if !(1..=MAX_INTERVAL_MS).contains(&value) {
                return invalid(key, format!("must be 1 to {MAX_INTERVAL_MS}"));
            }
        }
        if self.node_ttl_ms < self.heartbeat_ms.saturating_mul(MIN_HEARTBEATS_PER_TTL) {
            return invalid(
                "nodeTtlMs",
                format!("must be at least {MIN_HEARTBEATS_PER_TTL} x cluster.heartbeatMs"),
            );
        }
        for (key, value) in [
            ("publishQueue", self.publish_queue),
            ("maxPendingRelays", self.max_pending_relays),
        ] {
            if !(1..=MAX_QUEUE_BOUND).contains(&value) {
                return invalid(key, format!("must be 1 to {MAX_QUEUE_BOUND}"));
            }
        }
        if !(1..=MAX_PENDING_FORWARDS_PER_CONNECTION)
            .contains(&self.max_pending_forwards_per_connection)
        {
            return invalid(
                "maxPendingForwardsPerConnection",
                format!("must be 1 to {MAX_PENDING_FORWARDS_PER_CONNECTION}"),
            );
        }
        if self.mode == ClusterMode::Redis
            && self
                .redis_url
                .as_ref()
                .is_none_or(|url| url.expose().trim().is_empty())
        {
            return invalid("redisUrl", "is required with cluster.mode \"redis\"".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redis() -> ClusterConfig {
        ClusterConfig {
            mode: ClusterMode::Redis,
            redis_url: Some(Secret::new("redis://:hunter2@127.0.0.1:6379")),
            ..ClusterConfig::default()
        }
    }

    #[test]
    fn defaults_are_standalone_and_valid() {
        let config = ClusterConfig::default();
        assert_eq!(config.mode, ClusterMode::Standalone);
        assert!(config.validate().is_ok());
        assert!(redis().validate().is_ok());
    }

    #[test]
    fn redis_mode_needs_a_url() {
        let config = ClusterConfig {
            redis_url: None,
            ..redis()
        };
        let err = config.validate().expect_err("no url");
        assert!(err.to_string().contains("cluster.redisUrl"), "{err}");
    }

    #[test]
    fn each_bound_is_named() {
        let cases: [(&str, ClusterConfig); 7] = [
            (
                "cluster.maxPendingForwardsPerConnection",
                ClusterConfig {
                    max_pending_forwards_per_connection: 0,
                    ..redis()
                },
            ),
            (
                "cluster.nodeId",
                ClusterConfig {
                    node_id: Some("a:b".into()),
                    ..redis()
                },
            ),
            (
                "cluster.keyPrefix",
                ClusterConfig {
                    key_prefix: "a b".into(),
                    ..redis()
                },
            ),
            (
                "cluster.heartbeatMs",
                ClusterConfig {
                    heartbeat_ms: 0,
                    ..redis()
                },
            ),
            (
                "cluster.nodeTtlMs",
                ClusterConfig {
                    heartbeat_ms: 1_000,
                    node_ttl_ms: 2_999,
                    ..redis()
                },
            ),
            (
                "cluster.publishQueue",
                ClusterConfig {
                    publish_queue: 0,
                    ..redis()
                },
            ),
            (
                "cluster.maxPendingRelays",
                ClusterConfig {
                    max_pending_relays: MAX_QUEUE_BOUND + 1,
                    ..redis()
                },
            ),
        ];
        for (key, config) in cases {
            let err = config.validate().expect_err(key);
            assert!(err.to_string().contains(key), "{key}: {err}");
        }
    }

    #[test]
    fn parses_from_camel_case_and_never_prints_the_url() {
        let config: ClusterConfig = serde_json::from_str(
            r#"{"mode":"redis","nodeId":"n1","redisUrl":"redis://:hunter2@h:1","heartbeatMs":500,"nodeTtlMs":1500}"#,
        )
        .expect("parses");
        assert!(config.validate().is_ok());
        assert_eq!(config.node_id.as_deref(), Some("n1"));
        assert!(!format!("{config:?}").contains("hunter2"));
    }
}
