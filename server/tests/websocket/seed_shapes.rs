//! Frames in the exact shapes of Toju's envelope catalogue (`typing` and `chat_message` without
//! `serverId`, `voice_state` without its `voiceState` wrapper, `server_icon_sync_request` without
//! `iconUpdatedAt`): accepted when the meaning is unambiguous, refused naming the field when not.

use serde_json::json;

use crate::common::TestServer;
use crate::{User, create_server, lobby};

/// Ada and Bob, both joined to `lobby` only, with the join announcement consumed.
async fn pair() -> (TestServer, User, User) {
    let (server, mut ada) = lobby("{}").await;
    let mut bob = User::new(&server, "Bob").await;
    bob.ws.join("lobby").await;
    ada.ws.expect("user_joined").await;
    (server, ada, bob)
}

#[tokio::test]
async fn typing_in_the_catalogue_shape_goes_to_the_one_joined_server() {
    let (_server, mut ada, mut bob) = pair().await;
    // The catalogue's `typing`: { isTyping, channelId, oderId, displayName }, no serverId.
    ada.ws
        .send(json!({"type": "typing", "isTyping": true, "channelId": "general", "oderId": ada.id, "displayName": "Ada"}))
        .await;
    assert_eq!(
        bob.ws.expect("typing").await,
        json!({"type": "typing", "serverId": "lobby", "channelId": "general", "isTyping": true, "oderId": ada.id, "displayName": "Ada"})
    );
}

#[tokio::test]
async fn chat_in_the_catalogue_shape_goes_to_the_one_joined_server_stamped_by_the_server() {
    let (_server, mut ada, mut bob) = pair().await;
    // The catalogue's `chat_message`: { message, senderId, senderName, timestamp }, no serverId.
    ada.ws
        .send(json!({
            "type": "chat_message",
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
    assert_ne!(got["timestamp"], 1);
}

#[tokio::test]
async fn voice_state_without_its_wrapper_is_broadcast_wrapped_without_claimed_identity() {
    let (_server, mut ada, mut bob) = pair().await;
    // The state's fields beside `type`, and no serverId either.
    ada.ws
        .send(json!({"type": "voice_state", "oderId": "forged", "displayName": "Mallory", "isMuted": true, "isDeafened": false, "roomId": "v1"}))
        .await;
    assert_eq!(
        bob.ws.expect("voice_state").await,
        json!({"type": "voice_state", "serverId": "lobby", "oderId": ada.id, "voiceState": {"isMuted": true, "isDeafened": false, "roomId": "v1"}})
    );
    // With the wrapper, the wrapper is the state and the documented shape is unchanged.
    ada.ws
        .send(json!({"type": "voice_state", "serverId": "lobby", "voiceState": {"isMuted": false}}))
        .await;
    assert_eq!(
        bob.ws.expect("voice_state").await["voiceState"],
        json!({"isMuted": false})
    );
}

#[tokio::test]
async fn icon_sync_request_without_a_version_asks_for_every_held_icon() {
    let (_server, mut ada, mut bob) = pair().await;
    ada.ws
        .send(json!({"type": "server_icon_available", "serverId": "lobby", "iconUpdatedAt": 500}))
        .await;
    bob.ws
        .send(json!({"type": "server_icon_sync_request", "serverId": "lobby"}))
        .await;
    assert_eq!(
        bob.ws.expect("server_icon_sync_peers").await,
        json!({"type": "server_icon_sync_peers", "serverId": "lobby", "peers": [{"oderId": ada.id, "iconUpdatedAt": 500}]})
    );
}

#[tokio::test]
async fn a_viewed_server_is_the_one_meant_too() {
    let (server, mut ada) = lobby("{}").await;
    let mut viewer = User::new(&server, "Vic").await;
    viewer
        .ws
        .send(json!({"type": "view_server", "serverId": "lobby"}))
        .await;
    viewer.ws.expect("server_users").await;
    viewer.ws.expect("plugin_requirements").await;
    // Viewing is not joining: the implied server is `lobby`, and the broadcast refuses a
    // non-member exactly as it would with `serverId: "lobby"` named.
    viewer
        .ws
        .send(json!({"type": "typing", "isTyping": true, "channelId": "general"}))
        .await;
    let implied = viewer.ws.expect("error").await;
    viewer
        .ws
        .send(json!({"type": "typing", "serverId": "lobby", "isTyping": true, "channelId": "general"}))
        .await;
    let named = viewer.ws.expect("error").await;
    assert_eq!(implied, named);
    ada.ws
        .send(json!({"type": "typing", "isTyping": false, "channelId": "general"}))
        .await;
    ada.ws.send(json!({"type": "keepalive"})).await;
    ada.ws.expect("keepalive").await;
}

#[tokio::test]
async fn no_server_or_several_is_refused_naming_server_id() {
    let server = TestServer::start_with("{}").await;
    let mut ada = User::new(&server, "Ada").await;
    let frames = [
        json!({"type": "typing", "isTyping": true, "channelId": "general"}),
        json!({"type": "chat_message", "message": {"text": "hi"}}),
        json!({"type": "voice_state", "voiceState": {"isMuted": true}}),
    ];
    for frame in frames {
        let wire_type = frame["type"].clone();
        ada.ws.send(frame).await;
        let error = ada.ws.expect_error("INVALID_MESSAGE").await;
        assert_eq!(error["requestType"], wire_type);
        let message = error["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("`serverId`") && message.contains("no server"),
            "{error}"
        );
    }

    let http = server.client();
    create_server(&http, &ada.token, "one", json!({})).await;
    create_server(&http, &ada.token, "two", json!({})).await;
    ada.ws.join("one").await;
    ada.ws.join("two").await;
    ada.ws
        .send(json!({"type": "chat_message", "message": {"text": "which?"}}))
        .await;
    let error = ada.ws.expect_error("INVALID_MESSAGE").await;
    let message = error["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("`serverId`") && message.contains("2 servers"),
        "{error}"
    );
}
