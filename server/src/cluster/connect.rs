//! The node's two Redis connections: how they are opened and how long they may take.
//!
//! Owns: the RESP3 client URL (`protocol=resp3` appended, so pushes and automatic
//! resubscription work) and the `ConnectionManager` settings (retries, timeouts).
//!
//! Never: formats or logs the Redis URL (it may hold a password), sends a command.

use std::time::Duration;

use redis::aio::ConnectionManagerConfig;

use super::ClusterError;
use super::settings::ClusterSettings;

/// How long a connection attempt or a reply may take before Redis counts as unreachable.
pub const REDIS_TIMEOUT: Duration = Duration::from_secs(2);

/// A client speaking RESP3 to the configured Redis.
pub fn client(settings: &ClusterSettings) -> Result<redis::Client, ClusterError> {
    let url = settings.redis_url.expose();
    let sep = if url.contains('?') { '&' } else { '?' };
    redis::Client::open(format!("{url}{sep}protocol=resp3")).map_err(ClusterError::Connect)
}

/// Fails fast while Redis is away (the manager reconnects in the background).
pub fn manager_config() -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_number_of_retries(2)
        .set_max_delay(Duration::from_millis(500))
        .set_connection_timeout(Some(REDIS_TIMEOUT))
        .set_response_timeout(Some(REDIS_TIMEOUT))
}
