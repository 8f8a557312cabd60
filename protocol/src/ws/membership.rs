//! Server membership envelopes: `join_server`, `view_server`, `leave_server`, `server_users`,
//! `plugin_requirements`, `user_joined`, `user_left`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::codes::UserStatus;
use crate::ids::{PluginId, ServerId, TimestampMs, UserId};

/// `join_server` (client): join a chat server. Authorized on its own against the server's access
/// rules; refused with `access_denied`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct JoinServer {
    /// The server to join.
    pub server_id: ServerId,
    /// The server's password, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional = nullable, as = "Option<String>")]
    pub password: Option<crate::Secret>,
    /// An invite code for a private server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional = nullable)]
    pub invite_code: Option<String>,
}

/// `view_server` (client): fetch a server's roster and plugin requirements without joining (no
/// `user_joined` is sent for the viewer).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct ViewServer {
    /// The server to view.
    pub server_id: ServerId,
}

/// `leave_server` (client): leave a joined (or stop viewing a viewed) server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct LeaveServer {
    /// The server to leave.
    pub server_id: ServerId,
}

/// A user as other members see it, one entry per user (not per device).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct UserSummary {
    /// The user's identity.
    pub oder_id: UserId,
    /// The user's display name.
    pub display_name: String,
    /// The user's profile text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub description: Option<String>,
    /// The user's presence status.
    pub status: UserStatus,
    /// When the profile last changed, ms since epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub profile_updated_at: Option<TimestampMs>,
    /// The connection scope the user identified with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub connection_scope: Option<String>,
}

/// `server_users` (server): the roster of a server; the seed for a client's P2P offers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct ServerUsers {
    /// The server.
    pub server_id: ServerId,
    /// Every user with a connection joined to the server, the recipient included.
    pub users: Vec<UserSummary>,
}

/// One plugin a server uses, as announced to its members.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct PluginRequirement {
    /// The plugin.
    pub plugin_id: PluginId,
    /// The plugin's version (as registered).
    pub version: String,
    /// Whether a client must run the plugin to take part.
    pub required: bool,
    /// The event names the plugin declares.
    pub events: Vec<String>,
}

/// `plugin_requirements` (server): the plugins of a server, sent after `server_users`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct PluginRequirements {
    /// The server.
    pub server_id: ServerId,
    /// Its registered plugins.
    pub plugins: Vec<PluginRequirement>,
}

/// `user_joined` (server): a user joined a server (sent once per user, not per device).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct UserJoined {
    /// The server.
    pub server_id: ServerId,
    /// The user who joined.
    #[serde(flatten)]
    pub user: UserSummary,
}

/// `user_left` (server): a user left a server; sent when its last connection there is gone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct UserLeft {
    /// The server.
    pub server_id: ServerId,
    /// The user who left.
    pub oder_id: UserId,
    /// The user's display name, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub display_name: Option<String>,
}
