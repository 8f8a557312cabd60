//! The SSE transport: rooms over Server-Sent Events and plain POSTs, wire-exact with the service
//! the SSE example clients were written for.
//!
//! A client opens `GET /api/connect?room=NAME` and receives [`SseEvent`]s; it sends with
//! `POST /api/signal` ([`SignalRequest`]) and leaves with `POST /api/leave` ([`LeaveRequest`]).
//! Room names are trimmed and upper-cased ([`normalize_room`]). Errors keep this transport's own
//! body shape, [`SseErrorBody`], with the fixed messages of [`SseError`].

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::ids::string_id;
use crate::json::JsonValue;

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
    #[ts(optional)]
    pub credential: Option<String>,
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
/// member whenever membership changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(transparent)]
#[schemars(transparent)]
pub struct SseRoster(pub Vec<SessionId>);

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
}

/// The comment frame sent every keepalive interval to keep proxies from closing the stream.
pub const KEEPALIVE_FRAME: &str = ": keepalive\n\n";

impl SseEvent {
    /// Every SSE event name, in declaration order.
    pub const NAMES: &'static [&'static str] = &["joined", "roster", "signal"];

    /// The event's name (the `event:` line).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Joined(_) => "joined",
            Self::Roster(_) => "roster",
            Self::Signal(_) => "signal",
        }
    }

    /// The event's data as one line of JSON.
    pub fn data_json(&self) -> Result<String, serde_json::Error> {
        match self {
            Self::Joined(data) => serde_json::to_string(data),
            Self::Roster(data) => serde_json::to_string(data),
            Self::Signal(data) => serde_json::to_string(data),
        }
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
    /// 429: the sender's token bucket is empty.
    RateLimited,
    /// 503: the room or the server is full.
    Full,
}

impl SseError {
    /// Every SSE error, in status order.
    pub const ALL: [Self; 6] = [
        Self::MissingParameters,
        Self::InvalidToken,
        Self::TargetNotInRoom,
        Self::BodyTooLarge,
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
            Self::RateLimited => 429,
            Self::Full => 503,
        }
    }

    /// The fixed message in the body.
    pub const fn message(self) -> &'static str {
        match self {
            Self::MissingParameters => "Missing required parameters",
            Self::InvalidToken => "Unauthorized: invalid session token",
            Self::TargetNotInRoom => "Not Found: target is not in the room",
            Self::BodyTooLarge => "Payload Too Large: request body exceeds the limit",
            Self::RateLimited => "Too Many Requests: signaling rate limit exceeded",
            Self::Full => "Service Unavailable: room or server is full",
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
    fn tokens_never_print() {
        let token = SessionToken("secret-value".into());
        assert!(!format!("{token:?}").contains("secret"));
    }
}
