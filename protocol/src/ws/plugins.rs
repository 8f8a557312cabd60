//! Plugin events, validated by the server against the plugin's registered manifest.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::ids::{PluginId, ServerId, TimestampMs, UserId};
use crate::json::JsonValue;

/// `plugin_event` (client): an event of a plugin registered for a joined server. Accepted only
/// when the plugin is registered there, the event declared, the payload within the plugin's
/// `maxPayloadBytes` and valid against the event's JSON Schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct PluginEvent {
    /// The server; the sender must have joined it.
    pub server_id: ServerId,
    /// The plugin.
    pub plugin_id: PluginId,
    /// The event name, as declared in the plugin's manifest.
    pub event_name: String,
    /// The event's payload, checked against the event's schema.
    pub payload: JsonValue,
    /// The plugin's own notion of its user, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional = nullable)]
    pub source_plugin_user_id: Option<String>,
}

/// `plugin_event` (server): a validated plugin event from another member.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct PluginEventBroadcast {
    /// The server.
    pub server_id: ServerId,
    /// The plugin.
    pub plugin_id: PluginId,
    /// The event name.
    pub event_name: String,
    /// The validated payload.
    pub payload: JsonValue,
    /// The plugin's own notion of its user, as the sender gave it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub source_plugin_user_id: Option<String>,
    /// The sender's `oderId`, set by the server.
    pub source_user_id: UserId,
    /// When the server accepted the event, ms since epoch.
    pub emitted_at: TimestampMs,
}
