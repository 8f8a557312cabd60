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
    ///
    /// Documented as required. For clients written from Toju's envelope catalogue, a frame
    /// without it is accepted when the connection has joined or views exactly one server, which
    /// is then the one meant; otherwise it is refused with `INVALID_MESSAGE` naming `serverId`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "ServerId")]
    #[ts(as = "ServerId")]
    pub server_id: Option<ServerId>,
    /// Mute, deafen, room metadata: opaque to the server.
    ///
    /// Documented as required. A frame without it (Toju's catalogue shape: the state's fields
    /// beside `type`) is read as if its other fields, but `oderId` and `displayName`, were
    /// wrapped here.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "JsonObject")]
    #[ts(as = "JsonObject")]
    pub voice_state: Option<JsonObject>,
    /// The frame's other fields: the voice state itself when `voiceState` is absent; ignored
    /// otherwise. Not part of the documented shape.
    #[serde(flatten, skip_serializing_if = "JsonObject::is_empty")]
    #[schemars(skip)]
    #[ts(skip)]
    pub unwrapped: JsonObject,
}

/// Fields of an unwrapped voice state that name the sender: the server sets those on the
/// broadcast itself and never passes on a client's claim of them.
const SENDER_FIELDS: [&str; 2] = ["oderId", "displayName"];

impl VoiceState {
    /// The voice state to broadcast: `voiceState` when sent, else the frame's other fields
    /// minus the sender's identity fields.
    pub fn into_state(self) -> JsonObject {
        match self.voice_state {
            Some(state) => state,
            None => {
                let mut state = self.unwrapped;
                for field in SENDER_FIELDS {
                    state.remove(field);
                }
                state
            }
        }
    }
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::VoiceState;
    use crate::ws::{ClientEnvelope, parse_client_frame};

    fn voice_state(frame: serde_json::Value) -> VoiceState {
        match parse_client_frame(&frame.to_string()) {
            Ok(ClientEnvelope::VoiceState(voice)) => voice,
            other => panic!("not a voice_state: {other:?}"),
        }
    }

    #[test]
    fn the_wrapper_is_the_state_and_round_trips_as_documented() {
        let frame = json!({"type": "voice_state", "serverId": "s", "voiceState": {"muted": true}});
        let voice = voice_state(frame.clone());
        let back = serde_json::to_value(ClientEnvelope::VoiceState(voice.clone()));
        assert_eq!(back.ok(), Some(frame));
        assert_eq!(
            voice.into_state(),
            json!({"muted": true})
                .as_object()
                .cloned()
                .unwrap_or_default()
        );
    }

    #[test]
    fn without_the_wrapper_the_other_fields_are_the_state_minus_the_sender() {
        let voice = voice_state(json!({
            "type": "voice_state", "oderId": "forged", "displayName": "Mallory", "isMuted": true
        }));
        assert_eq!(voice.server_id, None);
        let state = voice.into_state();
        assert_eq!(serde_json::Value::Object(state), json!({"isMuted": true}));
    }
}
