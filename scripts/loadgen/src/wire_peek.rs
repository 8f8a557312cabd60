//! Reading the server's frames cheaply, for the fan-out scenarios: a frame's `type` and a chat
//! probe's `seq` without parsing the whole envelope.
//!
//! Owns: [`wire_type`], [`chat_seq`] and [`join_lean`]. Never: decides what a scenario
//! measures, or accepts a frame it cannot read (anything unexpected falls back to a full
//! parse, so a change of the server's byte layout makes these slower, never wrong).
//!
//! Why: one generator process reads every copy of a fan-out to thousands of members on the
//! same two cores as the server. Parsing each copy into a `ServerEnvelope` (and, while 5,000
//! members join, 12.5 M `user_joined` frames and 5,000 rosters of up to 5,000 users) made the
//! generator, not the server, the slowest part of the measurement.

use futures_util::StreamExt;
use signalbox_protocol::ws::JoinServer;
use signalbox_protocol::{ClientEnvelope, ServerEnvelope, ServerId};
use tokio_tungstenite::tungstenite::Message;

use crate::client::Client;

/// The `type` of a serialized server envelope: read from its first field (the server writes
/// the tag first), else from a full parse. `None` when the text is not an envelope.
pub fn wire_type(text: &str) -> Option<String> {
    const HEAD: &str = r#"{"type":""#;
    if let Some(rest) = text.strip_prefix(HEAD)
        && let Some(end) = rest.find('"')
        && !rest[..end].contains('\\')
    {
        return Some(rest[..end].to_owned());
    }
    #[derive(serde::Deserialize)]
    struct Tag {
        r#type: String,
    }
    serde_json::from_str::<Tag>(text).ok().map(|tag| tag.r#type)
}

/// The `message.seq` of a `chat_message` frame, or `None` for any other frame. Reads the
/// digits after the only `"seq":` the probe's text has (member names and the probe's content
/// never contain it); a frame where that does not hold is parsed in full.
pub fn chat_seq(text: &str) -> Option<u64> {
    if !text.starts_with(r#"{"type":"chat_message""#) {
        return None;
    }
    const KEY: &str = r#""seq":"#;
    if let Some(at) = text.find(KEY)
        && text[at + KEY.len()..].find(KEY).is_none()
    {
        let digits: &str = &text[at + KEY.len()..];
        let end = digits
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(digits.len());
        if let Ok(seq) = digits[..end].parse() {
            return Some(seq);
        }
    }
    match serde_json::from_str(text).ok()? {
        ServerEnvelope::ChatMessage(chat) => chat.message.get("seq")?.as_u64(),
        _ => None,
    }
}

/// Joins `server_id` and waits for its roster, skipping every other frame by its type alone
/// (the roster itself is not parsed: its `type` is all that is needed).
pub async fn join_lean(client: &mut Client, server_id: &str) -> Result<(), String> {
    client
        .send(&ClientEnvelope::JoinServer(JoinServer {
            server_id: ServerId::from(server_id),
            password: None,
            invite_code: None,
        }))
        .await?;
    loop {
        match client.stream.next().await {
            Some(Ok(Message::Text(text))) => match wire_type(&text).as_deref() {
                Some("server_users") => return Ok(()),
                Some("access_denied" | "error") => return Err(format!("join refused: {text}")),
                _ => {}
            },
            Some(Ok(Message::Close(frame))) => return Err(format!("closed by server: {frame:?}")),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(format!("receive: {e}")),
            None => return Err("connection ended".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use signalbox_protocol::json::JsonObject;
    use signalbox_protocol::ws::ChatMessageBroadcast;
    use signalbox_protocol::{TimestampMs, UserId};

    fn chat(message: JsonObject) -> String {
        serde_json::to_string(&ServerEnvelope::ChatMessage(ChatMessageBroadcast {
            server_id: ServerId::from("bench"),
            message,
            sender_id: UserId::from("fan-0"),
            sender_name: "fan-0".into(),
            timestamp: TimestampMs(1_700_000_000_000),
        }))
        .expect("serializes")
    }

    #[test]
    fn the_type_is_read_from_the_first_field_or_a_full_parse() {
        let text = chat(JsonObject::new());
        assert_eq!(wire_type(&text).as_deref(), Some("chat_message"));
        assert_eq!(
            wire_type(r#"{ "serverId": "x", "type": "user_left" }"#).as_deref(),
            Some("user_left")
        );
        assert_eq!(wire_type("not json"), None);
    }

    #[test]
    fn a_chat_probe_seq_is_read_from_the_server_bytes() {
        for seq in [0u64, 7, 123_456] {
            let mut message = JsonObject::new();
            message.insert("seq".into(), json!(seq));
            message.insert("content".into(), json!("fan-out probe"));
            assert_eq!(chat_seq(&chat(message)), Some(seq));
        }
    }

    #[test]
    fn other_frames_and_ambiguous_probes_are_not_misread() {
        assert_eq!(chat_seq(r#"{"type":"user_joined","seq":3}"#), None);
        let mut message = JsonObject::new();
        message.insert("seq".into(), json!(5));
        message.insert("content".into(), json!("\"seq\":9"));
        assert_eq!(chat_seq(&chat(message)), Some(5), "falls back to a parse");
        let mut message = JsonObject::new();
        message.insert("seq".into(), json!("five"));
        assert_eq!(chat_seq(&chat(message)), None);
    }
}
