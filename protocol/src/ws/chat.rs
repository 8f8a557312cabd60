//! Chat and typing envelopes, broadcast within one server with the sender excluded.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::ids::{ChannelId, ServerId, TimestampMs, UserId};
use crate::json::JsonObject;

/// `chat_message` (client): a message for everyone else in a joined server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct ChatMessage {
    /// The server to post in; the sender must have joined it.
    ///
    /// Documented as required. For clients written from Toju's envelope catalogue, a frame
    /// without it is accepted when the connection has joined or views exactly one server, which
    /// is then the one meant; otherwise it is refused with `INVALID_MESSAGE` naming `serverId`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "ServerId")]
    #[ts(as = "ServerId")]
    pub server_id: Option<ServerId>,
    /// The client's message record, carried untouched.
    pub message: JsonObject,
}

/// `chat_message` (server): a message from another member. The server sets `senderId`,
/// `senderName` and `timestamp`, never trusting the client's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct ChatMessageBroadcast {
    /// The server it was posted in.
    pub server_id: ServerId,
    /// The sender's message record, untouched.
    pub message: JsonObject,
    /// The sender's `oderId`.
    pub sender_id: UserId,
    /// The sender's display name at the time of sending.
    pub sender_name: String,
    /// When the server received it, ms since epoch.
    pub timestamp: TimestampMs,
}

/// `typing` (client): starts or stops a typing indicator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct Typing {
    /// The server; the sender must have joined it.
    ///
    /// Documented as required. For clients written from Toju's envelope catalogue, a frame
    /// without it is accepted when the connection has joined or views exactly one server, which
    /// is then the one meant; otherwise it is refused with `INVALID_MESSAGE` naming `serverId`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "ServerId")]
    #[ts(as = "ServerId")]
    pub server_id: Option<ServerId>,
    /// The channel being typed in.
    pub channel_id: ChannelId,
    /// Whether the user is typing now.
    pub is_typing: bool,
}

/// `typing` (server): another member's typing indicator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct TypingBroadcast {
    /// The server.
    pub server_id: ServerId,
    /// The channel being typed in.
    pub channel_id: ChannelId,
    /// Whether the user is typing now.
    pub is_typing: bool,
    /// Who is typing.
    pub oder_id: UserId,
    /// Their display name.
    pub display_name: String,
}
