//! `/api/servers/{serverId}/plugins`: the plugin manifests registered for a server.
//!
//! A manifest declares a plugin's events and the JSON Schema each event's `payload` must
//! satisfy. It feeds `plugin_requirements` (sent on `join_server` / `view_server`) and the
//! validation of every `plugin_event` (see [`crate::ws::PluginEvent`]).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::ids::{PluginId, TimestampMs};
use crate::json::JsonValue;

/// Body of `PUT /api/servers/{serverId}/plugins/{pluginId}`: registers a plugin or replaces its
/// manifest. The `pluginId` comes from the path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PluginManifestRequest {
    /// The plugin's version (free text, typically semver), shown to clients.
    pub version: String,
    /// Whether a client must run the plugin to take part in the server.
    #[serde(default)]
    pub required: bool,
    /// Largest `payload` of one event, in bytes of JSON; the server default
    /// (`PLUGIN_MAX_PAYLOAD_BYTES`) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub max_payload_bytes: Option<u32>,
    /// Each event the plugin emits, by name, with the JSON Schema (draft 2020-12, no external
    /// `$ref`) its `payload` must satisfy.
    #[ts(type = "Record<string, unknown>")]
    pub events: BTreeMap<String, JsonValue>,
}

/// A registered plugin manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct PluginManifest {
    /// The plugin's id, unique within the server.
    pub plugin_id: PluginId,
    /// The plugin's version.
    pub version: String,
    /// Whether a client must run the plugin to take part in the server.
    pub required: bool,
    /// Largest `payload` of one event, in bytes of JSON.
    pub max_payload_bytes: u32,
    /// Each event's payload schema, by event name.
    #[ts(type = "Record<string, unknown>")]
    pub events: BTreeMap<String, JsonValue>,
    /// When the manifest was last registered or replaced.
    pub updated_at: TimestampMs,
}

/// 200 body of `GET /api/servers/{serverId}/plugins`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct PluginManifestList {
    /// Every plugin registered for the server, by `pluginId`.
    pub items: Vec<PluginManifest>,
}
