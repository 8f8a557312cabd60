//! The backplane's settings: who this node is, where Redis is, how often it heartbeats.
//!
//! Owns: [`ClusterSettings`], its documented defaults and its validation (every value a node
//! writes into Redis key names is bounded here).
//!
//! Never: reads files or the environment (the variables file takes these keys when cluster
//! mode is wired into `config`), and never formats the Redis URL (it may hold a password).

use signalbox_protocol::Secret;

use super::ClusterError;

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
/// Longest node id accepted (it is part of key and channel names).
pub const MAX_NODE_ID_LEN: usize = 64;
/// Longest key prefix accepted.
pub const MAX_KEY_PREFIX_LEN: usize = 32;
/// The node TTL must cover at least this many heartbeats (one lost heartbeat is no death).
pub const MIN_HEARTBEATS_PER_TTL: u64 = 3;

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

    /// Checks every bound; the message names the setting.
    pub fn validate(&self) -> Result<(), ClusterError> {
        let bad = |what: String| Err(ClusterError::Settings(what));
        if self.node_id.is_empty()
            || self.node_id.len() > MAX_NODE_ID_LEN
            || !self
                .node_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        {
            return bad(format!(
                "node id must be 1 to {MAX_NODE_ID_LEN} characters of [A-Za-z0-9._-]"
            ));
        }
        if self.key_prefix.len() > MAX_KEY_PREFIX_LEN
            || self
                .key_prefix
                .bytes()
                .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
        {
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
    fn debug_never_shows_the_url() {
        assert!(!format!("{:?}", settings("n")).contains("hunter2"));
    }
}
