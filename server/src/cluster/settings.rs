//! The backplane's settings: who this node is, where Redis is, how often it heartbeats.
//!
//! Owns: [`ClusterSettings`], its documented defaults and its validation (every value a node
//! writes into Redis key names is bounded here).
//!
//! The defaults and bounds are the `cluster` section's (`crate::config::cluster`, re-exported
//! here); [`ClusterSettings::from_config`] resolves that section for one start (the node id).
//!
//! Never: reads files or the environment (`config` does), and never formats the Redis URL (it
//! may hold a password).

use signalbox_protocol::Secret;

use super::ClusterError;

use crate::config::cluster::{ClusterConfig, ClusterMode, is_valid_key_prefix, is_valid_node_id};
pub use crate::config::cluster::{
    DEFAULT_HEARTBEAT_MS, DEFAULT_KEY_PREFIX, DEFAULT_MAX_PENDING_RELAYS, DEFAULT_NODE_TTL_MS,
    DEFAULT_PUBLISH_QUEUE, DEFAULT_RELAY_TIMEOUT_MS, MAX_KEY_PREFIX_LEN, MAX_NODE_ID_LEN,
    MIN_HEARTBEATS_PER_TTL,
};

/// Settings of one node's Redis backplane.
#[derive(Clone)]
pub struct ClusterSettings {
    /// This node's id: `[A-Za-z0-9._-]`, 1 to [`MAX_NODE_ID_LEN`] bytes, unique in the cluster.
    pub node_id: String,
    /// `redis://host:port[/db]`; RESP3 is requested by the backplane itself.
    pub redis_url: Secret,
    /// Interval between heartbeats (default [`DEFAULT_HEARTBEAT_MS`]).
    pub heartbeat_ms: u64,
    /// A node whose last heartbeat is older than this is dead and reaped (default
    /// [`DEFAULT_NODE_TTL_MS`]; at least [`MIN_HEARTBEATS_PER_TTL`] heartbeats).
    pub node_ttl_ms: u64,
    /// Prefix of every key and channel (default [`DEFAULT_KEY_PREFIX`]).
    pub key_prefix: String,
    /// Bound of the publisher's queue (default [`DEFAULT_PUBLISH_QUEUE`]); a full queue answers
    /// [`ClusterError::QueueFull`] instead of growing.
    pub publish_queue: usize,
    /// How long a relayed SSE request waits for the owning node's answer (default
    /// [`DEFAULT_RELAY_TIMEOUT_MS`]); no answer by then is `503`.
    pub relay_timeout_ms: u64,
    /// Most relayed SSE requests awaiting an answer (default [`DEFAULT_MAX_PENDING_RELAYS`]);
    /// one more is refused at once instead of waiting.
    pub max_pending_relays: usize,
}

impl std::fmt::Debug for ClusterSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterSettings")
            .field("node_id", &self.node_id)
            .field("redis_url", &"<secret>")
            .field("heartbeat_ms", &self.heartbeat_ms)
            .field("node_ttl_ms", &self.node_ttl_ms)
            .field("key_prefix", &self.key_prefix)
            .field("publish_queue", &self.publish_queue)
            .field("relay_timeout_ms", &self.relay_timeout_ms)
            .field("max_pending_relays", &self.max_pending_relays)
            .finish()
    }
}

impl ClusterSettings {
    /// Settings with every default but the node id and the Redis URL.
    pub fn new(node_id: impl Into<String>, redis_url: Secret) -> Self {
        Self {
            node_id: node_id.into(),
            redis_url,
            heartbeat_ms: DEFAULT_HEARTBEAT_MS,
            node_ttl_ms: DEFAULT_NODE_TTL_MS,
            key_prefix: DEFAULT_KEY_PREFIX.to_owned(),
            publish_queue: DEFAULT_PUBLISH_QUEUE,
            relay_timeout_ms: DEFAULT_RELAY_TIMEOUT_MS,
            max_pending_relays: DEFAULT_MAX_PENDING_RELAYS,
        }
    }

    /// The backplane's settings of the `cluster` section, `None` in standalone mode (or without
    /// a URL, which validation refuses in redis mode). A `null` node id becomes
    /// [`generated_node_id`].
    pub fn from_config(config: &ClusterConfig) -> Option<Self> {
        if config.mode != ClusterMode::Redis {
            return None;
        }
        let node_id = config.node_id.clone().unwrap_or_else(generated_node_id);
        Some(Self {
            node_id,
            redis_url: config.redis_url.clone()?,
            heartbeat_ms: config.heartbeat_ms,
            node_ttl_ms: config.node_ttl_ms,
            key_prefix: config.key_prefix.clone(),
            publish_queue: config.publish_queue,
            relay_timeout_ms: config.relay_timeout_ms,
            max_pending_relays: config.max_pending_relays,
        })
    }

    /// Checks every bound; the message names the setting.
    pub fn validate(&self) -> Result<(), ClusterError> {
        let bad = |what: String| Err(ClusterError::Settings(what));
        if !is_valid_node_id(&self.node_id) {
            return bad(format!(
                "node id must be 1 to {MAX_NODE_ID_LEN} characters of [A-Za-z0-9._-]"
            ));
        }
        if !is_valid_key_prefix(&self.key_prefix) {
            return bad(format!(
                "key prefix must be at most {MAX_KEY_PREFIX_LEN} bytes without whitespace"
            ));
        }
        if self.heartbeat_ms == 0 {
            return bad("heartbeat interval must be positive".to_owned());
        }
        if self.node_ttl_ms < self.heartbeat_ms.saturating_mul(MIN_HEARTBEATS_PER_TTL) {
            return bad(format!(
                "node TTL must be at least {MIN_HEARTBEATS_PER_TTL} heartbeat intervals"
            ));
        }
        if self.publish_queue == 0 {
            return bad("publish queue bound must be positive".to_owned());
        }
        if self.relay_timeout_ms == 0 {
            return bad("relay timeout must be positive".to_owned());
        }
        if self.max_pending_relays == 0 {
            return bad("pending relay bound must be positive".to_owned());
        }
        Ok(())
    }
}

/// `<hostname>-<8 hex digits>`: the host name (from the kernel; `node` when unknown) kept to
/// node-id characters and cut so the whole stays within [`MAX_NODE_ID_LEN`].
pub fn generated_node_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let mut host: String = host
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        .take(MAX_NODE_ID_LEN - 9)
        .collect();
    if host.is_empty() {
        host.push_str("node");
    }
    format!("{host}-{:08x}", rand::random::<u32>())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(node: &str) -> ClusterSettings {
        ClusterSettings::new(node, Secret::new("redis://:hunter2@127.0.0.1:1"))
    }

    #[test]
    fn defaults_are_valid() {
        assert!(settings("node-1.a_b").validate().is_ok());
    }

    #[test]
    fn node_ids_that_would_bend_key_names_are_refused() {
        for bad in [
            "",
            "a b",
            "a:b",
            "a{b}",
            "é",
            &"x".repeat(MAX_NODE_ID_LEN + 1),
        ] {
            assert!(settings(bad).validate().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn ttl_shorter_than_three_heartbeats_is_refused() {
        let mut s = settings("n");
        s.heartbeat_ms = 1_000;
        s.node_ttl_ms = 2_999;
        assert!(s.validate().is_err());
        s.node_ttl_ms = 3_000;
        assert!(s.validate().is_ok());
    }

    #[test]
    fn zero_relay_bounds_are_refused() {
        let mut s = settings("n");
        s.relay_timeout_ms = 0;
        assert!(s.validate().is_err());
        let mut s = settings("n");
        s.max_pending_relays = 0;
        assert!(s.validate().is_err());
    }

    #[test]
    fn generated_ids_are_valid_and_differ_per_start() {
        let (a, b) = (generated_node_id(), generated_node_id());
        assert!(is_valid_node_id(&a), "{a}");
        assert_ne!(a, b);
    }

    #[test]
    fn from_config_is_none_in_standalone_and_resolves_the_node_id() {
        assert!(ClusterSettings::from_config(&ClusterConfig::default()).is_none());
        let config = ClusterConfig {
            mode: ClusterMode::Redis,
            redis_url: Some(Secret::new("redis://127.0.0.1:1")),
            ..ClusterConfig::default()
        };
        let settings = ClusterSettings::from_config(&config).expect("redis mode");
        assert!(settings.validate().is_ok());
        let named = ClusterSettings::from_config(&ClusterConfig {
            node_id: Some("n-7".into()),
            ..config
        })
        .expect("redis mode");
        assert_eq!(named.node_id, "n-7");
    }

    #[test]
    fn debug_never_shows_the_url() {
        assert!(!format!("{:?}", settings("n")).contains("hunter2"));
    }
}
