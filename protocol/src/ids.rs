//! Identifier and timestamp newtypes.
//!
//! Every identifier is a string on the wire and a distinct type here, so a `ServerId` cannot be
//! passed where a `UserId` is expected. None of them is validated beyond being a string: Toju
//! clients choose their own `oderId` and server ids, and the server treats them as opaque.
//! Lengths are capped by the server's limits, not by these types.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// Declares a string identifier newtype with the usual conversions.
macro_rules! string_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema, TS)]
        #[serde(transparent)]
        #[schemars(transparent)]
        pub struct $name(pub String);

        impl $name {
            /// The identifier as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<String> for $name {
            fn from(value: String) -> Self {
                Self(value)
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                Self(value.to_owned())
            }
        }
    };
}

pub(crate) use string_id;

string_id! {
    /// A user's identity, spelled `oderId` on the wire (Toju's spelling, kept on purpose). Chosen
    /// by the client in `identify`, or a UUID made by the server when absent; one user may hold
    /// several connections (devices) under one `oderId`.
    UserId
}

/// The prefix of every guest [`UserId`] the server issues (`POST /api/auth/guest`). Ids with it
/// are owned by their token: a token-less `identify` may not claim one.
pub const GUEST_ID_PREFIX: &str = "guest-";

/// The prefix of every [`UserId`] bound to an Ed25519 key (`POST /api/auth/verify`); owned by the
/// key's tokens like [`GUEST_ID_PREFIX`] ids.
pub const KEY_ID_PREFIX: &str = "key-";

string_id! {
    /// One WebSocket connection, a UUID assigned by the server and announced in `connected`.
    ConnectionId
}

string_id! {
    /// A chat server (Toju's "server": a community with members, not a machine).
    ServerId
}

string_id! {
    /// A text channel inside a chat server; opaque to signalbox.
    ChannelId
}

string_id! {
    /// A plugin registered for a chat server.
    PluginId
}

string_id! {
    /// Correlates an `rpc_request` with its `rpc_response` (and with an error about it). Chosen
    /// by the calling client.
    RequestId
}

/// Milliseconds since the Unix epoch. A JSON number on the wire and `number` in TypeScript:
/// values stay below 2^53, so they are exact in JavaScript.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema, TS,
)]
#[serde(transparent)]
#[schemars(transparent)]
pub struct TimestampMs(#[ts(type = "number")] pub i64);

impl TimestampMs {
    /// The current time, read from the system clock.
    ///
    /// A clock before 1970 reads as 0 rather than failing: a timestamp is informational.
    pub fn now() -> Self {
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        Self(millis)
    }
}
