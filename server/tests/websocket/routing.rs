//! Broadcasts (chat, typing, voice), forwarding, and icon sync.

use std::time::Duration;

use serde_json::{Value, json};
use signalbox_protocol::TimestampMs;

use crate::common::TestServer;
use crate::{User, create_server, lobby};

/// Ada (two devices) and Bob, all joined to `lobby`, with the join announcements consumed.
async fn trio(variables: &str) -> (TestServer, User, crate::common::ws::WsClient, User) {
    let (server, mut ada) = lobby(variables).await;
    let mut ada_phone = ada.device(&server).await;
    ada_phone.join("lobby").await;
    let mut bob = User::new(&server, "Bob").await;
    bob.ws.join("lobby").await;
    ada.ws.expect("user_joined").await;
    ada_phone.expect("user_joined").await;
    (server, ada, ada_phone, bob)
}

#[tokio::test]
async fn chat_is_stamped_by_the_server_and_skips_only_the_sending_connection() {
    let (_server, mut ada, mut ada_phone, mut bob) = trio("{}").await;
    let before = TimestampMs::now().0;
    ada.ws
        .send(json!({
            "type": "chat_message",
            "serverId": "lobby",
            "message": {"id": "m1", "text": "hello", "channelId": "general"},
            "senderId": "mallory",
            "senderName": "Mallory",
            "timestamp": 1
        }))
        .await;
    let got = bob.ws.expect("chat_message").await;
    assert_eq!(got["serverId"], "lobby");
    assert_eq!(
        got["message"],
        json!({"id": "m1", "text": "hello", "channelId": "general"})
    );
    assert_eq!(got["senderId"], ada.id.as_str());
    assert_eq!(got["senderName"], "Ada");
    let stamped = got["timestamp"].as_i64().expect("timestamp");
    assert!(
        stamped >= before && stamped <= TimestampMs::now().0,
        "{got}"
    );
    assert_eq!(ada_phone.expect("chat_message").await, got);
    ada.ws.expect_silence(Duration::from_millis(200)).await;

    ada.ws
        .send(json!({"type": "chat_message", "serverId": "elsewhere", "message": {}}))
        .await;
    let error = ada.ws.expect_error("FORBIDDEN").await;
    assert_eq!(error["requestType"], "chat_message");
    ada.ws
        .send(json!({"type": "chat_message", "serverId": "lobby", "message": "not an object"}))
        .await;
    ada.ws.expect_error("INVALID_MESSAGE").await;
}

#[tokio::test]
async fn typing_and_voice_skip_every_device_of_the_sender() {
    let (_server, mut ada, mut ada_phone, mut bob) = trio("{}").await;
    ada.ws
        .send(json!({"type": "typing", "serverId": "lobby", "channelId": "general", "isTyping": true, "oderId": "forged"}))
        .await;
    assert_eq!(
        bob.ws.expect("typing").await,
        json!({"type": "typing", "serverId": "lobby", "channelId": "general", "isTyping": true, "oderId": ada.id, "displayName": "Ada"})
    );
    ada.ws
        .send(json!({"type": "voice_state", "serverId": "lobby", "voiceState": {"muted": true, "room": "v1"}}))
        .await;
    assert_eq!(
        bob.ws.expect("voice_state").await,
        json!({"type": "voice_state", "serverId": "lobby", "oderId": ada.id, "voiceState": {"muted": true, "room": "v1"}})
    );
    ada_phone.expect_silence(Duration::from_millis(200)).await;
    ada.ws.expect_silence(Duration::from_millis(50)).await;
}

/// One client envelope of each forwarded type, with an unknown field and a forged `fromUserId`.
fn forwarded(wire_type: &str, target: &str) -> Value {
    let mut envelope = match wire_type {
        "offer" | "answer" => json!({"sdp": {"type": wire_type, "sdp": "v=0\r\n"}}),
        "ice_candidate" => {
            json!({"candidate": {"candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ host", "sdpMid": "0", "sdpMLineIndex": 0}})
        }
        "rpc_request" => json!({"requestId": "r1", "method": "ping", "params": {"n": 1}}),
        "rpc_response" => json!({"requestId": "r1", "result": {"pong": true}}),
        _ => json!({"payload": {"anything": [1, 2, 3]}}),
    };
    let object = envelope.as_object_mut().expect("object");
    object.insert("type".into(), json!(wire_type));
    object.insert("targetUserId".into(), json!(target));
    object.insert("fromUserId".into(), json!("forged"));
    object.insert("x-extension".into(), json!({"kept": true}));
    envelope
}

const FORWARDED: [&str; 13] = [
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

#[tokio::test]
async fn every_forwarded_type_reaches_every_device_of_the_target_intact() {
    let (server, mut ada, _ada_phone, mut bob) = trio("{}").await;
    let mut bob_phone = bob.device(&server).await;
    for wire_type in FORWARDED {
        let sent = forwarded(wire_type, &bob.id);
        ada.ws.send(sent.clone()).await;
        let mut expected = sent.clone();
        expected["fromUserId"] = json!(ada.id);
        assert_eq!(bob.ws.expect(wire_type).await, expected, "{wire_type}");
        assert_eq!(bob_phone.expect(wire_type).await, expected, "{wire_type}");
    }
    ada.ws.expect_silence(Duration::from_millis(100)).await;
}

#[tokio::test]
async fn forwarding_refusals() {
    let (server, mut ada, mut ada_phone, bob) = trio("{}").await;
    // Offline target, with the RPC's requestId echoed.
    ada.ws.send(forwarded("offer", "nobody")).await;
    let error = ada.ws.expect_error("TARGET_NOT_FOUND").await;
    assert_eq!(error["requestType"], "offer");
    ada.ws.send(forwarded("rpc_request", "nobody")).await;
    let error = ada.ws.expect_error("TARGET_NOT_FOUND").await;
    assert_eq!(error["requestId"], "r1");
    // A stranger shares no server with Ada.
    let stranger = User::new(&server, "Stranger").await;
    ada.ws.send(forwarded("direct-message", &stranger.id)).await;
    ada.ws.expect_error("FORBIDDEN").await;
    ada.ws.send(forwarded("rpc_request", &stranger.id)).await;
    assert_eq!(ada.ws.expect_error("FORBIDDEN").await["requestId"], "r1");
    // Own other device: always allowed, even with no server.
    ada.ws.send(forwarded("direct-message-sync", &ada.id)).await;
    let got = ada_phone.expect("direct-message-sync").await;
    assert_eq!(got["fromUserId"], ada.id.as_str());
    // A missing target is a bad envelope.
    ada.ws
        .send(json!({"type": "offer", "sdp": {"type": "offer", "sdp": ""}}))
        .await;
    ada.ws.expect_error("INVALID_MESSAGE").await;
    drop(bob);
}

#[tokio::test]
async fn open_forwarding_reaches_strangers() {
    let (server, mut ada) = lobby(r#"{"realtime": {"forwarding": "open"}}"#).await;
    let mut stranger = User::new(&server, "Stranger").await;
    ada.ws.send(forwarded("direct-call", &stranger.id)).await;
    assert_eq!(
        stranger.ws.expect("direct-call").await["fromUserId"],
        ada.id.as_str()
    );
}

#[tokio::test]
async fn icon_sync_points_at_peers_with_newer_icons() {
    let (server, mut ada, _ada_phone, mut bob) = trio("{}").await;
    ada.ws
        .send(json!({"type": "server_icon_available", "serverId": "lobby", "iconUpdatedAt": 500}))
        .await;
    bob.ws
        .send(
            json!({"type": "server_icon_sync_request", "serverId": "lobby", "iconUpdatedAt": 300}),
        )
        .await;
    assert_eq!(
        bob.ws.expect("server_icon_sync_peers").await,
        json!({"type": "server_icon_sync_peers", "serverId": "lobby", "peers": [{"oderId": ada.id, "iconUpdatedAt": 500}]})
    );
    bob.ws
        .send(
            json!({"type": "server_icon_sync_request", "serverId": "lobby", "iconUpdatedAt": 900}),
        )
        .await;
    assert_eq!(
        bob.ws.expect("server_icon_sync_peers").await["peers"],
        json!([])
    );
    // Then a peer fetches it over the forwarded envelopes.
    bob.ws
        .send(forwarded("server_icon_peer_request", &ada.id))
        .await;
    ada.ws.expect("server_icon_peer_request").await;
    create_server(&server.client(), &ada.token, "unused", json!({})).await;
}
