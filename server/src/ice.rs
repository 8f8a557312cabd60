//! ICE servers handed to clients (`connected.iceServers` on the WebSocket, `joined` on SSE):
//! the operator's STUN URLs, and TURN URLs with their credential.
//!
//! Never logs a credential.

use signalbox_protocol::TimestampMs;
use signalbox_protocol::sse::IceServer;

use crate::config::Variables;

/// The ICE servers for one connection or session (`identity` names it in minted credentials).
pub fn ice_servers(variables: &Variables, _identity: &str, _now: TimestampMs) -> Vec<IceServer> {
    let mut servers = Vec::new();
    if !variables.stun_urls.is_empty() {
        servers.push(IceServer {
            urls: variables.stun_urls.clone(),
            username: None,
            credential: None,
        });
    }
    if !variables.turn_urls.is_empty() {
        servers.push(IceServer {
            urls: variables.turn_urls.clone(),
            username: variables.turn_username.clone(),
            credential: variables
                .turn_credential
                .as_ref()
                .map(|c| c.expose().to_owned()),
        });
    }
    servers
}
