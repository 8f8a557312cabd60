//! Connection and presence envelopes: `connected`, `identify`, `keepalive`, `status_update`,
//! `access_denied`, `error`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::codes::{AccessDeniedReason, ErrorCode, UserStatus};
use crate::ids::{ConnectionId, RequestId, ServerId, TimestampMs, UserId};
use crate::sse::IceServer;

/// `connected` (server): the first envelope on every connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct Connected {
    /// This connection's id, assigned by the server.
    pub connection_id: ConnectionId,
    /// The server's clock when the connection opened, ms since epoch.
    pub server_time: TimestampMs,
    /// The protocol version the server speaks (semver, e.g. `"0.1.0"`).
    pub protocol_version: String,
    /// STUN and TURN servers for this client's peer connections, TURN credentials minted for this
    /// connection. Empty when the operator configured none.
    #[serde(default)]
    pub ice_servers: Vec<IceServer>,
}

/// `identify` (client): who this connection is. Must be the first envelope after `connected`;
/// sending it again updates the profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct Identify {
    /// The user's identity; the server makes a UUID when absent. In `auth: open` mode an id bound
    /// to a key can only be claimed with that key's token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional = nullable)]
    pub oder_id: Option<UserId>,
    /// The name shown to other users.
    pub display_name: String,
    /// Tells apart several connections of one user, typically the signal URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional = nullable)]
    pub connection_scope: Option<String>,
    /// The user's profile text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional = nullable)]
    pub description: Option<String>,
    /// When the profile last changed, ms since epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional = nullable)]
    pub profile_updated_at: Option<TimestampMs>,
    /// A token from `/api/auth/verify` or `/api/auth/guest`, unless one was given as `?token=` at
    /// upgrade.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional = nullable, as = "Option<String>")]
    pub token: Option<crate::Secret>,
}

/// `keepalive` (client): refreshes liveness; carries nothing.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema, TS)]
pub struct Keepalive {}

/// `keepalive` (server): the answer to a client `keepalive`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct KeepaliveAck {
    /// The server's clock, ms since epoch.
    pub server_time: TimestampMs,
}

/// `status_update` (client): changes this user's status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct StatusUpdate {
    /// The new status.
    pub status: UserStatus,
}

/// `status_update` (server): a user's status changed; sent once to every user sharing a server
/// with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct StatusUpdateBroadcast {
    /// Whose status changed.
    pub oder_id: UserId,
    /// The new status.
    pub status: UserStatus,
}

/// `access_denied` (server): a `join_server` or `view_server` was refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct AccessDenied {
    /// The server that was asked for.
    pub server_id: ServerId,
    /// Why it was refused.
    pub reason: AccessDeniedReason,
}

/// `error` (server): a request failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct ErrorEvent {
    /// What went wrong, for programs.
    pub code: ErrorCode,
    /// What went wrong, for people (names the field or limit at fault).
    pub message: String,
    /// The `type` of the envelope that failed, when it could be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub request_type: Option<String>,
    /// The `requestId` of the `rpc_request` that failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub request_id: Option<RequestId>,
}
