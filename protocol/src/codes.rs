//! Error codes, close codes and the enumerations clients switch on.
//!
//! Each code is defined here once; the server sends these values, the generated TypeScript and
//! JSON Schema list them, and the docs are generated from the doc comments.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// A user's presence as shown to others.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema, TS,
)]
#[serde(rename_all = "lowercase")]
pub enum UserStatus {
    /// Connected and active (the status a user has after `identify`).
    #[default]
    Online,
    /// Connected but idle.
    Away,
    /// Connected, asks not to be disturbed.
    Busy,
    /// Appears offline to others while still connected.
    Offline,
}

/// The code of an `error` envelope. The socket stays open after every one of them except where
/// a close code is named; a client can switch on these without parsing `message`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    /// The frame is not JSON, not an object, has no `type`, or a known type has a missing or
    /// wrongly typed field (the message names it by its JSON path, with the expected type), or a
    /// text field breaks the display-text rule: names and ids refuse control characters (Unicode
    /// `Cc`); multi-line text allows only line feed, carriage return and tab among them.
    InvalidMessage,
    /// The `type` is not one this server knows; `requestType` carries it.
    UnknownType,
    /// Only `identify` and `keepalive` are accepted before `identify`.
    NotIdentified,
    /// The per-connection token bucket is empty; sustained abuse closes with 1008.
    RateLimited,
    /// The target user of a forwarded envelope has no open connection.
    TargetNotFound,
    /// The sender may not do this: the target shares no server with it, or the sender has not
    /// joined the server it addresses.
    Forbidden,
    /// The token is malformed, forged, or names an identity it cannot claim; close 4001 follows.
    AuthInvalid,
    /// The token has expired; close 4001 follows.
    AuthExpired,
    /// A `plugin_event` was refused: plugin not registered, event not declared, payload too
    /// large or not valid against the event's schema (the message says which, with the path).
    InvalidPluginEvent,
    /// The server failed to handle a valid request (a database error, say); retrying may help.
    InternalError,
    /// A per-connection bound was reached: too many servers joined or viewed at once by this
    /// connection (the message names the operator's setting). Leave one first.
    LimitExceeded,
    /// Cluster mode: the request needs another node and the nodes cannot reach each other right
    /// now (the Redis backplane is down, or its queue is full). Nothing was delivered to other
    /// nodes; local delivery is unaffected. Retrying later may help.
    Unavailable,
}

impl ErrorCode {
    /// The wire spelling, e.g. `"NOT_IDENTIFIED"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::InvalidMessage => "INVALID_MESSAGE",
            Self::UnknownType => "UNKNOWN_TYPE",
            Self::NotIdentified => "NOT_IDENTIFIED",
            Self::RateLimited => "RATE_LIMITED",
            Self::TargetNotFound => "TARGET_NOT_FOUND",
            Self::Forbidden => "FORBIDDEN",
            Self::AuthInvalid => "AUTH_INVALID",
            Self::AuthExpired => "AUTH_EXPIRED",
            Self::InvalidPluginEvent => "INVALID_PLUGIN_EVENT",
            Self::InternalError => "INTERNAL_ERROR",
            Self::LimitExceeded => "LIMIT_EXCEEDED",
            Self::Unavailable => "UNAVAILABLE",
        }
    }

    /// Every code, in declaration order.
    pub const ALL: [Self; 12] = [
        Self::InvalidMessage,
        Self::UnknownType,
        Self::NotIdentified,
        Self::RateLimited,
        Self::TargetNotFound,
        Self::Forbidden,
        Self::AuthInvalid,
        Self::AuthExpired,
        Self::InvalidPluginEvent,
        Self::InternalError,
        Self::LimitExceeded,
        Self::Unavailable,
    ];
}

/// Why a `join_server` or `view_server` was refused (`access_denied.reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "snake_case")]
pub enum AccessDeniedReason {
    /// No server with that id exists.
    NotFound,
    /// The user is banned from the server.
    Banned,
    /// The server is private and the user is not its owner, a moderator or a member.
    Private,
    /// The server has a password and none was given.
    PasswordRequired,
    /// The password given is wrong.
    WrongPassword,
    /// The invite code is unknown, expired, revoked or used up, or belongs to another server.
    InviteInvalid,
    /// The server admits only authenticated users and the connection has no valid token.
    NotAuthenticated,
    /// The user's membership was removed (kicked, or they left through the REST API): the
    /// connection was taken out of the server's live room.
    Removed,
}

impl AccessDeniedReason {
    /// Every reason, in declaration order (a test checks none is missing).
    pub const ALL: [Self; 8] = [
        Self::NotFound,
        Self::Banned,
        Self::Private,
        Self::PasswordRequired,
        Self::WrongPassword,
        Self::InviteInvalid,
        Self::NotAuthenticated,
        Self::Removed,
    ];
}

/// WebSocket close codes signalbox sends. They travel in the close frame, not in JSON; they are
/// exported to TypeScript as constants (`CLOSE_CODES`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseCode {
    /// 1001: the server is shutting down gracefully; reconnect later.
    GoingAway,
    /// 1002: the client broke the WebSocket protocol (RFC 6455): reserved bits or opcodes, a
    /// fragmented or oversized control frame, a stray continuation, an unmasked frame, a
    /// malformed close frame.
    ProtocolError,
    /// 1007: a text frame or a close reason was not valid UTF-8.
    InvalidPayload,
    /// 1008: policy violation, such as sustained rate-limit abuse.
    PolicyViolation,
    /// 1009: a frame exceeded the configured maximum size.
    MessageTooBig,
    /// 4000: the major version the client asked for with `?v=` is not supported.
    UnsupportedVersion,
    /// 4001: authentication failed (`AUTH_INVALID` or `AUTH_EXPIRED` was sent first).
    AuthFailed,
    /// 4002: the connection was silent for longer than the heartbeat timeout.
    HeartbeatTimeout,
    /// 4008: the client did not read fast enough and its outbound queue filled up.
    SlowConsumer,
}

impl CloseCode {
    /// Every close code, in numeric order.
    pub const ALL: [Self; 9] = [
        Self::GoingAway,
        Self::ProtocolError,
        Self::InvalidPayload,
        Self::PolicyViolation,
        Self::MessageTooBig,
        Self::UnsupportedVersion,
        Self::AuthFailed,
        Self::HeartbeatTimeout,
        Self::SlowConsumer,
    ];

    /// The numeric code sent in the close frame.
    pub const fn code(self) -> u16 {
        match self {
            Self::GoingAway => 1001,
            Self::ProtocolError => 1002,
            Self::InvalidPayload => 1007,
            Self::PolicyViolation => 1008,
            Self::MessageTooBig => 1009,
            Self::UnsupportedVersion => 4000,
            Self::AuthFailed => 4001,
            Self::HeartbeatTimeout => 4002,
            Self::SlowConsumer => 4008,
        }
    }

    /// The constant's name in the generated bindings, e.g. `"HEARTBEAT_TIMEOUT"`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::GoingAway => "GOING_AWAY",
            Self::ProtocolError => "PROTOCOL_ERROR",
            Self::InvalidPayload => "INVALID_PAYLOAD",
            Self::PolicyViolation => "POLICY_VIOLATION",
            Self::MessageTooBig => "MESSAGE_TOO_BIG",
            Self::UnsupportedVersion => "UNSUPPORTED_VERSION",
            Self::AuthFailed => "AUTH_FAILED",
            Self::HeartbeatTimeout => "HEARTBEAT_TIMEOUT",
            Self::SlowConsumer => "SLOW_CONSUMER",
        }
    }

    /// The close frame's reason text (kept short: a close reason has at most 123 bytes).
    pub const fn reason(self) -> &'static str {
        match self {
            Self::GoingAway => "server shutting down",
            Self::ProtocolError => "protocol error",
            Self::InvalidPayload => "invalid UTF-8",
            Self::PolicyViolation => "policy violation",
            Self::MessageTooBig => "frame too large",
            Self::UnsupportedVersion => "unsupported protocol version",
            Self::AuthFailed => "authentication failed",
            Self::HeartbeatTimeout => "heartbeat timeout",
            Self::SlowConsumer => "slow consumer",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_code_spelling_matches_serde() {
        for code in ErrorCode::ALL {
            let json = serde_json::to_value(code).expect("serializes");
            assert_eq!(json, serde_json::Value::String(code.as_str().to_owned()));
        }
    }

    #[test]
    fn every_access_denied_reason_is_listed_once() {
        // A new variant fails to compile here until it is handled, and then fails the count.
        let index = |reason: AccessDeniedReason| match reason {
            AccessDeniedReason::NotFound => 0,
            AccessDeniedReason::Banned => 1,
            AccessDeniedReason::Private => 2,
            AccessDeniedReason::PasswordRequired => 3,
            AccessDeniedReason::WrongPassword => 4,
            AccessDeniedReason::InviteInvalid => 5,
            AccessDeniedReason::NotAuthenticated => 6,
            AccessDeniedReason::Removed => 7,
        };
        let indexes: Vec<usize> = AccessDeniedReason::ALL.into_iter().map(index).collect();
        assert_eq!(
            indexes,
            (0..AccessDeniedReason::ALL.len()).collect::<Vec<_>>()
        );
    }

    #[test]
    fn close_codes_are_distinct_and_reasons_fit_a_close_frame() {
        let mut codes: Vec<u16> = CloseCode::ALL.iter().map(|c| c.code()).collect();
        codes.dedup();
        assert_eq!(codes.len(), CloseCode::ALL.len());
        assert!(
            codes.windows(2).all(|w| w[0] < w[1]),
            "ALL is in numeric order"
        );
        for code in CloseCode::ALL {
            assert!(code.reason().len() <= 123);
        }
    }
}
