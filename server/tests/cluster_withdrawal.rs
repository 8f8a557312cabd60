//! Withdrawal of access across nodes, in one process: two `app::start` servers in
//! `cluster.mode: "redis"` on one `redis-server` (started here on a free loopback port) and one
//! PostgreSQL schema (`SIGNALBOX_TEST_POSTGRES_URL`, `scripts/postgres start`). The owner acts
//! through node A's REST API; the connections it withdraws access from are on node B: a ban
//! (`banned`), a kick (`removed`), a server made private (a non-member viewer) and a deleted
//! server (everyone), and an SSE session on node B admitted with the banned user's token. Skipped with a printed reason when
//! redis-server or PostgreSQL is missing (a failure under `CI=true`). No timed assertions:
//! every wait has a generous deadline.
#![allow(missing_docs)]

mod common;
mod pg;
mod two_nodes;

use std::time::Duration;

use common::sse::SseClient;
use common::ws::WsClient;
use common::ws::connect_as;
use serde_json::json;
use two_nodes::two_nodes;

const WAIT: Duration = Duration::from_secs(15);

/// Reads until `user_left` for `user` (other roster traffic skipped).
async fn until_left(ws: &mut WsClient, user: &str) {
    loop {
        let left = ws.until("user_left").await;
        if left["oderId"] == user {
            return;
        }
    }
}

/// `ws` received no `chat_message` before the answer to a keepalive sent now.
async fn got_no_chat(ws: &mut WsClient) {
    ws.send(json!({"type": "keepalive"})).await;
    loop {
        let next = ws.recv().await;
        assert_ne!(
            next["type"], "chat_message",
            "chat after withdrawal: {next}"
        );
        if next["type"] == "keepalive" {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn withdrawals_through_node_a_reach_websockets_on_node_b() {
    let Some((_redis, a, b)) =
        two_nodes("withdrawals_reach_websockets_on_node_b", "withdraw:").await
    else {
        return;
    };
    let rest = a.client();
    let (ada_token, _) = rest.guest("Ada").await;
    rest.create_public_server(&ada_token, "lobby", "Lobby")
        .await;
    let mut ada = connect_as(&a, &ada_token, "Ada").await;
    ada.join("lobby").await;

    // Ban: Bob on node B is out of the room on both nodes and hears no more of its chat.
    let (bob_token, bob_id) = rest.guest("Bob").await;
    let (carol_token, carol_id) = rest.guest("Carol").await;
    let mut bob = connect_as(&b, &bob_token, "Bob").await;
    let mut carol = connect_as(&b, &carol_token, "Carol").await;
    bob.join("lobby").await;
    carol.join("lobby").await;
    until_joined(&mut ada, &carol_id).await;
    rest.call(
        "POST",
        "/api/servers/lobby/bans",
        Some(&ada_token),
        Some(&json!({"userId": bob_id})),
    )
    .await
    .expect_ok(200);
    let denied = bob.until("access_denied").await;
    assert_eq!(denied["reason"], "banned", "{denied}");
    assert_eq!(denied["serverId"], "lobby", "{denied}");
    until_left(&mut ada, &bob_id).await;
    until_left(&mut carol, &bob_id).await;
    ada.send(json!({"type": "chat_message", "serverId": "lobby", "message": {"text": "after"}}))
        .await;
    // Carol on node B got it: Bob, had he still been in the room there, would have got it first.
    assert_eq!(
        carol.until("chat_message").await["message"]["text"],
        "after"
    );
    got_no_chat(&mut bob).await;
    // Node B's admission agrees: the ban holds there too.
    bob.send(json!({"type": "join_server", "serverId": "lobby"}))
        .await;
    assert_eq!(bob.until("access_denied").await["reason"], "banned");

    // Kick: a member removed through node A leaves the room on node B.
    let (dave_token, dave_id) = rest.guest("Dave").await;
    let mut dave = connect_as(&b, &dave_token, "Dave").await;
    dave.join("lobby").await;
    until_joined(&mut ada, &dave_id).await;
    rest.call(
        "DELETE",
        &format!("/api/servers/lobby/members/{dave_id}"),
        Some(&ada_token),
        None,
    )
    .await
    .expect_ok(200);
    assert_eq!(dave.until("access_denied").await["reason"], "removed");
    until_left(&mut ada, &dave_id).await;

    // Made private: a viewer on node B that is no member stops viewing.
    let mut eve = WsClient::connect(b.addr, "/ws").await;
    eve.send(json!({"type": "identify", "oderId": "eve", "displayName": "Eve"}))
        .await;
    eve.send(json!({"type": "view_server", "serverId": "lobby"}))
        .await;
    eve.expect("server_users").await;
    rest.call(
        "PATCH",
        "/api/servers/lobby",
        Some(&ada_token),
        Some(&json!({"visibility": "private"})),
    )
    .await
    .expect_ok(200);
    assert_eq!(eve.until("access_denied").await["reason"], "private");

    // Deleted: everyone on node B leaves, the owner's own tab there included.
    let mut ada_on_b = connect_as(&b, &ada_token, "Ada").await;
    ada_on_b.join("lobby").await;
    rest.call("DELETE", "/api/servers/lobby", Some(&ada_token), None)
        .await
        .expect_ok(200);
    assert_eq!(ada_on_b.until("access_denied").await["reason"], "not_found");
}

/// Reads until `user_joined` for `user`.
async fn until_joined(ws: &mut WsClient, user: &str) {
    loop {
        let joined = ws.until("user_joined").await;
        if joined["oderId"] == user {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ban_through_node_a_ends_an_sse_session_on_node_b() {
    let Some((_redis, a, b)) = two_nodes(
        "a_ban_through_node_a_ends_an_sse_session_on_node_b",
        "withdraw:",
    )
    .await
    else {
        return;
    };
    let rest = a.client();
    let (ada_token, _) = rest.guest("Ada").await;
    // An SSE room is the server whose id is the room's normalized (upper-case) name.
    let room = "LOBBY";
    rest.create_public_server(&ada_token, room, "Lobby").await;
    let mut ada = connect_as(&a, &ada_token, "Ada").await;
    ada.join(room).await;

    let (bob_token, bob_id) = rest.guest("Bob").await;
    let mut bob = SseClient::open_with(b.addr, &format!("room={room}"), Some(&bob_token), WAIT)
        .await
        .ok();
    let (name, joined) = bob.next_event().await;
    assert_eq!(name, "joined", "{joined}");
    let session = joined["id"].as_str().expect("session id").to_owned();
    until_joined(&mut ada, &session).await;

    rest.call(
        "POST",
        &format!("/api/servers/{room}/bans"),
        Some(&ada_token),
        Some(&json!({"userId": bob_id})),
    )
    .await
    .expect_ok(200);
    bob.expect_end().await;
    until_left(&mut ada, &session).await;
}
