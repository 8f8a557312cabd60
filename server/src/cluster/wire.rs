//! The backplane's wire message: what one node publishes and another decodes.
//!
//! Owns: the versioned binary layout below, its encoder and its decoder. The Lua scripts
//! encode the same layout (`lua/common.lua`, `encode`) for the roster events they publish.
//!
//! Never: panics on untrusted bytes (anything on a channel may come from a foreign or newer
//! publisher: every length is checked, every error is a [`DecodeError`]), parses the frame
//! (the payload is pre-serialized client JSON, handed on as it came).
//!
//! Layout (all integers big-endian):
//! ```text
//! 0      magic 0x53 ('S')
//! 1      format version (1)
//! 2      kind (1 broadcast, 2 forward, 3 user joined, 4 user left, 5 status, 6 devices,
//!        7 relay, 8 relay reply, 9 raw signal, 10 takeover, 11 withdraw)
//! 3..11  roster version (u64; 0 when the kind has none)
//! 11..19 change id (u64; status: the change; relay/reply/takeover: the correlation id)
//! u8  len + origin node id
//! u16 len + server id   (empty for a forward; raw signal: the sending SSE session)
//! u16 len + user id     (broadcast: the sender, excluded from fan-out; forward: the target;
//!                        joined/left/status: the member; devices: the user; relay, raw
//!                        signal, takeover: the SSE session on the receiving node;
//!                        withdraw: the user, empty when not one user's)
//! rest   payload        (broadcast/forward: the frame; joined/status: the roster entry JSON;
//!                        relay: the request; relay reply: the result; raw signal: the event;
//!                        withdraw: the order, `cluster::withdraw`)
//! ```

use bytes::{BufMut, Bytes, BytesMut};
use thiserror::Error;

/// First byte of every message.
pub const MAGIC: u8 = 0x53;
/// The layout version this build writes and reads.
pub const FORMAT_VERSION: u8 = 1;
/// Bytes before the variable-length fields.
const FIXED: usize = 19;

/// What a message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A frame for every member of a server but the sender (on the server channel).
    Broadcast = 1,
    /// A frame for every connection of one user (on a node channel).
    Forward = 2,
    /// A user joined a server's roster (published by `join.lua`).
    UserJoined = 3,
    /// A user left a server's roster (published by `leave.lua` and the reaper).
    UserLeft = 4,
    /// A member's roster entry changed (published by `status.lua`, one copy per server under
    /// one change id; the payload is the new entry).
    Status = 5,
    /// A node registered or dropped a user also held by the receiving node (published by
    /// `identify.lua` on the receiver's node channel; payload `1` present, `0` gone).
    Devices = 6,
    /// An SSE request for a session whose stream the receiving node holds (change id: the
    /// correlation id; origin: the node awaiting the answer; user: the session; payload: the
    /// request, opaque here).
    Relay = 7,
    /// The answer to a [`Kind::Relay`] or [`Kind::Takeover`] (change id: the correlation
    /// id; payload: the result, opaque here).
    RelayReply = 8,
    /// A signal for an SSE session on the receiving node, delivered to its stream as it came
    /// (server: the sending session; user: the target session; payload: the raw event).
    RawSignal = 9,
    /// A resume landed on another node: the receiver drops the session and answers its
    /// state in a [`Kind::RelayReply`] (change id: the correlation id; user: the session).
    Takeover = 10,
    /// Access to a server was withdrawn on the publishing node (on the withdraw channel every
    /// node subscribes to; server: the server; user: the user or empty; payload: the order's
    /// scope and reason, parsed by `cluster::withdraw`).
    Withdraw = 11,
}

impl Kind {
    fn from_byte(b: u8) -> Result<Self, DecodeError> {
        Ok(match b {
            1 => Self::Broadcast,
            2 => Self::Forward,
            3 => Self::UserJoined,
            4 => Self::UserLeft,
            5 => Self::Status,
            6 => Self::Devices,
            7 => Self::Relay,
            8 => Self::RelayReply,
            9 => Self::RawSignal,
            10 => Self::Takeover,
            11 => Self::Withdraw,
            other => return Err(DecodeError::UnknownKind(other)),
        })
    }
}

/// One decoded message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// What it is.
    pub kind: Kind,
    /// The node that published it.
    pub origin: String,
    /// The roster version after this change (roster events), else 0.
    pub roster_version: u64,
    /// A change id (status changes spanning servers), else 0.
    pub change_id: u64,
    /// The server concerned (empty for forwards).
    pub server: String,
    /// The user concerned (see the layout in the module doc).
    pub user: String,
    /// The pre-serialized frame or roster entry.
    pub payload: Bytes,
}

/// Why bytes are not a message.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// Shorter than the fixed header.
    #[error("message shorter than its header")]
    TooShort,
    /// The first byte is not [`MAGIC`].
    #[error("not a backplane message")]
    BadMagic,
    /// A layout this build does not read.
    #[error("unsupported format version {0}")]
    UnsupportedVersion(u8),
    /// A kind this build does not know.
    #[error("unknown kind {0}")]
    UnknownKind(u8),
    /// A length runs past the end.
    #[error("{0} runs past the end")]
    Truncated(&'static str),
    /// An id is not UTF-8.
    #[error("{0} is not UTF-8")]
    NotUtf8(&'static str),
}

/// Why a message cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{0} is longer than the wire allows")]
pub struct TooLong(pub &'static str);

impl Message {
    /// Encodes the message (ids longer than their length fields are refused).
    pub fn encode(&self) -> Result<Bytes, TooLong> {
        let origin = u8::try_from(self.origin.len()).map_err(|_| TooLong("origin"))?;
        let server = u16::try_from(self.server.len()).map_err(|_| TooLong("server"))?;
        let user = u16::try_from(self.user.len()).map_err(|_| TooLong("user"))?;
        let mut out = BytesMut::with_capacity(
            FIXED
                + 5
                + self.origin.len()
                + self.server.len()
                + self.user.len()
                + self.payload.len(),
        );
        out.put_u8(MAGIC);
        out.put_u8(FORMAT_VERSION);
        out.put_u8(self.kind as u8);
        out.put_u64(self.roster_version);
        out.put_u64(self.change_id);
        out.put_u8(origin);
        out.put_slice(self.origin.as_bytes());
        out.put_u16(server);
        out.put_slice(self.server.as_bytes());
        out.put_u16(user);
        out.put_slice(self.user.as_bytes());
        out.put_slice(&self.payload);
        Ok(out.freeze())
    }

    /// Decodes untrusted bytes; the payload shares `bytes`' buffer.
    pub fn decode(bytes: Bytes) -> Result<Self, DecodeError> {
        if bytes.len() < FIXED {
            return Err(DecodeError::TooShort);
        }
        if bytes[0] != MAGIC {
            return Err(DecodeError::BadMagic);
        }
        if bytes[1] != FORMAT_VERSION {
            return Err(DecodeError::UnsupportedVersion(bytes[1]));
        }
        let kind = Kind::from_byte(bytes[2])?;
        let roster_version = read_u64(&bytes[3..11]);
        let change_id = read_u64(&bytes[11..19]);
        let mut at = FIXED;
        let origin_len = usize::from(*bytes.get(at).ok_or(DecodeError::Truncated("origin"))?);
        at += 1;
        let origin = text(&bytes, &mut at, origin_len, "origin")?;
        let server_len = read_len(&bytes, &mut at, "server")?;
        let server = text(&bytes, &mut at, server_len, "server")?;
        let user_len = read_len(&bytes, &mut at, "user")?;
        let user = text(&bytes, &mut at, user_len, "user")?;
        Ok(Self {
            kind,
            origin,
            roster_version,
            change_id,
            server,
            user,
            payload: bytes.slice(at..),
        })
    }
}

fn read_u64(b: &[u8]) -> u64 {
    let mut buf = [0u8; 8];
    buf.copy_from_slice(b);
    u64::from_be_bytes(buf)
}

fn read_len(bytes: &[u8], at: &mut usize, field: &'static str) -> Result<usize, DecodeError> {
    let b = bytes
        .get(*at..*at + 2)
        .ok_or(DecodeError::Truncated(field))?;
    *at += 2;
    Ok(usize::from(u16::from_be_bytes([b[0], b[1]])))
}

fn text(
    bytes: &[u8],
    at: &mut usize,
    len: usize,
    field: &'static str,
) -> Result<String, DecodeError> {
    let raw = bytes
        .get(*at..*at + len)
        .ok_or(DecodeError::Truncated(field))?;
    *at += len;
    String::from_utf8(raw.to_vec()).map_err(|_| DecodeError::NotUtf8(field))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn kind() -> impl Strategy<Value = Kind> {
        prop_oneof![
            Just(Kind::Broadcast),
            Just(Kind::Forward),
            Just(Kind::UserJoined),
            Just(Kind::UserLeft),
            Just(Kind::Status),
            Just(Kind::Devices),
            Just(Kind::Relay),
            Just(Kind::RelayReply),
            Just(Kind::RawSignal),
            Just(Kind::Takeover),
            Just(Kind::Withdraw)
        ]
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(raw in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = Message::decode(Bytes::from(raw));
        }

        #[test]
        fn a_valid_header_with_random_tail_never_panics(
            k in 1u8..=11,
            tail in proptest::collection::vec(any::<u8>(), 0..128),
        ) {
            let mut raw = vec![MAGIC, FORMAT_VERSION, k];
            raw.extend_from_slice(&[0; 16]);
            raw.extend_from_slice(&tail);
            let _ = Message::decode(Bytes::from(raw));
        }

        #[test]
        fn encode_then_decode_is_identity(
            kind in kind(),
            origin in "[a-z0-9-]{1,64}",
            server in "\\PC{0,40}",
            user in "\\PC{0,40}",
            roster_version in any::<u64>(),
            change_id in any::<u64>(),
            payload in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            let m = Message { kind, origin, roster_version, change_id, server, user, payload: Bytes::from(payload) };
            let encoded = m.encode().map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(Message::decode(encoded), Ok(m));
        }

        #[test]
        fn every_strict_prefix_of_a_message_is_refused_or_shorter(
            user in "[a-z]{1,20}",
            cut in 0usize..40,
        ) {
            let m = Message { kind: Kind::Forward, origin: "n1".into(), roster_version: 0, change_id: 0, server: String::new(), user, payload: Bytes::new() };
            let full = m.encode().map_err(|e| TestCaseError::fail(e.to_string()))?;
            let cut = cut.min(full.len().saturating_sub(1));
            prop_assert!(Message::decode(full.slice(..cut)).is_err());
        }
    }

    #[test]
    fn foreign_and_future_messages_are_refused_by_name() {
        let m = Message {
            kind: Kind::UserLeft,
            origin: "n".into(),
            roster_version: 7,
            change_id: 0,
            server: "s".into(),
            user: "u".into(),
            payload: Bytes::new(),
        };
        let good = m.encode().expect("encodes").to_vec();
        let mut bad = good.clone();
        bad[0] = b'{';
        assert_eq!(Message::decode(bad.into()), Err(DecodeError::BadMagic));
        let mut bad = good.clone();
        bad[1] = 2;
        assert_eq!(
            Message::decode(bad.into()),
            Err(DecodeError::UnsupportedVersion(2))
        );
        for unknown in [0, 12, 255] {
            let mut bad = good.clone();
            bad[2] = unknown;
            assert_eq!(
                Message::decode(bad.into()),
                Err(DecodeError::UnknownKind(unknown))
            );
        }
    }

    #[test]
    fn ids_too_long_for_their_field_are_refused() {
        let m = Message {
            kind: Kind::Forward,
            origin: "n".repeat(256),
            roster_version: 0,
            change_id: 0,
            server: String::new(),
            user: "u".into(),
            payload: Bytes::new(),
        };
        assert_eq!(m.encode(), Err(TooLong("origin")));
    }
}
