//! Voice presence: pure signaling, the server keeps no voice room state.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::ids::{ServerId, UserId};
use crate::json::JsonObject;

/// `voice_state` (client): this user's voice state in a joined server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct VoiceState {
    /// The server; the sender must have joined it.
    pub server_id: ServerId,
    /// Mute, deafen, room metadata: opaque to the server.
    pub voice_state: JsonObject,
}

/// `voice_state` (server): another member's voice state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct VoiceStateBroadcast {
    /// The server.
    pub server_id: ServerId,
    /// Whose voice state this is.
    pub oder_id: UserId,
    /// The voice state, untouched.
    pub voice_state: JsonObject,
}
