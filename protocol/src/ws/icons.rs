//! Server icon P2P sync: clients announce which icon version they hold and ask the server who
//! holds a newer one; the icon itself travels peer to peer (`server_icon_peer_*`, forwarded).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::ids::{ServerId, TimestampMs, UserId};

/// `server_icon_available` (client): this connection holds the icon of `serverId` at version
/// `iconUpdatedAt`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct ServerIconAvailable {
    /// The server whose icon it is.
    pub server_id: ServerId,
    /// The icon's version, ms since epoch of its last change.
    pub icon_updated_at: TimestampMs,
}

/// `server_icon_sync_request` (client): which peers hold an icon newer than `iconUpdatedAt`?
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct ServerIconSyncRequest {
    /// The server whose icon is wanted.
    pub server_id: ServerId,
    /// The version the asker holds (0 for none).
    ///
    /// Documented as required; a frame without it (Toju's catalogue shape) asks as if it were 0.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "TimestampMs")]
    #[ts(as = "TimestampMs")]
    pub icon_updated_at: Option<TimestampMs>,
}

/// A peer that holds a server icon version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct IconPeer {
    /// The peer.
    pub oder_id: UserId,
    /// The icon version it holds.
    pub icon_updated_at: TimestampMs,
}

/// `server_icon_sync_peers` (server): the peers holding a newer icon, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct ServerIconSyncPeers {
    /// The server whose icon it is.
    pub server_id: ServerId,
    /// Peers with a newer icon than the asker's; empty when none.
    pub peers: Vec<IconPeer>,
}
