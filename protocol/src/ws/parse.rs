//! Parsing a client's frame into a [`ClientEnvelope`], with the error the protocol prescribes.
//!
//! websocket.md fixes the classification: a frame that is not JSON, not an object or has no
//! string `type` is `INVALID_MESSAGE`; an unknown `type` is `UNKNOWN_TYPE`; a known type with a
//! missing or wrongly typed field is `INVALID_MESSAGE` naming the field. The connection stays
//! open in every case. This module is the one place that decides which; transports only call
//! [`parse_client_frame`].

mod tag_first;

use serde::Deserialize;
use serde_json::Value;

use super::ClientEnvelope;
use crate::codes::ErrorCode;
use crate::ws::ErrorEvent;

/// Why a client frame was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameError {
    /// `INVALID_MESSAGE` or `UNKNOWN_TYPE`.
    pub code: ErrorCode,
    /// What is wrong, naming the field when one is at fault.
    pub message: String,
    /// The frame's `type`, when it had a string one.
    pub request_type: Option<String>,
}

impl FrameError {
    fn invalid(message: impl Into<String>, request_type: Option<String>) -> Self {
        Self {
            code: ErrorCode::InvalidMessage,
            message: message.into(),
            request_type,
        }
    }

    /// The `error` envelope that reports this to the client.
    pub fn to_event(&self) -> ErrorEvent {
        ErrorEvent {
            code: self.code,
            message: self.message.clone(),
            request_type: self.request_type.clone(),
            request_id: None,
        }
    }
}

/// Longest `type` echoed back in an error, so a hostile frame cannot make the reply large.
const MAX_ECHOED_TYPE_BYTES: usize = 64;

/// Parses one text frame from a client.
///
/// A frame whose first key is `type` (what clients send) is read by the `tag_first` fast path
/// straight into its variant. Every other frame, and any frame that path does not take, goes
/// through the derived path (`parse_derived`), whose value or error stands: the fast path gives
/// exactly the same envelope for every frame it takes (proved by its tests), and never decides
/// an error.
pub fn parse_client_frame(text: &str) -> Result<ClientEnvelope, FrameError> {
    match tag_first::parse_tag_first(text) {
        Some(envelope) => Ok(envelope),
        None => parse_derived(text),
    }
}

/// The derived path: the internally tagged union deserialized from the text in one pass (it
/// buffers the object to find the tag). Only a frame that fails that pass is parsed again, into
/// a `serde_json::Value`, to classify the failure: so the errors are exactly those of
/// [`classify`], and a frame the direct pass refuses but the value pass takes (one with a
/// repeated key, where a `Value` keeps the last) is still taken, as before.
fn parse_derived(text: &str) -> Result<ClientEnvelope, FrameError> {
    match serde_json::from_str::<ClientEnvelope>(text) {
        Ok(envelope) => Ok(envelope),
        Err(_) => classify(text),
    }
}

/// The slow path of [`parse_client_frame`]: text to `Value` to [`ClientEnvelope`], naming what
/// is wrong when it fails (the classification websocket.md prescribes).
fn classify(text: &str) -> Result<ClientEnvelope, FrameError> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| FrameError::invalid(format!("frame is not valid JSON: {e}"), None))?;
    let Value::Object(object) = &value else {
        return Err(FrameError::invalid("frame is not a JSON object", None));
    };
    let request_type = match object.get("type") {
        Some(Value::String(t)) => t.clone(),
        Some(_) => return Err(FrameError::invalid("field `type` must be a string", None)),
        None => return Err(FrameError::invalid("frame has no `type` field", None)),
    };
    if !ClientEnvelope::WIRE_TYPES.contains(&request_type.as_str()) {
        let shown = truncate(&request_type, MAX_ECHOED_TYPE_BYTES);
        return Err(FrameError {
            code: ErrorCode::UnknownType,
            message: format!("unknown envelope type `{shown}`"),
            request_type: Some(shown.to_owned()),
        });
    }
    ClientEnvelope::deserialize(&value).map_err(|e| {
        let (path, reason) = ClientEnvelope::payload_error(&request_type, &value)
            .unwrap_or_else(|| (".".to_owned(), e.to_string()));
        let message = describe_field_error(&path, &reason);
        FrameError::invalid(
            format!("invalid `{request_type}`: {message}"),
            Some(request_type),
        )
    })
}

/// The longest description of a field error sent back: serde's message may quote the value.
pub const MAX_FIELD_ERROR_BYTES: usize = 200;

/// One wording for a field that failed to deserialize, on every transport: the field by its JSON
/// path (`.` for the whole value) and serde's reason (which names the expected type), bounded to
/// [`MAX_FIELD_ERROR_BYTES`].
pub fn describe_field_error(path: &str, reason: &str) -> String {
    let text = if path == "." || path.is_empty() {
        reason.to_owned()
    } else {
        format!("field `{path}`: {reason}")
    };
    if text.len() <= MAX_FIELD_ERROR_BYTES {
        text
    } else {
        format!("{}…", truncate(&text, MAX_FIELD_ERROR_BYTES))
    }
}

fn truncate(text: &str, max_bytes: usize) -> &str {
    &text[..text.floor_char_boundary(max_bytes)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn code_of(text: &str) -> ErrorCode {
        parse_client_frame(text)
            .map(|_| ())
            .map_err(|e| e.code)
            .expect_err("refused")
    }

    #[test]
    fn classification_follows_the_spec() {
        assert_eq!(code_of("not json"), ErrorCode::InvalidMessage);
        assert_eq!(code_of("[1,2]"), ErrorCode::InvalidMessage);
        assert_eq!(code_of(r#"{"serverId":"s"}"#), ErrorCode::InvalidMessage);
        assert_eq!(code_of(r#"{"type":7}"#), ErrorCode::InvalidMessage);
        assert_eq!(code_of(r#"{"type":"teleport"}"#), ErrorCode::UnknownType);
        assert_eq!(
            code_of(r#"{"type":"join_server"}"#),
            ErrorCode::InvalidMessage
        );
        assert!(parse_client_frame(r#"{"type":"keepalive"}"#).is_ok());
    }

    #[test]
    fn errors_name_the_type_and_field() {
        let err = parse_client_frame(r#"{"type":"join_server"}"#).expect_err("missing field");
        assert_eq!(err.request_type.as_deref(), Some("join_server"));
        assert!(err.message.contains("serverId"), "{}", err.message);
        let err = parse_client_frame(r#"{"type":"teleport"}"#).expect_err("unknown");
        assert_eq!(err.request_type.as_deref(), Some("teleport"));
    }

    #[test]
    fn a_wrong_type_names_the_field_and_the_expected_type() {
        let err =
            parse_client_frame(r#"{"type":"join_server","serverId":123}"#).expect_err("wrong type");
        assert!(err.message.contains("field `serverId`"), "{}", err.message);
        assert!(err.message.contains("expected a string"), "{}", err.message);
        let long = format!(
            r#"{{"type":"join_server","serverId":"s","password":{{"x":"{}"}}}}"#,
            "y".repeat(5000)
        );
        let err = parse_client_frame(&long).expect_err("wrong type");
        assert!(
            err.message.len() < MAX_FIELD_ERROR_BYTES + 64,
            "{}",
            err.message
        );
    }

    #[test]
    fn echoed_types_are_bounded() {
        let long = format!(r#"{{"type":"{}"}}"#, "é".repeat(500));
        let err = parse_client_frame(&long).expect_err("unknown");
        assert!(err.request_type.map(|t| t.len()).unwrap_or(0) <= MAX_ECHOED_TYPE_BYTES);
        assert!(err.message.len() < 200);
    }

    #[test]
    fn the_direct_pass_and_the_value_pass_agree() {
        let frames = [
            r#"{"type":"keepalive"}"#,
            r#"{"type":"offer","targetUserId":"b","sdp":{"type":"offer","sdp":"v=0","x":1},"fromUserId":"spoof","extra":[1,2.5,null]}"#,
            r#"{"type":"ice_candidate","targetUserId":"b","candidate":{"candidate":"c","sdpMid":"0","sdpMLineIndex":0}}"#,
            r#"{"type":"rpc_request","targetUserId":"b","requestId":"r1","method":"m","params":{"a":[1,{"b":"\u00e9"}]}}"#,
            r#"{"type":"chat_message","serverId":"s","message":{"content":"hi","n":18446744073709551615}}"#,
            r#"{"type":"direct-message","targetUserId":"b","body":"x"}"#,
        ];
        for frame in frames {
            let direct = parse_client_frame(frame).expect("valid");
            let classified = classify(frame).expect("valid");
            assert_eq!(direct, classified, "{frame}");
        }
    }

    #[test]
    fn a_repeated_key_is_taken_as_before_the_last_one_winning() {
        let frame = r#"{"type":"join_server","serverId":"first","serverId":"second"}"#;
        let envelope = parse_client_frame(frame).expect("taken, as by the value pass");
        assert_eq!(envelope, classify(frame).expect("value pass"));
        let ClientEnvelope::JoinServer(join) = envelope else {
            panic!("not join_server")
        };
        assert_eq!(join.server_id.as_str(), "second");
    }

    proptest! {
        #[test]
        fn any_text_parses_or_is_classified(text in ".{0,200}") {
            if let Err(err) = parse_client_frame(&text) {
                prop_assert!(matches!(err.code, ErrorCode::InvalidMessage | ErrorCode::UnknownType));
            }
        }

        #[test]
        fn the_fast_path_never_decides_differently(text in r#"\{"type":"(keepalive|join_server|offer|typing)"(,"[a-zA-Z]{1,12}":("[a-z]{0,4}"|[0-9]{1,3}|null|true|\{\}))*\}"#) {
            prop_assert_eq!(parse_client_frame(&text), classify(&text));
        }

        #[test]
        fn any_type_name_is_classified(t in "[a-z_-]{0,30}") {
            let frame = format!(r#"{{"type":"{t}"}}"#);
            match parse_client_frame(&frame) {
                Ok(envelope) => prop_assert_eq!(envelope.wire_type(), t.as_str()),
                Err(err) if ClientEnvelope::WIRE_TYPES.contains(&t.as_str()) => {
                    prop_assert_eq!(err.code, ErrorCode::InvalidMessage)
                }
                Err(err) => prop_assert_eq!(err.code, ErrorCode::UnknownType),
            }
        }
    }
}
