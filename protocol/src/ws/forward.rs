//! Envelopes forwarded to one peer: WebRTC `offer`/`answer`/`ice_candidate`, `direct-call`, the
//! `direct-message*` family, `server_icon_peer_*`, and client-to-client RPC.
//!
//! A client addresses one `targetUserId`; the server delivers the same object to every connection
//! of that user with `fromUserId` set to the sender's `oderId`. The server never inspects the
//! payload and never drops a field it does not know: every struct here keeps unknown fields in
//! `extra`, on the top level and inside the typed `sdp` and `candidate` objects. A `fromUserId`
//! sent by a client is discarded (no spoofing): [`ClientEnvelope::into_forwarded`] is the one
//! place that turns a client envelope into its delivery.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use super::{ClientEnvelope, ServerEnvelope};
use crate::ids::{RequestId, UserId};
use crate::json::{JsonObject, JsonValue};

/// The wire name of the field the server stamps on every delivery.
pub const FROM_USER_ID_FIELD: &str = "fromUserId";

/// The kind of a session description, as in WebRTC's `RTCSdpType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "lowercase")]
pub enum SdpType {
    /// An offer.
    Offer,
    /// A provisional answer.
    Pranswer,
    /// A final answer.
    Answer,
    /// Rolls back a pending offer.
    Rollback,
}

/// A WebRTC session description (`RTCSessionDescriptionInit`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
pub struct SessionDescription {
    /// Offer, answer, provisional answer or rollback.
    #[serde(rename = "type")]
    pub sdp_type: SdpType,
    /// The SDP text. Absent (WebRTC's default, the empty string) only for `rollback`; forwarded
    /// as sent.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::plain_str::serialize_option"
    )]
    #[ts(optional = nullable)]
    pub sdp: Option<String>,
    /// Fields this protocol does not name, kept as sent.
    #[serde(flatten)]
    pub extra: JsonObject,
}

/// A WebRTC ICE candidate (`RTCIceCandidateInit`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct IceCandidate {
    /// The candidate line; empty or absent (WebRTC's default) for end-of-candidates; forwarded
    /// as sent.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::plain_str::serialize_option"
    )]
    #[ts(optional = nullable)]
    pub candidate: Option<String>,
    /// The media stream identification tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional = nullable)]
    pub sdp_mid: Option<String>,
    /// The index of the m-line the candidate belongs to.
    #[serde(
        default,
        rename = "sdpMLineIndex",
        skip_serializing_if = "Option::is_none"
    )]
    #[ts(optional = nullable)]
    pub sdp_m_line_index: Option<u16>,
    /// The ICE username fragment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional = nullable)]
    pub username_fragment: Option<String>,
    /// Fields this protocol does not name, kept as sent.
    #[serde(flatten)]
    pub extra: JsonObject,
}

/// `offer` / `answer` (client): a session description for one peer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct SdpSignal {
    /// The peer to deliver to.
    pub target_user_id: UserId,
    /// The session description.
    pub sdp: SessionDescription,
    /// Fields this protocol does not name, forwarded as sent.
    #[serde(flatten)]
    pub extra: JsonObject,
}

/// `offer` / `answer` (server): a session description from a peer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct SdpSignalDelivery {
    /// The sender's `oderId`, set by the server.
    pub from_user_id: UserId,
    /// The recipient (this user).
    pub target_user_id: UserId,
    /// The session description.
    pub sdp: SessionDescription,
    /// Fields this protocol does not name, as the sender sent them.
    #[serde(flatten)]
    pub extra: JsonObject,
}

/// `ice_candidate` (client): an ICE candidate for one peer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct IceCandidateSignal {
    /// The peer to deliver to.
    pub target_user_id: UserId,
    /// The candidate.
    pub candidate: IceCandidate,
    /// Fields this protocol does not name, forwarded as sent.
    #[serde(flatten)]
    pub extra: JsonObject,
}

/// `ice_candidate` (server): an ICE candidate from a peer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct IceCandidateSignalDelivery {
    /// The sender's `oderId`, set by the server.
    pub from_user_id: UserId,
    /// The recipient (this user).
    pub target_user_id: UserId,
    /// The candidate.
    pub candidate: IceCandidate,
    /// Fields this protocol does not name, as the sender sent them.
    #[serde(flatten)]
    pub extra: JsonObject,
}

/// `direct-call`, `direct-message*`, `server_icon_peer_*` (client): an opaque message for one
/// peer; every field but `targetUserId` is the clients' business.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct PeerMessage {
    /// The peer to deliver to.
    pub target_user_id: UserId,
    /// The message's fields, forwarded as sent.
    #[serde(flatten)]
    pub extra: JsonObject,
}

/// `direct-call`, `direct-message*`, `server_icon_peer_*` (server): an opaque message from a
/// peer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct PeerMessageDelivery {
    /// The sender's `oderId`, set by the server.
    pub from_user_id: UserId,
    /// The recipient (this user).
    pub target_user_id: UserId,
    /// The message's fields, as the sender sent them.
    #[serde(flatten)]
    pub extra: JsonObject,
}

/// `rpc_request` (client): call `method` on one peer. The peer answers with `rpc_response` and
/// the same `requestId`; an offline peer yields `error` `TARGET_NOT_FOUND` with that id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct RpcRequest {
    /// The peer to call.
    pub target_user_id: UserId,
    /// Chosen by the caller; echoed in the response.
    pub request_id: RequestId,
    /// The method name, meaningful to the peer only.
    pub method: String,
    /// The method's arguments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub params: Option<JsonValue>,
    /// Fields this protocol does not name, forwarded as sent.
    #[serde(flatten)]
    pub extra: JsonObject,
}

/// `rpc_request` (server): a peer calls `method` on this client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct RpcRequestDelivery {
    /// The caller's `oderId`, set by the server; answer to it.
    pub from_user_id: UserId,
    /// The recipient (this user).
    pub target_user_id: UserId,
    /// Echo it in the `rpc_response`.
    pub request_id: RequestId,
    /// The method name.
    pub method: String,
    /// The method's arguments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub params: Option<JsonValue>,
    /// Fields this protocol does not name, as the caller sent them.
    #[serde(flatten)]
    pub extra: JsonObject,
}

/// `rpc_response` (client): the answer to a peer's `rpc_request`: `result` on success, `error`
/// on failure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct RpcResponse {
    /// The caller.
    pub target_user_id: UserId,
    /// The `requestId` of the request answered.
    pub request_id: RequestId,
    /// The result, on success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub result: Option<JsonValue>,
    /// The failure, on error; its shape is the peers' business.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub error: Option<JsonValue>,
    /// Fields this protocol does not name, forwarded as sent.
    #[serde(flatten)]
    pub extra: JsonObject,
}

/// `rpc_response` (server): a peer's answer to this client's `rpc_request`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct RpcResponseDelivery {
    /// The answering peer's `oderId`, set by the server.
    pub from_user_id: UserId,
    /// The recipient (this user, the caller).
    pub target_user_id: UserId,
    /// The `requestId` of the request answered.
    pub request_id: RequestId,
    /// The result, on success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub result: Option<JsonValue>,
    /// The failure, on error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub error: Option<JsonValue>,
    /// Fields this protocol does not name, as the peer sent them.
    #[serde(flatten)]
    pub extra: JsonObject,
}

/// A client envelope turned into what its target receives.
#[derive(Debug, Clone, PartialEq)]
pub struct ForwardedEnvelope {
    /// The user whose connections receive `delivery`.
    pub target_user_id: UserId,
    /// The RPC request id, so a failure can name it.
    pub request_id: Option<RequestId>,
    /// The envelope to deliver, `fromUserId` stamped.
    pub delivery: ServerEnvelope,
}

fn without_spoofed_sender(mut extra: JsonObject) -> JsonObject {
    extra.remove(FROM_USER_ID_FIELD);
    extra
}

impl SdpSignal {
    fn deliver(self, from: UserId) -> SdpSignalDelivery {
        SdpSignalDelivery {
            from_user_id: from,
            target_user_id: self.target_user_id,
            sdp: self.sdp,
            extra: without_spoofed_sender(self.extra),
        }
    }
}

impl IceCandidateSignal {
    fn deliver(self, from: UserId) -> IceCandidateSignalDelivery {
        IceCandidateSignalDelivery {
            from_user_id: from,
            target_user_id: self.target_user_id,
            candidate: self.candidate,
            extra: without_spoofed_sender(self.extra),
        }
    }
}

impl PeerMessage {
    fn deliver(self, from: UserId) -> PeerMessageDelivery {
        PeerMessageDelivery {
            from_user_id: from,
            target_user_id: self.target_user_id,
            extra: without_spoofed_sender(self.extra),
        }
    }
}

impl RpcRequest {
    fn deliver(self, from: UserId) -> RpcRequestDelivery {
        RpcRequestDelivery {
            from_user_id: from,
            target_user_id: self.target_user_id,
            request_id: self.request_id,
            method: self.method,
            params: self.params,
            extra: without_spoofed_sender(self.extra),
        }
    }
}

impl RpcResponse {
    fn deliver(self, from: UserId) -> RpcResponseDelivery {
        RpcResponseDelivery {
            from_user_id: from,
            target_user_id: self.target_user_id,
            request_id: self.request_id,
            result: self.result,
            error: self.error,
            extra: without_spoofed_sender(self.extra),
        }
    }
}

impl ClientEnvelope {
    /// The peer a forwarded envelope is addressed to; `None` for every other envelope.
    pub fn forward_target(&self) -> Option<&UserId> {
        match self {
            Self::Offer(m) | Self::Answer(m) => Some(&m.target_user_id),
            Self::IceCandidate(m) => Some(&m.target_user_id),
            Self::DirectCall(m)
            | Self::DirectMessage(m)
            | Self::DirectMessageStatus(m)
            | Self::DirectMessageMutation(m)
            | Self::DirectMessageSync(m)
            | Self::DirectMessageSyncRequest(m)
            | Self::ServerIconPeerRequest(m)
            | Self::ServerIconPeerData(m) => Some(&m.target_user_id),
            Self::RpcRequest(m) => Some(&m.target_user_id),
            Self::RpcResponse(m) => Some(&m.target_user_id),
            Self::Identify(_)
            | Self::Keepalive(_)
            | Self::StatusUpdate(_)
            | Self::JoinServer(_)
            | Self::ViewServer(_)
            | Self::LeaveServer(_)
            | Self::ChatMessage(_)
            | Self::Typing(_)
            | Self::VoiceState(_)
            | Self::ServerIconAvailable(_)
            | Self::ServerIconSyncRequest(_)
            | Self::PluginEvent(_) => None,
        }
    }

    /// Turns a forwarded envelope into the envelope its target receives, with `fromUserId` set
    /// to `from` (a client-supplied one is discarded). Returns the envelope unchanged when it is
    /// not a forwarded one (boxed: envelopes are large and this path is the rare one).
    pub fn into_forwarded(self, from: UserId) -> Result<ForwardedEnvelope, Box<ClientEnvelope>> {
        let target_user_id = match self.forward_target() {
            Some(target) => target.clone(),
            None => return Err(Box::new(self)),
        };
        let request_id = match &self {
            Self::RpcRequest(m) => Some(m.request_id.clone()),
            Self::RpcResponse(m) => Some(m.request_id.clone()),
            _ => None,
        };
        let delivery = match self {
            Self::Offer(m) => ServerEnvelope::Offer(m.deliver(from)),
            Self::Answer(m) => ServerEnvelope::Answer(m.deliver(from)),
            Self::IceCandidate(m) => ServerEnvelope::IceCandidate(m.deliver(from)),
            Self::DirectCall(m) => ServerEnvelope::DirectCall(m.deliver(from)),
            Self::DirectMessage(m) => ServerEnvelope::DirectMessage(m.deliver(from)),
            Self::DirectMessageStatus(m) => ServerEnvelope::DirectMessageStatus(m.deliver(from)),
            Self::DirectMessageMutation(m) => {
                ServerEnvelope::DirectMessageMutation(m.deliver(from))
            }
            Self::DirectMessageSync(m) => ServerEnvelope::DirectMessageSync(m.deliver(from)),
            Self::DirectMessageSyncRequest(m) => {
                ServerEnvelope::DirectMessageSyncRequest(m.deliver(from))
            }
            Self::ServerIconPeerRequest(m) => {
                ServerEnvelope::ServerIconPeerRequest(m.deliver(from))
            }
            Self::ServerIconPeerData(m) => ServerEnvelope::ServerIconPeerData(m.deliver(from)),
            Self::RpcRequest(m) => ServerEnvelope::RpcRequest(m.deliver(from)),
            Self::RpcResponse(m) => ServerEnvelope::RpcResponse(m.deliver(from)),
            other => return Err(Box::new(other)),
        };
        Ok(ForwardedEnvelope {
            target_user_id,
            request_id,
            delivery,
        })
    }
}
