//! The envelopes the cluster glue hands to local members, built from what Redis carries
//! (roster entries are `UserSummary` JSON made by the hub) with the protocol's own
//! `ServerEnvelope` types and serialized as the hub serializes its own: a cross-node
//! `user_joined`, `user_left`, `status_update` or `server_users` is byte for byte what
//! standalone sends for the same event.
//!
//! Owns: parsing roster entries and building those four frames. Pure: no I/O, no locks.
//!
//! Never: writes JSON by hand, or passes on an entry that is not a `UserSummary` (a foreign
//! or corrupt entry is skipped, and logged at debug level without its content).

use signalbox_protocol::ws::{
    ServerUsers, StatusUpdateBroadcast, UserJoined, UserLeft, UserSummary,
};
use signalbox_protocol::{ServerEnvelope, ServerId, UserId};

use crate::hub::Frame;

/// A roster entry as the hub wrote it.
pub fn summary(entry: &[u8]) -> Option<UserSummary> {
    match serde_json::from_slice(entry) {
        Ok(summary) => Some(summary),
        Err(error) => {
            tracing::debug!(%error, "cluster: a roster entry is not a UserSummary; skipped");
            None
        }
    }
}

fn frame(envelope: &ServerEnvelope) -> Option<Frame> {
    Frame::from_envelope(envelope).ok()
}

/// `user_joined` of the user whose roster entry is `entry`.
pub fn user_joined(server: &ServerId, entry: &[u8]) -> Option<Frame> {
    frame(&ServerEnvelope::UserJoined(UserJoined {
        server_id: server.clone(),
        user: summary(entry)?,
    }))
}

/// `user_left` of `user`, with the display name of its last roster entry when there is one.
pub fn user_left(server: &ServerId, user: &UserId, entry: &[u8]) -> Option<Frame> {
    let display_name = (!entry.is_empty())
        .then(|| summary(entry))
        .flatten()
        .map(|s| s.display_name);
    frame(&ServerEnvelope::UserLeft(UserLeft {
        server_id: server.clone(),
        oder_id: user.clone(),
        display_name,
    }))
}

/// `status_update` of the user whose new roster entry is `entry`.
pub fn status_update(entry: &[u8]) -> Option<Frame> {
    let summary = summary(entry)?;
    frame(&ServerEnvelope::StatusUpdate(StatusUpdateBroadcast {
        oder_id: summary.oder_id,
        status: summary.status,
    }))
}

/// `server_users` listing the users of `entries`.
pub fn server_users<'a>(
    server: &ServerId,
    entries: impl IntoIterator<Item = &'a [u8]>,
) -> Option<Frame> {
    frame(&ServerEnvelope::ServerUsers(ServerUsers {
        server_id: server.clone(),
        users: entries.into_iter().filter_map(summary).collect(),
    }))
}

#[cfg(test)]
mod tests {
    use signalbox_protocol::{TimestampMs, UserStatus};

    use super::*;

    fn ada() -> UserSummary {
        UserSummary {
            oder_id: UserId::from("ada"),
            display_name: "Ada".into(),
            description: Some("notes".into()),
            status: UserStatus::Away,
            profile_updated_at: Some(TimestampMs(5)),
            connection_scope: None,
        }
    }

    fn entry() -> Vec<u8> {
        serde_json::to_vec(&ada()).expect("entry")
    }

    fn standalone(envelope: ServerEnvelope) -> String {
        Frame::from_envelope(&envelope)
            .expect("frame")
            .as_str()
            .to_owned()
    }

    #[test]
    fn each_frame_is_the_standalone_serialization_of_the_same_event() {
        let server = ServerId::from("s");
        assert_eq!(
            user_joined(&server, &entry()).expect("joined").as_str(),
            standalone(ServerEnvelope::UserJoined(UserJoined {
                server_id: server.clone(),
                user: ada(),
            }))
        );
        assert_eq!(
            user_left(&server, &UserId::from("ada"), &entry())
                .expect("left")
                .as_str(),
            standalone(ServerEnvelope::UserLeft(UserLeft {
                server_id: server.clone(),
                oder_id: UserId::from("ada"),
                display_name: Some("Ada".into()),
            }))
        );
        assert_eq!(
            status_update(&entry()).expect("status").as_str(),
            standalone(ServerEnvelope::StatusUpdate(StatusUpdateBroadcast {
                oder_id: UserId::from("ada"),
                status: UserStatus::Away,
            }))
        );
        let e = entry();
        assert_eq!(
            server_users(&server, [e.as_slice()])
                .expect("users")
                .as_str(),
            standalone(ServerEnvelope::ServerUsers(ServerUsers {
                server_id: server,
                users: vec![ada()],
            }))
        );
    }

    #[test]
    fn user_joined_has_the_users_fields_at_the_top_level() {
        let text = user_joined(&ServerId::from("s"), &entry()).expect("joined");
        let value: serde_json::Value = serde_json::from_str(text.as_str()).expect("json");
        assert_eq!(value["type"], "user_joined");
        assert_eq!(value["oderId"], "ada");
        assert_eq!(value["displayName"], "Ada");
        assert!(value.get("user").is_none(), "{value}");
    }

    #[test]
    fn a_corrupt_entry_is_skipped_and_a_missing_one_leaves_the_name_out() {
        let server = ServerId::from("s");
        assert!(user_joined(&server, b"{\"userId\":1}").is_none());
        assert!(status_update(b"not json").is_none());
        let e = entry();
        let users = server_users(&server, [b"[]".as_slice(), e.as_slice()]).expect("users");
        assert!(users.as_str().contains("\"oderId\":\"ada\""));
        let left = user_left(&server, &UserId::from("ada"), b"").expect("left");
        assert!(!left.as_str().contains("displayName"));
    }
}
