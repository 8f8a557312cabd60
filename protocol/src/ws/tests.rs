//! Envelope behaviour that golden examples alone do not pin down: unknown fields, spoofing,
//! wire-name bookkeeping, and parsing of untrusted bytes.

#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;
use crate::ids::UserId;

fn parse(value: Value) -> Result<ClientEnvelope, serde_json::Error> {
    serde_json::from_value(value)
}

#[test]
fn wire_types_are_unique_and_match_serde() {
    for types in [ClientEnvelope::WIRE_TYPES, ServerEnvelope::WIRE_TYPES] {
        let mut sorted = types.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), types.len(), "duplicate wire type");
    }
    let keepalive = parse(json!({"type": "keepalive"})).unwrap();
    assert_eq!(keepalive.wire_type(), "keepalive");
    let dm = parse(json!({"type": "direct-message", "targetUserId": "u2"})).unwrap();
    assert_eq!(dm.wire_type(), "direct-message");
}

#[test]
fn forwarded_envelopes_keep_unknown_fields_at_every_level() {
    let sent = json!({
        "type": "offer",
        "targetUserId": "u2",
        "sdp": {"type": "offer", "sdp": "v=0", "x-vendor": 7},
        "connectionMode": "lan",
        "nested": {"a": [1, 2, {"b": null}]}
    });
    let forwarded = parse(sent.clone())
        .unwrap()
        .into_forwarded(UserId::from("u1"))
        .unwrap();
    assert_eq!(forwarded.target_user_id, UserId::from("u2"));
    let mut expected = sent;
    expected["fromUserId"] = json!("u1");
    assert_eq!(serde_json::to_value(&forwarded.delivery).unwrap(), expected);
}

#[test]
fn a_client_supplied_sender_is_overwritten() {
    let sent = json!({"type": "direct-message", "targetUserId": "u2", "fromUserId": "admin", "text": "hi"});
    let forwarded = parse(sent)
        .unwrap()
        .into_forwarded(UserId::from("u1"))
        .unwrap();
    let delivered = serde_json::to_value(&forwarded.delivery).unwrap();
    assert_eq!(delivered["fromUserId"], json!("u1"));
    let text = serde_json::to_string(&forwarded.delivery).unwrap();
    assert_eq!(
        text.matches("fromUserId").count(),
        1,
        "one fromUserId key: {text}"
    );
}

#[test]
fn rpc_forwarding_carries_the_request_id() {
    let sent =
        json!({"type": "rpc_request", "targetUserId": "u2", "requestId": "r1", "method": "ping"});
    let forwarded = parse(sent)
        .unwrap()
        .into_forwarded(UserId::from("u1"))
        .unwrap();
    assert_eq!(
        forwarded.request_id,
        Some(crate::ids::RequestId::from("r1"))
    );
}

#[test]
fn non_forwarded_envelopes_are_returned_unchanged() {
    let join = parse(json!({"type": "join_server", "serverId": "s1"})).unwrap();
    assert_eq!(join.forward_target(), None);
    assert_eq!(
        join.clone().into_forwarded(UserId::from("u1")),
        Err(Box::new(join))
    );
}

#[test]
fn every_forwarded_wire_type_has_a_target() {
    let forwarded = [
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
    for wire in forwarded {
        let mut value =
            json!({"type": wire, "targetUserId": "u2", "requestId": "r", "method": "m"});
        if wire == "offer" || wire == "answer" {
            value["sdp"] = json!({"type": wire, "sdp": "v=0"});
        }
        if wire == "ice_candidate" {
            value["candidate"] = json!({"candidate": ""});
        }
        let envelope = parse(value).unwrap_or_else(|e| panic!("{wire}: {e}"));
        assert_eq!(
            envelope.forward_target().map(UserId::as_str),
            Some("u2"),
            "{wire}"
        );
        let forwarded = envelope.into_forwarded(UserId::from("u1")).unwrap();
        assert_eq!(forwarded.delivery.wire_type(), wire);
    }
}

#[test]
fn errors_name_the_field_at_fault() {
    let missing = parse(json!({"type": "join_server"}))
        .unwrap_err()
        .to_string();
    assert!(missing.contains("serverId"), "{missing}");
    let wrong =
        parse(json!({"type": "typing", "serverId": "s", "channelId": "c", "isTyping": "yes"}))
            .unwrap_err()
            .to_string();
    assert!(wrong.contains("boolean"), "{wrong}");
    let unknown = parse(json!({"type": "teleport"})).unwrap_err().to_string();
    assert!(unknown.contains("teleport"), "{unknown}");
}

#[test]
fn server_set_fields_are_required_in_server_envelopes() {
    // A chat_message without the server-set fields is a client envelope, not a server one.
    let client_shape = json!({"type": "chat_message", "serverId": "s", "message": {}});
    assert!(serde_json::from_value::<ServerEnvelope>(client_shape.clone()).is_err());
    assert!(parse(client_shape).is_ok());
}

fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        "[a-zA-Z_-]{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("type".to_owned()),
                    Just("targetUserId".to_owned()),
                    Just("serverId".to_owned()),
                    "[a-zA-Z]{1,8}"
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = serde_json::from_slice::<ClientEnvelope>(&bytes);
    }

    #[test]
    fn arbitrary_json_never_panics_and_parsed_envelopes_round_trip(value in arbitrary_json()) {
        if let Ok(envelope) = serde_json::from_value::<ClientEnvelope>(value) {
            let again: ClientEnvelope = serde_json::from_value(serde_json::to_value(&envelope).unwrap()).unwrap();
            prop_assert_eq!(again, envelope);
        }
    }

    #[test]
    fn unknown_fields_of_a_peer_message_survive_forwarding(
        extra in prop::collection::btree_map("[a-z]{1,10}", any::<i32>(), 0..8)
    ) {
        let mut sent = json!({"type": "direct-message", "targetUserId": "u2"});
        for (key, value) in &extra {
            if key != "type" {
                sent[key] = json!(value);
            }
        }
        let forwarded = parse(sent.clone()).unwrap().into_forwarded(UserId::from("u1")).unwrap();
        let delivered = serde_json::to_value(&forwarded.delivery).unwrap();
        sent["fromUserId"] = json!("u1");
        prop_assert_eq!(delivered, sent);
    }
}
