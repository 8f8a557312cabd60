//! The SSE transport: rooms over Server-Sent Events and plain POSTs, wire-exact with the service
//! the SSE example clients were written for.
//!
//! A client opens `GET /api/connect?room=NAME` (optionally `&roster=delta`, [`RosterMode`]) and
//! receives [`SseEvent`]s; it sends with
//! `POST /api/signal` ([`SignalRequest`]) and leaves with `POST /api/leave` ([`LeaveRequest`]).
//! Room names are trimmed and upper-cased ([`normalize_room`]). Errors keep this transport's own
//! body shape, [`SseErrorBody`], with the fixed messages of [`SseError`].
//!
//! # One hub, two transports: how an SSE room meets the WebSocket
//! The server runs both transports on one hub, and this module fixes how they meet:
//! - **Identity.** An SSE session is one hub member whose `oderId` is the session id
//!   ([`session_user_id`]), with that id as its display name. A WebSocket client addresses an
//!   SSE agent by that id, exactly like any other user.
//! - **Room to scope.** The room `NAME` (after [`normalize_room`]) *is* the WebSocket server scope
//!   whose `serverId` is `NAME`, byte for byte ([`room_server_id`]): room ` agent-room ` is
//!   `serverId` `AGENT-ROOM`. A WebSocket client that joins `serverId` `AGENT-ROOM` (the
//!   WebSocket side authorizes that `join_server` against the directory as usual, so an operator
//!   shares a room by creating the server with that id) is in the room: it receives
//!   `user_joined`/`user_left` for SSE agents, and SSE agents see it in their `roster`.
//! - **WebSocket to SSE.** Of what the hub sends to a session, membership becomes `roster`
//!   (`server_users`, `user_joined`, `user_left` of the room's scope, see [`SseView`]) and every
//!   forwarded envelope (`offer`, `answer`, `ice_candidate`, `direct-*`, `server_icon_peer_*`,
//!   `rpc_*`) becomes `signal` with `sender` = its `fromUserId` and `signal` = the envelope object
//!   without `fromUserId` and `targetUserId` (so `{"type":"offer","sdp":{...}}`). Everything else
//!   (chat, typing, voice, status, plugin events) has no SSE form and is not delivered.
//! - **SSE to WebSocket.** A `POST /api/signal` to a WebSocket member is forwarded through the
//!   hub as the envelope its `signal` names ([`signal_envelope`]): the signal must be an object
//!   whose `type` is a forwarded envelope type and whose fields fit it (`{"type":"offer","sdp":
//!   {"type":"offer","sdp":"v=0..."}}`); `targetUserId` is set from `to` and the WebSocket client
//!   receives a normal envelope with `fromUserId` = the session id. A signal without such a
//!   `type` cannot be expressed as an envelope and is refused with 422
//!   ([`SseError::UnsupportedSignal`]). Between two SSE sessions any JSON goes, delivered as sent.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::codes::AccessDeniedReason;
use crate::ids::{ServerId, UserId, string_id};
use crate::json::{JsonObject, JsonValue};
use crate::ws::{ClientEnvelope, FROM_USER_ID_FIELD, ServerEnvelope};

string_id! {
    /// An SSE session's public id (a UUID); other members address signals to it.
    SessionId
}

/// An SSE session's secret, returned once in `joined` and required on every later request of
/// the session. `Debug` never prints it.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema, TS)]
#[serde(transparent)]
#[schemars(transparent)]
pub struct SessionToken(pub String);

impl std::fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionToken(<redacted>)")
    }
}

/// Trims a room name and upper-cases it, so ` agent-room ` and `AGENT-ROOM` are one room.
pub fn normalize_room(raw: &str) -> String {
    raw.trim().to_uppercase()
}

/// The WebSocket server scope an SSE room is: the normalized room name, verbatim.
pub fn room_server_id(normalized_room: &str) -> ServerId {
    ServerId(normalized_room.to_owned())
}

/// The hub identity (`oderId`) of an SSE session: its id, verbatim.
pub fn session_user_id(id: &SessionId) -> UserId {
    UserId(id.0.clone())
}

/// The wire name of the field that addresses a forwarded envelope.
const TARGET_USER_ID_FIELD: &str = "targetUserId";

/// The WebSocket envelope an SSE `signal` for the WebSocket member `to` travels as: the signal
/// object with `targetUserId` set to `to` (and any `fromUserId` dropped), when its `type` is a
/// forwarded envelope type and it parses as that envelope. `None` otherwise (the server answers
/// 422).
pub fn signal_envelope(to: &SessionId, signal: &JsonValue) -> Option<ClientEnvelope> {
    let mut object = signal.as_object()?.clone();
    object.remove(FROM_USER_ID_FIELD);
    object.insert(TARGET_USER_ID_FIELD.into(), JsonValue::String(to.0.clone()));
    let envelope: ClientEnvelope = serde_json::from_value(JsonValue::Object(object)).ok()?;
    envelope.forward_target().is_some().then_some(envelope)
}

/// Server envelope types [`SseView::of`] shows as nothing (kept in step with it by a test over
/// every golden example).
const NO_SSE_FORM: &[&str] = &[
    "connected",
    "keepalive",
    "status_update",
    "access_denied",
    "error",
    "plugin_requirements",
    "chat_message",
    "typing",
    "voice_state",
    "server_icon_sync_peers",
    "plugin_event",
];

/// Server envelope types [`SseView::of`] shows as a `signal` (kept in step with it likewise).
const FORWARDED: &[&str] = &[
    "offer",
    "answer",
    "ice_candidate",
    "direct-call",
    "direct-message",
    "direct-message-status",
    "direct-message-mutation",
    "direct-message-sync",
    "direct-message-sync-request",
    "server_icon_peer_request",
    "server_icon_peer_data",
    "rpc_request",
    "rpc_response",
];

/// What one hub envelope addressed to an SSE session means on its stream.
#[derive(Debug, Clone, PartialEq)]
pub enum SseView {
    /// `server_users`: the room's members are exactly these (a `roster` follows).
    RosterIs(ServerId, Vec<SessionId>),
    /// `user_joined`: this member joined (a `roster` follows).
    Joined(ServerId, SessionId),
    /// `user_left`: this member left (a `roster` follows).
    Left(ServerId, SessionId),
    /// A forwarded envelope: a `signal` event.
    Signal(SseSignal),
    /// No SSE form (chat, typing, voice, status, plugin events, errors...): not delivered.
    Ignored,
}

impl SseView {
    /// How the SSE transport shows `envelope` (see the module documentation).
    pub fn of(envelope: &ServerEnvelope) -> Self {
        use ServerEnvelope as E;
        let sid = |u: &UserId| SessionId(u.0.clone());
        match envelope {
            E::ServerUsers(m) => Self::RosterIs(
                m.server_id.clone(),
                m.users.iter().map(|u| sid(&u.oder_id)).collect(),
            ),
            E::UserJoined(m) => Self::Joined(m.server_id.clone(), sid(&m.user.oder_id)),
            E::UserLeft(m) => Self::Left(m.server_id.clone(), sid(&m.oder_id)),
            E::Offer(_)
            | E::Answer(_)
            | E::IceCandidate(_)
            | E::DirectCall(_)
            | E::DirectMessage(_)
            | E::DirectMessageStatus(_)
            | E::DirectMessageMutation(_)
            | E::DirectMessageSync(_)
            | E::DirectMessageSyncRequest(_)
            | E::ServerIconPeerRequest(_)
            | E::ServerIconPeerData(_)
            | E::RpcRequest(_)
            | E::RpcResponse(_) => match serde_json::to_value(envelope) {
                Ok(JsonValue::Object(object)) => Self::signal_of(object),
                _ => Self::Ignored,
            },
            E::Connected(_)
            | E::Keepalive(_)
            | E::StatusUpdate(_)
            | E::AccessDenied(_)
            | E::Error(_)
            | E::PluginRequirements(_)
            | E::ChatMessage(_)
            | E::Typing(_)
            | E::VoiceState(_)
            | E::ServerIconSyncPeers(_)
            | E::PluginEvent(_) => Self::Ignored,
        }
    }

    /// [`SseView::of`] for a serialized server envelope (what the hub queues), parsing no more
    /// than the view needs: an envelope with no SSE form is recognized by its leading `type`
    /// and not parsed at all; a forwarded one is parsed once, straight into the `signal`
    /// object (not into its typed envelope and back); membership envelopes go through the
    /// typed path. Text that does not start with the `type` member (serde writes the tag
    /// first) takes the typed path too. The result is always that of [`SseView::of`].
    pub fn of_frame(text: &str) -> Result<Self, serde_json::Error> {
        let wire = text
            .strip_prefix("{\"type\":\"")
            .and_then(|rest| rest.split_once('"'))
            .map(|(wire, _)| wire);
        match wire {
            Some(wire) if NO_SSE_FORM.contains(&wire) => Ok(Self::Ignored),
            Some(wire) if FORWARDED.contains(&wire) => {
                Ok(Self::signal_of(serde_json::from_str(text)?))
            }
            _ => Ok(Self::of(&serde_json::from_str(text)?)),
        }
    }

    fn signal_of(mut object: JsonObject) -> Self {
        let Some(JsonValue::String(from)) = object.remove(FROM_USER_ID_FIELD) else {
            return Self::Ignored;
        };
        object.remove(TARGET_USER_ID_FIELD);
        Self::Signal(SseSignal {
            sender: SessionId(from),
            signal: JsonValue::Object(object),
        })
    }
}

/// One STUN or TURN server, in the shape of WebRTC's `RTCIceServer`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
pub struct IceServer {
    /// `stun:` or `turn:`/`turns:` URLs.
    pub urls: Vec<String>,
    /// TURN username (`EXPIRY_UNIX_SECONDS:ID` under the TURN REST scheme).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub username: Option<String>,
    /// TURN credential (base64 HMAC-SHA1 of the username under the shared secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional, as = "Option<String>")]
    pub credential: Option<crate::Secret>,
}

/// Query of `GET /api/connect`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema, TS)]
pub struct ConnectQuery {
    /// The room to join (required; trimmed and upper-cased).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub room: Option<String>,
    /// A session to resume, with its `token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub session_id: Option<SessionId>,
    /// The token of `session_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub token: Option<SessionToken>,
    /// How this stream shows membership changes; absent is [`RosterMode::Full`]. Any other
    /// value is refused with 400.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub roster: Option<RosterMode>,
}

/// `GET /api/connect`'s `roster` parameter: how a stream shows membership changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "lowercase")]
pub enum RosterMode {
    /// Every change is a whole `roster` event (the source service's behaviour).
    #[default]
    Full,
    /// A `roster` event when the stream starts (and again whenever the server cannot vouch for
    /// the client's list), then one `roster_joined` or `roster_left` per change.
    Delta,
}

impl RosterMode {
    /// The name of the query parameter.
    pub const PARAMETER: &'static str = "roster";

    /// Every mode, in declaration order.
    pub const ALL: [Self; 2] = [Self::Full, Self::Delta];

    /// The parameter's value for this mode.
    pub const fn wire(self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::Delta => "delta",
        }
    }

    /// The mode a parameter value names, exactly (`None`: not a mode; the server answers 400).
    pub fn from_wire(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|mode| mode.wire() == value)
    }
}

/// Query of `POST /api/signal` and `POST /api/leave`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema, TS)]
pub struct RoomQuery {
    /// The room (required; trimmed and upper-cased).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub room: Option<String>,
}

/// Data of the `joined` event: the session's identity, first event of a new or resumed session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct SseJoined {
    /// The session's public id.
    pub id: SessionId,
    /// The session's secret; send it with every POST and on reconnect.
    pub token: SessionToken,
    /// STUN and TURN servers, TURN credentials minted for this session.
    pub ice_servers: Vec<IceServer>,
}

/// Data of the `roster` event: every member of the room, the recipient included. Sent to every
/// member whenever membership changes; on a `roster=delta` stream only when the stream starts
/// (later changes are `roster_joined`/`roster_left`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(transparent)]
#[schemars(transparent)]
pub struct SseRoster(pub Vec<SessionId>);

/// Data of the `roster_joined` and `roster_left` events (streams opened with `roster=delta`):
/// the one member that joined or left the room since the stream's previous roster event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
pub struct SseRosterChange {
    /// The member's session id (or a WebSocket member's `oderId`).
    pub id: SessionId,
}

/// Data of the `signal` event: a signal from another member.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
pub struct SseSignal {
    /// The sending session.
    pub sender: SessionId,
    /// The signal, exactly as sent.
    pub signal: JsonValue,
}

/// An event on the SSE stream. On the wire: `event: NAME\ndata: JSON\n\n` ([`SseEvent::to_frame`]).
#[derive(Debug, Clone, PartialEq)]
pub enum SseEvent {
    /// `joined`.
    Joined(SseJoined),
    /// `roster`.
    Roster(SseRoster),
    /// `signal`.
    Signal(SseSignal),
    /// `roster_joined` (delta streams only): add this member to the last roster.
    RosterJoined(SseRosterChange),
    /// `roster_left` (delta streams only): remove this member from the last roster.
    RosterLeft(SseRosterChange),
}

/// The comment frame sent every keepalive interval to keep proxies from closing the stream.
pub const KEEPALIVE_FRAME: &str = ": keepalive\n\n";

impl SseEvent {
    /// Every SSE event name, in declaration order.
    pub const NAMES: &'static [&'static str] = &[
        "joined",
        "roster",
        "signal",
        Self::ROSTER_JOINED,
        Self::ROSTER_LEFT,
    ];

    /// The name of [`SseEvent::RosterJoined`].
    pub const ROSTER_JOINED: &'static str = "roster_joined";

    /// The name of [`SseEvent::RosterLeft`].
    pub const ROSTER_LEFT: &'static str = "roster_left";

    /// The event's name (the `event:` line).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Joined(_) => "joined",
            Self::Roster(_) => "roster",
            Self::Signal(_) => "signal",
            Self::RosterJoined(_) => Self::ROSTER_JOINED,
            Self::RosterLeft(_) => Self::ROSTER_LEFT,
        }
    }

    /// The event's data as one line of JSON.
    pub fn data_json(&self) -> Result<String, serde_json::Error> {
        match self {
            Self::Joined(data) => serde_json::to_string(data),
            Self::Roster(data) => serde_json::to_string(data),
            Self::Signal(data) => serde_json::to_string(data),
            Self::RosterJoined(data) | Self::RosterLeft(data) => serde_json::to_string(data),
        }
    }

    /// The `signal` frame for a signal given as JSON text, kept byte for byte (key order and
    /// spacing as the sender wrote them; line breaks between tokens, the only place JSON allows
    /// them, become spaces so the data stays on one line). [`SseEvent::to_frame`] of
    /// [`SseEvent::Signal`] would re-serialize it (keys sorted).
    pub fn raw_signal_frame(
        sender: &SessionId,
        signal: &serde_json::value::RawValue,
    ) -> Result<String, serde_json::Error> {
        let sender = serde_json::to_string(sender)?;
        let signal = signal.get().replace(['\n', '\r'], " ");
        Ok(format!(
            "event: signal\ndata: {{\"sender\":{sender},\"signal\":{signal}}}\n\n"
        ))
    }

    /// The whole frame, `event: NAME\ndata: JSON\n\n`. serde_json never emits a raw newline, so
    /// the data is always one line.
    pub fn to_frame(&self) -> Result<String, serde_json::Error> {
        Ok(format!(
            "event: {}\ndata: {}\n\n",
            self.name(),
            self.data_json()?
        ))
    }
}

/// Body of `POST /api/signal`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
pub struct SignalRequest {
    /// The sending session's id.
    pub sender: SessionId,
    /// The target session's id; it must be in the room.
    pub to: SessionId,
    /// The sending session's token.
    pub token: SessionToken,
    /// The signal, any JSON, delivered untouched.
    pub signal: JsonValue,
}

/// Body of `POST /api/leave`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
pub struct LeaveRequest {
    /// The leaving session's id.
    pub sender: SessionId,
    /// The leaving session's token.
    pub token: SessionToken,
}

/// Success body of `POST /api/signal` and `POST /api/leave`: always `{"success": true}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
pub struct SseSuccess {
    /// Always `true`.
    pub success: bool,
}

impl SseSuccess {
    /// `{"success": true}`.
    pub const OK: Self = Self { success: true };
}

/// Error body of the SSE routes, `{"error": MESSAGE}` (this transport's own shape).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
pub struct SseErrorBody {
    /// One of the fixed messages of [`SseError`].
    pub error: String,
}

/// Every error the SSE routes answer with: its status code and its fixed message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SseError {
    /// 400: `room` or a body field is missing, or the body is not JSON.
    MissingParameters,
    /// 403: the token is not the session's.
    InvalidToken,
    /// 404: the target session is not in the room.
    TargetNotInRoom,
    /// 413: the request body exceeds the configured maximum.
    BodyTooLarge,
    /// 422: the target is a WebSocket member and the signal is not a forwarded envelope (see
    /// the module documentation).
    UnsupportedSignal,
    /// 429: the sender's token bucket is empty.
    RateLimited,
    /// 503: the room or the server is full.
    Full,
    /// 401 on `GET /api/connect`: the room names a directory server and the server runs with
    /// `auth: required`, and no valid token was presented (`?token=` on a new session or
    /// `Authorization: Bearer`).
    TokenRequired,
    /// 403 on `GET /api/connect`: the room names a directory server whose access rules refuse
    /// the caller; the message names the reason (the same reasons as `access_denied`).
    Denied(AccessDeniedReason),
    /// 503 in cluster mode: the request needs another node (the session's stream or the
    /// target is held there) and the cluster backplane cannot reach it now; retry.
    Unavailable,
}

impl SseError {
    /// The errors of the source service, one fixed message per status, in status order
    /// ([`SseError::TokenRequired`], [`SseError::Denied`] and [`SseError::Unavailable`] are
    /// this server's additions).
    pub const ALL: [Self; 7] = [
        Self::MissingParameters,
        Self::InvalidToken,
        Self::TargetNotInRoom,
        Self::BodyTooLarge,
        Self::UnsupportedSignal,
        Self::RateLimited,
        Self::Full,
    ];

    /// The HTTP status code.
    pub const fn status(self) -> u16 {
        match self {
            Self::MissingParameters => 400,
            Self::InvalidToken => 403,
            Self::TargetNotInRoom => 404,
            Self::BodyTooLarge => 413,
            Self::UnsupportedSignal => 422,
            Self::RateLimited => 429,
            Self::Full => 503,
            Self::TokenRequired => 401,
            Self::Denied(_) => 403,
            Self::Unavailable => 503,
        }
    }

    /// The fixed message in the body.
    pub const fn message(self) -> &'static str {
        match self {
            Self::MissingParameters => "Missing required parameters",
            Self::InvalidToken => "Unauthorized: invalid session token",
            Self::TargetNotInRoom => "Not Found: target is not in the room",
            Self::BodyTooLarge => "Payload Too Large: request body exceeds the limit",
            Self::UnsupportedSignal => {
                "Unprocessable Entity: a WebSocket peer only accepts signals typed as a forwarded envelope"
            }
            Self::RateLimited => "Too Many Requests: signaling rate limit exceeded",
            Self::Full => "Service Unavailable: room or server is full",
            Self::TokenRequired => "Unauthorized: this room requires a token",
            Self::Unavailable => "Service Unavailable: the cluster backplane is unreachable; retry",
            Self::Denied(reason) => match reason {
                AccessDeniedReason::NotFound => "Forbidden: no such server",
                AccessDeniedReason::Banned => "Forbidden: banned from this room",
                AccessDeniedReason::Private => "Forbidden: this room is private",
                AccessDeniedReason::PasswordRequired => "Forbidden: this room needs a password",
                AccessDeniedReason::WrongPassword => "Forbidden: wrong password",
                AccessDeniedReason::InviteInvalid => "Forbidden: the invite is not valid",
                AccessDeniedReason::NotAuthenticated => "Forbidden: this room needs a token",
                AccessDeniedReason::Removed => "Forbidden: removed from this room",
            },
        }
    }

    /// The body, `{"error": MESSAGE}`.
    pub fn body(self) -> SseErrorBody {
        SseErrorBody {
            error: self.message().to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_view_of_a_frame_is_the_view_of_its_envelope_for_every_golden_example() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../schemas/examples/ServerEnvelope");
        let mut seen = 0;
        for wire in ServerEnvelope::WIRE_TYPES {
            let path = dir.join(format!("{wire}.json"));
            let text = std::fs::read_to_string(&path).expect("every type has a golden example");
            let envelope: ServerEnvelope = serde_json::from_str(&text).expect("parses");
            // As the hub queues it: serde's compact text, `type` first.
            let frame = serde_json::to_string(&envelope).expect("serializes");
            let view = SseView::of(&envelope);
            assert_eq!(SseView::of_frame(&frame).expect("parses"), view, "{wire}");
            let listed = NO_SSE_FORM.contains(wire) || FORWARDED.contains(wire);
            let special = matches!(*wire, "server_users" | "user_joined" | "user_left");
            assert!(listed != special, "`{wire}` must be in exactly one list");
            assert_eq!(
                NO_SSE_FORM.contains(wire),
                view == SseView::Ignored,
                "{wire}"
            );
            assert_eq!(
                FORWARDED.contains(wire),
                matches!(view, SseView::Signal(_)),
                "{wire}"
            );
            seen += 1;
        }
        assert_eq!(seen, NO_SSE_FORM.len() + FORWARDED.len() + 3);
        // Text that does not lead with `type` still gets its view.
        let reordered = r#"{"oderId":"u","status":"away","type":"status_update"}"#;
        assert_eq!(
            SseView::of_frame(reordered).expect("parses"),
            SseView::Ignored
        );
    }

    #[test]
    fn rooms_are_trimmed_and_upper_cased() {
        assert_eq!(normalize_room(" agent-room "), "AGENT-ROOM");
        assert_eq!(normalize_room("AGENT-ROOM"), "AGENT-ROOM");
    }

    #[test]
    fn frames_are_event_then_one_data_line() {
        let event = SseEvent::Signal(SseSignal {
            sender: "a".into(),
            signal: serde_json::json!({"sdp": "v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\n"}),
        });
        let frame = event.to_frame().expect("serializes");
        assert!(frame.starts_with("event: signal\ndata: {"));
        assert!(frame.ends_with("}\n\n"));
        assert_eq!(
            frame.matches('\n').count(),
            3,
            "multi-line SDP stays on one data line"
        );
    }

    #[test]
    fn rooms_are_server_scopes_and_sessions_are_users() {
        assert_eq!(
            room_server_id(&normalize_room(" agent-room ")).0,
            "AGENT-ROOM"
        );
        assert_eq!(session_user_id(&SessionId::from("abc")).0, "abc");
    }

    #[test]
    fn typed_signals_become_envelopes_and_others_do_not() {
        let to = SessionId::from("ws-user");
        let offer = serde_json::json!({
            "type": "offer", "sdp": {"type": "offer", "sdp": "v=0"}, "fromUserId": "spoof", "x": 1
        });
        let envelope = signal_envelope(&to, &offer).expect("an offer");
        assert_eq!(envelope.wire_type(), "offer");
        let forwarded = envelope
            .into_forwarded(UserId::from("sse-agent"))
            .expect("forwarded");
        assert_eq!(forwarded.target_user_id.0, "ws-user");
        let delivered = serde_json::to_value(&forwarded.delivery).expect("json");
        assert_eq!(delivered["fromUserId"], "sse-agent");
        assert_eq!(delivered["x"], 1);
        for untyped in [
            serde_json::json!({"sdp": {"type": "offer", "sdp": "v=0"}}),
            serde_json::json!({"type": "agent-ping"}),
            serde_json::json!({"type": "join_server", "serverId": "X"}),
            serde_json::json!({"type": "offer"}),
            serde_json::json!("text"),
        ] {
            assert_eq!(signal_envelope(&to, &untyped), None, "{untyped}");
        }
    }

    #[test]
    fn forwarded_envelopes_become_signals_without_addressing() {
        let envelope: ServerEnvelope = serde_json::from_value(serde_json::json!({
            "type": "answer", "fromUserId": "ws-user", "targetUserId": "sse-agent",
            "sdp": {"type": "answer", "sdp": "v=0"}
        }))
        .expect("an answer");
        let SseView::Signal(signal) = SseView::of(&envelope) else {
            panic!("not a signal");
        };
        assert_eq!(signal.sender.0, "ws-user");
        assert_eq!(
            signal.signal,
            serde_json::json!({"type": "answer", "sdp": {"type": "answer", "sdp": "v=0"}})
        );
        let left: ServerEnvelope = serde_json::from_value(serde_json::json!({
            "type": "user_left", "serverId": "ROOM", "oderId": "ws-user"
        }))
        .expect("user_left");
        assert_eq!(
            SseView::of(&left),
            SseView::Left(ServerId::from("ROOM"), SessionId::from("ws-user"))
        );
    }

    #[test]
    fn raw_signals_keep_their_bytes_on_one_line() {
        let body = "{\"sender\":\"a\",\"signal\":{\"z\": 1,\n \"a\": \"x\\ny\"}}";
        #[derive(Deserialize)]
        struct Raw<'a> {
            #[serde(borrow)]
            signal: &'a serde_json::value::RawValue,
        }
        let raw: Raw<'_> = serde_json::from_str(body).expect("parses");
        let frame = SseEvent::raw_signal_frame(&"a".into(), raw.signal).expect("frame");
        assert_eq!(
            frame,
            "event: signal\ndata: {\"sender\":\"a\",\"signal\":{\"z\": 1,  \"a\": \"x\\ny\"}}\n\n"
        );
        let data: SseSignal = serde_json::from_str(
            frame
                .lines()
                .nth(1)
                .and_then(|l| l.strip_prefix("data: "))
                .expect("data"),
        )
        .expect("valid JSON");
        assert_eq!(data.signal, serde_json::json!({"z": 1, "a": "x\ny"}));
    }

    #[test]
    fn every_event_name_is_listed_once() {
        let change = || SseRosterChange { id: "a".into() };
        let events = [
            SseEvent::Joined(SseJoined {
                id: "a".into(),
                token: SessionToken("t".into()),
                ice_servers: Vec::new(),
            }),
            SseEvent::Roster(SseRoster(vec!["a".into()])),
            SseEvent::Signal(SseSignal {
                sender: "a".into(),
                signal: serde_json::json!({}),
            }),
            SseEvent::RosterJoined(change()),
            SseEvent::RosterLeft(change()),
        ];
        let names: Vec<&str> = events.iter().map(SseEvent::name).collect();
        assert_eq!(names, SseEvent::NAMES);
    }

    #[test]
    fn roster_changes_are_one_id_on_one_line() {
        let left = SseEvent::RosterLeft(SseRosterChange { id: "b-1".into() });
        assert_eq!(
            left.to_frame().expect("serializes"),
            "event: roster_left\ndata: {\"id\":\"b-1\"}\n\n"
        );
        let joined = SseEvent::RosterJoined(SseRosterChange { id: "b-1".into() });
        assert!(
            joined
                .to_frame()
                .expect("serializes")
                .starts_with("event: roster_joined\n")
        );
    }

    #[test]
    fn roster_modes_parse_exactly_their_wire_names() {
        assert_eq!(RosterMode::default(), RosterMode::Full);
        for mode in RosterMode::ALL {
            assert_eq!(RosterMode::from_wire(mode.wire()), Some(mode));
            let json = serde_json::to_value(mode).expect("serializes");
            assert_eq!(json, mode.wire(), "serde and the query agree");
        }
        for bad in ["", "Delta", "DELTA", " delta", "deltas", "none"] {
            assert_eq!(RosterMode::from_wire(bad), None, "{bad:?}");
        }
        let query: ConnectQuery =
            serde_json::from_value(serde_json::json!({"room": "r", "roster": "delta"}))
                .expect("parses");
        assert_eq!(query.roster, Some(RosterMode::Delta));
    }

    #[test]
    fn tokens_never_print() {
        let token = SessionToken("secret-value".into());
        assert!(!format!("{token:?}").contains("secret"));
    }
}
