//! The WebSocket envelope contract (Toju-compatible).
//!
//! Two unions, internally tagged on `type`: [`ClientEnvelope`] for what a client sends and
//! [`ServerEnvelope`] for what the server sends. One wire name may appear in both with different
//! fields (`chat_message` from a client has no `senderId`; the server's copy does). The unions are
//! declared with [`envelope_union!`], which also gives each a list of its wire names and a
//! `wire_type()` accessor, so a wire name is written exactly once.
//!
//! Payload structs live in one module per concern: [`presence`], [`membership`], [`chat`],
//! [`voice`], [`forward`], [`icons`], [`plugins`].

pub mod chat;
pub mod forward;
pub mod icons;
pub mod membership;
pub mod parse;
pub mod plugins;
pub mod presence;
pub mod voice;

pub use chat::*;
pub use forward::*;
pub use icons::*;
pub use membership::*;
pub use parse::{FrameError, MAX_FIELD_ERROR_BYTES, describe_field_error, parse_client_frame};
pub use plugins::*;
pub use presence::*;
pub use voice::*;

/// Declares an internally tagged envelope union whose variants each wrap one payload struct.
///
/// Besides the enum it generates `WIRE_TYPES` (every wire name, in declaration order) and
/// `wire_type(&self)`, used by the server for metrics and error messages and by the catalog to
/// demand one golden example per wire name.
macro_rules! envelope_union {
    (
        $(#[$enum_meta:meta])*
        pub enum $name:ident {
            $(
                $(#[$variant_meta:meta])*
                $wire:literal => $variant:ident($payload:ty),
            )+
        }
    ) => {
        $(#[$enum_meta])*
        #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema, ts_rs::TS)]
        #[serde(tag = "type")]
        pub enum $name {
            $(
                $(#[$variant_meta])*
                #[serde(rename = $wire)]
                $variant($payload),
            )+
        }

        impl $name {
            /// Every wire `type` of this union, in declaration order.
            pub const WIRE_TYPES: &'static [&'static str] = &[$($wire),+];

            /// The wire `type` of this envelope.
            pub fn wire_type(&self) -> &'static str {
                match self {
                    $(Self::$variant(_) => $wire,)+
                }
            }

            /// Deserializes `value` as the payload of the wire type `wire`, tracking the JSON
            /// path: `Some((path, reason))` when it fails. (The tagged union buffers its input,
            /// which loses the path; this names the field at fault.)
            pub fn payload_error(wire: &str, value: &serde_json::Value) -> Option<(String, String)> {
                fn check<T: serde::de::DeserializeOwned>(
                    value: &serde_json::Value,
                ) -> Option<(String, String)> {
                    serde_path_to_error::deserialize::<_, T>(value)
                        .err()
                        .map(|e| (e.path().to_string(), e.into_inner().to_string()))
                }
                match wire {
                    $($wire => check::<$payload>(value),)+
                    _ => None,
                }
            }

            /// Deserializes the rest of a map whose `type` was `wire` straight into that
            /// variant's payload; `None` when `wire` names no variant. Generated from the same
            /// list as the enum, so every variant has it: the fast path of
            /// [`parse_client_frame`](crate::ws::parse_client_frame) (`ws::parse::tag_first`).
            #[doc(hidden)]
            pub fn deserialize_payload_of<'de, A>(
                wire: &str,
                rest: A,
            ) -> Option<Result<Self, A::Error>>
            where
                A: serde::de::MapAccess<'de>,
            {
                let rest = serde::de::value::MapAccessDeserializer::new(rest);
                match wire {
                    $($wire => Some(
                        <$payload as serde::Deserialize<'de>>::deserialize(rest).map(Self::$variant),
                    ),)+
                    _ => None,
                }
            }
        }
    };
}

envelope_union! {
    /// Every envelope a client may send. Before `identify`, only `identify` and `keepalive` are
    /// accepted.
    pub enum ClientEnvelope {
        /// Declares who this connection is. Must come first.
        "identify" => Identify(Identify),
        /// Liveness ping from the client; the server answers with `keepalive` and its clock.
        "keepalive" => Keepalive(Keepalive),
        /// Changes this user's presence status.
        "status_update" => StatusUpdate(StatusUpdate),
        /// Joins a chat server: roster, presence and broadcasts of that server.
        "join_server" => JoinServer(JoinServer),
        /// Looks at a chat server's roster and plugins without joining it.
        "view_server" => ViewServer(ViewServer),
        /// Leaves a chat server.
        "leave_server" => LeaveServer(LeaveServer),
        /// Sends a chat message to everyone in a joined server.
        "chat_message" => ChatMessage(ChatMessage),
        /// Starts or stops a typing indicator in a channel.
        "typing" => Typing(Typing),
        /// Announces this user's voice state in a server.
        "voice_state" => VoiceState(VoiceState),
        /// WebRTC offer to one peer.
        "offer" => Offer(SdpSignal),
        /// WebRTC answer to one peer.
        "answer" => Answer(SdpSignal),
        /// WebRTC ICE candidate for one peer.
        "ice_candidate" => IceCandidate(IceCandidateSignal),
        /// Direct call signaling to one peer (payload opaque).
        "direct-call" => DirectCall(PeerMessage),
        /// A direct message to one peer (payload opaque).
        "direct-message" => DirectMessage(PeerMessage),
        /// Delivery or read status of a direct message (payload opaque).
        "direct-message-status" => DirectMessageStatus(PeerMessage),
        /// An edit or deletion of a direct message (payload opaque).
        "direct-message-mutation" => DirectMessageMutation(PeerMessage),
        /// Direct-message history sent to a peer (payload opaque).
        "direct-message-sync" => DirectMessageSync(PeerMessage),
        /// Asks a peer for direct-message history (payload opaque).
        "direct-message-sync-request" => DirectMessageSyncRequest(PeerMessage),
        /// Announces that this connection holds a server icon version.
        "server_icon_available" => ServerIconAvailable(ServerIconAvailable),
        /// Asks which peers hold a newer server icon.
        "server_icon_sync_request" => ServerIconSyncRequest(ServerIconSyncRequest),
        /// Asks a peer for its server icon (payload opaque).
        "server_icon_peer_request" => ServerIconPeerRequest(PeerMessage),
        /// Sends a server icon to a peer (payload opaque).
        "server_icon_peer_data" => ServerIconPeerData(PeerMessage),
        /// Calls a method on another client.
        "rpc_request" => RpcRequest(RpcRequest),
        /// Answers an `rpc_request`.
        "rpc_response" => RpcResponse(RpcResponse),
        /// An event of a plugin registered for a server, broadcast to its members.
        "plugin_event" => PluginEvent(PluginEvent),
    }
}

envelope_union! {
    /// Every envelope the server sends.
    pub enum ServerEnvelope {
        /// First envelope on every connection.
        "connected" => Connected(Connected),
        /// Answer to a client `keepalive`.
        "keepalive" => Keepalive(KeepaliveAck),
        /// A user's presence changed.
        "status_update" => StatusUpdate(StatusUpdateBroadcast),
        /// A `join_server` or `view_server` was refused; the socket stays open.
        "access_denied" => AccessDenied(AccessDenied),
        /// A request failed; the socket stays open unless a close follows.
        "error" => Error(ErrorEvent),
        /// The roster of a server, after `join_server` or `view_server`.
        "server_users" => ServerUsers(ServerUsers),
        /// The plugins of a server, after `server_users`.
        "plugin_requirements" => PluginRequirements(PluginRequirements),
        /// A user joined a server (once per user, not per device).
        "user_joined" => UserJoined(UserJoined),
        /// A user left a server (once per user, when its last device leaves).
        "user_left" => UserLeft(UserLeft),
        /// A chat message from another member.
        "chat_message" => ChatMessage(ChatMessageBroadcast),
        /// Another member's typing indicator.
        "typing" => Typing(TypingBroadcast),
        /// Another member's voice state.
        "voice_state" => VoiceState(VoiceStateBroadcast),
        /// A WebRTC offer from a peer.
        "offer" => Offer(SdpSignalDelivery),
        /// A WebRTC answer from a peer.
        "answer" => Answer(SdpSignalDelivery),
        /// A WebRTC ICE candidate from a peer.
        "ice_candidate" => IceCandidate(IceCandidateSignalDelivery),
        /// Direct call signaling from a peer.
        "direct-call" => DirectCall(PeerMessageDelivery),
        /// A direct message from a peer.
        "direct-message" => DirectMessage(PeerMessageDelivery),
        /// Direct message status from a peer.
        "direct-message-status" => DirectMessageStatus(PeerMessageDelivery),
        /// A direct message edit or deletion from a peer.
        "direct-message-mutation" => DirectMessageMutation(PeerMessageDelivery),
        /// Direct-message history from a peer.
        "direct-message-sync" => DirectMessageSync(PeerMessageDelivery),
        /// A peer asks for direct-message history.
        "direct-message-sync-request" => DirectMessageSyncRequest(PeerMessageDelivery),
        /// Peers holding a newer server icon.
        "server_icon_sync_peers" => ServerIconSyncPeers(ServerIconSyncPeers),
        /// A peer asks for this client's server icon.
        "server_icon_peer_request" => ServerIconPeerRequest(PeerMessageDelivery),
        /// A peer sends its server icon.
        "server_icon_peer_data" => ServerIconPeerData(PeerMessageDelivery),
        /// A peer calls a method on this client.
        "rpc_request" => RpcRequest(RpcRequestDelivery),
        /// A peer answers this client's `rpc_request`.
        "rpc_response" => RpcResponse(RpcResponseDelivery),
        /// A plugin event from another member, validated by the server.
        "plugin_event" => PluginEvent(PluginEventBroadcast),
    }
}

#[cfg(test)]
mod tests;
