//! Connection lifecycle, auth on the socket, membership and presence.

use std::time::Duration;

use serde_json::json;
use signalbox_protocol::{PROTOCOL_MAJOR, PROTOCOL_VERSION, TimestampMs};

use crate::common::TestServer;
use crate::common::ws::WsClient;
use crate::{User, create_server, lobby, summary_of};

#[tokio::test]
async fn connected_comes_first_with_server_set_fields() {
    let server = TestServer::start_with(r#"{"stunUrls": ["stun:stun.example.test:3478"]}"#).await;
    for path in ["/", "/ws"] {
        let ws = WsClient::connect(server.addr, path).await;
        let c = &ws.connected;
        let id = c["connectionId"].as_str().expect("connectionId");
        assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
        assert_eq!(c["protocolVersion"], PROTOCOL_VERSION);
        let skew = TimestampMs::now().0 - c["serverTime"].as_i64().expect("serverTime");
        assert!((0..5_000).contains(&skew), "serverTime off by {skew} ms");
        assert_eq!(
            c["iceServers"],
            json!([{"urls": ["stun:stun.example.test:3478"]}])
        );
    }
    let a = WsClient::connect(server.addr, "/ws").await;
    let b = WsClient::connect(server.addr, "/ws").await;
    assert_ne!(a.connected["connectionId"], b.connected["connectionId"]);
}

#[tokio::test]
async fn only_identify_and_keepalive_before_identify() {
    let server = TestServer::start().await;
    let mut ws = WsClient::connect(server.addr, "/ws").await;
    ws.send(json!({"type": "keepalive"})).await;
    let ack = ws.expect("keepalive").await;
    assert!(ack["serverTime"].as_i64().is_some(), "{ack}");
    ws.send(json!({"type": "join_server", "serverId": "lobby"}))
        .await;
    let error = ws.expect_error("NOT_IDENTIFIED").await;
    assert_eq!(error["requestType"], "join_server");
    ws.send(json!({"type": "chat_message", "serverId": "s", "message": {}}))
        .await;
    ws.expect_error("NOT_IDENTIFIED").await;
    ws.send(json!({"type": "identify", "oderId": "ada", "displayName": "Ada"}))
        .await;
    ws.send(json!({"type": "join_server", "serverId": "nowhere"}))
        .await;
    let denied = ws.expect("access_denied").await;
    assert_eq!(
        denied,
        json!({"type": "access_denied", "serverId": "nowhere", "reason": "not_found"})
    );
}

#[tokio::test]
async fn bad_frames_get_errors_and_the_socket_stays_open() {
    let server = TestServer::start().await;
    let mut ws = WsClient::connect(server.addr, "/ws").await;
    let cases: [(&str, &str, Option<&str>); 7] = [
        ("not json", "INVALID_MESSAGE", None),
        ("[1, 2]", "INVALID_MESSAGE", None),
        (r#"{"serverId": "s"}"#, "INVALID_MESSAGE", None),
        (r#"{"type": 7}"#, "INVALID_MESSAGE", None),
        (r#"{"type": "teleport"}"#, "UNKNOWN_TYPE", Some("teleport")),
        (
            r#"{"type": "identify"}"#,
            "INVALID_MESSAGE",
            Some("identify"),
        ),
        (
            r#"{"type": "identify", "displayName": 5}"#,
            "INVALID_MESSAGE",
            Some("identify"),
        ),
    ];
    for (frame, code, request_type) in cases {
        ws.send_text(frame.to_owned()).await;
        let error = ws.expect_error(code).await;
        assert_eq!(
            error["requestType"].as_str(),
            request_type,
            "{frame}: {error}"
        );
        assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let missing = {
        ws.send_text(r#"{"type": "identify"}"#.to_owned()).await;
        ws.expect_error("INVALID_MESSAGE").await
    };
    assert!(
        missing["message"]
            .as_str()
            .unwrap_or_default()
            .contains("displayName"),
        "{missing}"
    );
    ws.stream
        .send(tokio_tungstenite::tungstenite::Message::binary(vec![
            1, 2, 3,
        ]))
        .await
        .expect("send binary");
    ws.expect_error("INVALID_MESSAGE").await;
    // Out-of-bounds values are refused by name.
    let long_name = "x".repeat(signalbox_protocol::limits::MAX_DISPLAY_NAME_CHARS + 1);
    ws.send(json!({"type": "identify", "displayName": long_name}))
        .await;
    let error = ws.expect_error("INVALID_MESSAGE").await;
    assert!(
        error["message"]
            .as_str()
            .unwrap_or_default()
            .contains("displayName")
    );
    ws.send(json!({"type": "keepalive"})).await;
    ws.expect("keepalive").await;
}

use futures_util::SinkExt as _;

#[tokio::test]
async fn unsupported_versions_are_closed_with_4000() {
    let server = TestServer::start().await;
    let mut ok = WsClient::connect(server.addr, &format!("/ws?v={PROTOCOL_MAJOR}")).await;
    ok.send(json!({"type": "keepalive"})).await;
    ok.expect("keepalive").await;
    let mut refused =
        WsClient::connect_raw(server.addr, &format!("/ws?v={}", PROTOCOL_MAJOR + 1)).await;
    let closed = refused.expect_close().await;
    assert_eq!(closed.code, 4000);
    assert!(closed.reason.contains("not supported"), "{}", closed.reason);
}

#[tokio::test]
async fn bad_tokens_close_with_4001_after_the_error() {
    let server = TestServer::start_with(r#"{"guestTokenTtlSeconds": 1}"#).await;
    let mut forged = WsClient::connect(server.addr, "/ws?token=not-a-token").await;
    forged.expect_error("AUTH_INVALID").await;
    assert_eq!(forged.expect_close().await.code, 4001);

    let mut in_identify = WsClient::connect(server.addr, "/ws").await;
    in_identify
        .send(json!({"type": "identify", "displayName": "Eve", "token": "x.y.z"}))
        .await;
    let error = in_identify.expect_error("AUTH_INVALID").await;
    assert_eq!(error["requestType"], "identify");
    assert_eq!(in_identify.expect_close().await.code, 4001);

    let (token, _) = server.client().guest("Ada").await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let mut expired = WsClient::connect(server.addr, &format!("/ws?token={token}")).await;
    expired.expect_error("AUTH_EXPIRED").await;
    assert_eq!(expired.expect_close().await.code, 4001);
}

#[tokio::test]
async fn tokens_bind_identities() {
    let server = TestServer::start().await;
    let http = server.client();
    let (token, ada_id) = http.guest("Ada").await;
    // Claiming another identity than the token proves.
    let mut other = WsClient::connect(server.addr, &format!("/ws?token={token}")).await;
    other
        .send(json!({"type": "identify", "oderId": "someone-else", "displayName": "Ada"}))
        .await;
    other.expect_error("AUTH_INVALID").await;
    assert_eq!(other.expect_close().await.code, 4001);
    // The token's identity is taken when identify names none.
    let mut ada = crate::connect_as(&server, &token, "Ada").await;
    create_server(&http, &token, "s", json!({})).await;
    let users = ada.join("s").await;
    assert_eq!(summary_of(&users["users"], &ada_id)["displayName"], "Ada");
}

#[tokio::test]
async fn key_bound_ids_need_their_key_in_open_mode() {
    use ed25519_dalek::{Signer as _, SigningKey};
    use signalbox::auth::{decode_b64, encode_b64};
    let server = TestServer::start().await;
    let http = server.client();
    let key = SigningKey::from_bytes(&[7u8; 32]);
    let public = encode_b64(key.verifying_key().as_bytes());
    let challenge = http
        .call(
            "POST",
            "/api/auth/challenge",
            None,
            Some(&json!({"publicKey": public})),
        )
        .await
        .expect_ok(200);
    let bytes = decode_b64(challenge["challenge"].as_str().expect("challenge")).expect("b64");
    let verify = json!({
        "challengeId": challenge["challengeId"],
        "publicKey": public,
        "signature": encode_b64(&key.sign(&bytes).to_bytes()),
    });
    let token = http
        .call("POST", "/api/auth/verify", None, Some(&verify))
        .await
        .expect_ok(200);
    let user_id = token["userId"].as_str().expect("userId").to_owned();
    // With the key's token: fine.
    let mut owner = WsClient::connect(server.addr, "/ws").await;
    owner
        .send(json!({"type": "identify", "oderId": user_id, "displayName": "Key", "token": token["token"]}))
        .await;
    owner.send(json!({"type": "keepalive"})).await;
    owner.expect("keepalive").await;
    // Without it: refused.
    let mut thief = WsClient::connect(server.addr, "/ws").await;
    thief
        .send(json!({"type": "identify", "oderId": user_id, "displayName": "Thief"}))
        .await;
    let error = thief.expect_error("AUTH_INVALID").await;
    assert!(
        error["message"]
            .as_str()
            .unwrap_or_default()
            .contains("bound")
    );
    assert_eq!(thief.expect_close().await.code, 4001);
    // Unbound ids stay free to claim (Toju compatibility).
    let mut free = WsClient::connect(server.addr, "/ws").await;
    free.send(json!({"type": "identify", "oderId": "anyone", "displayName": "Any"}))
        .await;
    free.send(json!({"type": "keepalive"})).await;
    free.expect("keepalive").await;
}

#[tokio::test]
async fn auth_required_mode_needs_a_token() {
    let server = TestServer::start_with(r#"{"auth": "required"}"#).await;
    let mut anonymous = WsClient::connect(server.addr, "/ws").await;
    anonymous
        .send(json!({"type": "identify", "oderId": "ada", "displayName": "Ada"}))
        .await;
    anonymous.expect_error("AUTH_INVALID").await;
    assert_eq!(anonymous.expect_close().await.code, 4001);
    let (token, _) = server.client().guest("Ada").await;
    let mut ada = crate::connect_as(&server, &token, "Ada").await;
    ada.send(json!({"type": "keepalive"})).await;
    ada.expect("keepalive").await;
}

#[tokio::test]
async fn join_sends_roster_then_requirements_and_announces_once_per_user() {
    let (server, mut ada) = lobby("{}").await;
    let mut bob = User::new(&server, "Bob").await;
    let users = bob.ws.join("lobby").await;
    assert_eq!(users["serverId"], "lobby");
    assert_eq!(users["users"].as_array().map(Vec::len), Some(2));
    let bob_entry = summary_of(&users["users"], &bob.id);
    assert_eq!(bob_entry["displayName"], "Bob");
    assert_eq!(bob_entry["status"], "online");
    let joined = ada.ws.expect("user_joined").await;
    assert_eq!(joined["serverId"], "lobby");
    assert_eq!(joined["oderId"], bob.id.as_str());
    assert_eq!(joined["displayName"], "Bob");
    assert_eq!(joined["status"], "online");

    // Bob's second device: roster for it, no second user_joined for Ada.
    let mut bob_phone = bob.device(&server).await;
    let again = bob_phone.join("lobby").await;
    assert_eq!(again["users"].as_array().map(Vec::len), Some(2));
    ada.ws.expect_silence(Duration::from_millis(200)).await;

    // One device leaves: still online there. The last one leaves: one user_left.
    bob_phone.close().await;
    ada.ws.expect_silence(Duration::from_millis(200)).await;
    bob.ws
        .send(json!({"type": "leave_server", "serverId": "lobby"}))
        .await;
    let left = ada.ws.expect("user_left").await;
    assert_eq!(left["serverId"], "lobby");
    assert_eq!(left["oderId"], bob.id.as_str());
    ada.ws.expect_silence(Duration::from_millis(200)).await;

    // Rejoining works, and closing the socket is a leave everywhere.
    bob.ws.join("lobby").await;
    ada.ws.expect("user_joined").await;
    bob.ws.close().await;
    let left = ada.ws.expect("user_left").await;
    assert_eq!(left["oderId"], bob.id.as_str());
}

#[tokio::test]
async fn status_updates_reach_everyone_sharing_a_server_once() {
    let (server, mut ada) = lobby("{}").await;
    let mut bob = User::new(&server, "Bob").await;
    bob.ws.join("lobby").await;
    ada.ws.expect("user_joined").await;
    let mut ada_phone = ada.device(&server).await;
    ada_phone.join("lobby").await;
    // A second shared server must not double the delivery.
    create_server(&server.client(), &ada.token, "second", json!({})).await;
    ada.ws.join("second").await;
    bob.ws.join("second").await;
    ada.ws.expect("user_joined").await;

    ada.ws
        .send(json!({"type": "status_update", "status": "away"}))
        .await;
    let update = bob.ws.expect("status_update").await;
    assert_eq!(
        update,
        json!({"type": "status_update", "oderId": ada.id, "status": "away"})
    );
    bob.ws.expect_silence(Duration::from_millis(200)).await;
    assert_eq!(ada_phone.expect("status_update").await["status"], "away");
    ada.ws
        .send(json!({"type": "status_update", "status": "sleepy"}))
        .await;
    ada.ws.expect_error("INVALID_MESSAGE").await;
}

#[tokio::test]
async fn access_rules_decide_joins() {
    let server = TestServer::start().await;
    let http = server.client();
    let mut ada = User::new(&server, "Ada").await;
    let mut bob = User::new(&server, "Bob").await;
    create_server(&http, &ada.token, "priv", json!({"visibility": "private"})).await;
    create_server(&http, &ada.token, "locked", json!({})).await;
    http.call(
        "PUT",
        "/api/servers/locked/password",
        Some(&ada.token),
        Some(&json!({"password": "hunter22"})),
    )
    .await
    .expect_ok(200);

    let denied = |server: &str, reason: &str| json!({"type": "access_denied", "serverId": server, "reason": reason});
    bob.ws
        .send(json!({"type": "join_server", "serverId": "priv"}))
        .await;
    assert_eq!(bob.ws.recv().await, denied("priv", "private"));
    bob.ws
        .send(json!({"type": "view_server", "serverId": "priv"}))
        .await;
    assert_eq!(bob.ws.recv().await, denied("priv", "private"));
    bob.ws
        .send(json!({"type": "join_server", "serverId": "locked"}))
        .await;
    assert_eq!(bob.ws.recv().await, denied("locked", "password_required"));
    bob.ws
        .send(json!({"type": "join_server", "serverId": "locked", "password": "wrong"}))
        .await;
    assert_eq!(bob.ws.recv().await, denied("locked", "wrong_password"));
    bob.ws
        .send(json!({"type": "join_server", "serverId": "priv", "inviteCode": "nope"}))
        .await;
    assert_eq!(bob.ws.recv().await, denied("priv", "invite_invalid"));

    bob.ws
        .send(json!({"type": "join_server", "serverId": "locked", "password": "hunter22"}))
        .await;
    bob.ws.expect("server_users").await;
    bob.ws.expect("plugin_requirements").await;
    // Membership is recorded: the next join needs no password.
    bob.ws
        .send(json!({"type": "leave_server", "serverId": "locked"}))
        .await;
    bob.ws.join("locked").await;

    let invite = http
        .call(
            "POST",
            "/api/servers/priv/invites",
            Some(&ada.token),
            Some(&json!({})),
        )
        .await
        .expect_ok(201);
    bob.ws
        .send(json!({"type": "join_server", "serverId": "priv", "inviteCode": invite["code"]}))
        .await;
    let users = bob.ws.expect("server_users").await;
    assert_eq!(users["serverId"], "priv");
    bob.ws.expect("plugin_requirements").await;

    // Banned users are refused even as members.
    http.call(
        "POST",
        "/api/servers/locked/bans",
        Some(&ada.token),
        Some(&json!({"userId": bob.id})),
    )
    .await
    .expect_ok(200);
    bob.ws
        .send(json!({"type": "join_server", "serverId": "locked"}))
        .await;
    assert_eq!(bob.ws.recv().await, denied("locked", "banned"));
    ada.ws.send(json!({"type": "keepalive"})).await;
    ada.ws.expect("keepalive").await;
}

#[tokio::test]
async fn view_shows_the_roster_without_announcing() {
    let (server, mut ada) = lobby("{}").await;
    let mut bob = User::new(&server, "Bob").await;
    bob.ws
        .send(json!({"type": "view_server", "serverId": "lobby"}))
        .await;
    let users = bob.ws.expect("server_users").await;
    assert_eq!(users["users"].as_array().map(Vec::len), Some(1));
    summary_of(&users["users"], &ada.id);
    bob.ws.expect("plugin_requirements").await;
    ada.ws.expect_silence(Duration::from_millis(200)).await;
    // A viewer cannot chat.
    bob.ws
        .send(json!({"type": "chat_message", "serverId": "lobby", "message": {"text": "hi"}}))
        .await;
    bob.ws.expect_error("FORBIDDEN").await;
}

#[tokio::test]
async fn graceful_shutdown_closes_everyone_with_1001() {
    let (mut server, mut ada) = lobby("{}").await;
    let mut bob = User::new(&server, "Bob").await;
    let running = server.server.take().expect("running");
    let stop = tokio::spawn(running.shutdown());
    assert_eq!(ada.ws.expect_close().await.code, 1001);
    assert_eq!(bob.ws.expect_close().await.code, 1001);
    tokio::time::timeout(Duration::from_secs(10), stop)
        .await
        .expect("shutdown finished")
        .expect("shutdown task");
}

#[tokio::test]
async fn password_guessing_is_throttled_per_address() {
    use signalbox::auth::attempts::MAX_FAILURES;
    let server = TestServer::start().await;
    let http = server.client();
    let ada = User::new(&server, "Ada").await;
    create_server(&http, &ada.token, "locked", json!({})).await;
    http.call(
        "PUT",
        "/api/servers/locked/password",
        Some(&ada.token),
        Some(&json!({"password": "hunter22"})),
    )
    .await
    .expect_ok(200);
    let mut guesser = User::new(&server, "Guesser").await;
    for i in 0..MAX_FAILURES {
        guesser
            .ws
            .send(json!({"type": "join_server", "serverId": "locked", "password": format!("guess-{i}")}))
            .await;
        assert_eq!(
            guesser.ws.expect("access_denied").await["reason"],
            "wrong_password"
        );
    }
    // From the same address, even a new identity and the right password are refused for now.
    let mut other = User::new(&server, "Other").await;
    other
        .ws
        .send(json!({"type": "join_server", "serverId": "locked", "password": "hunter22"}))
        .await;
    let error = other.ws.expect_error("RATE_LIMITED").await;
    assert_eq!(error["requestType"], "join_server");
    // Joins that need no password are not affected.
    create_server(&http, &ada.token, "open", json!({})).await;
    other.ws.join("open").await;
}

#[tokio::test]
async fn deleting_a_server_empties_its_live_room() {
    let (server, mut ada) = lobby("{}").await;
    let mut bob = User::new(&server, "Bob").await;
    bob.ws.join("lobby").await;
    ada.ws.expect("user_joined").await;
    server
        .client()
        .call("DELETE", "/api/servers/lobby", Some(&ada.token), None)
        .await
        .expect_ok(200);
    let gone = json!({"type": "access_denied", "serverId": "lobby", "reason": "not_found"});
    assert_eq!(bob.ws.until("access_denied").await, gone);
    assert_eq!(ada.ws.until("access_denied").await, gone);
    bob.ws
        .send(json!({"type": "chat_message", "serverId": "lobby", "message": {}}))
        .await;
    bob.ws.expect_error("FORBIDDEN").await;
}
