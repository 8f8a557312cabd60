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

use std::net::SocketAddr;
use std::time::Duration;

use common::TestServer;
use common::ws::WsClient;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use two_nodes::two_nodes;

const WAIT: Duration = Duration::from_secs(15);

async fn connect_as(server: &TestServer, token: &str, name: &str) -> WsClient {
    let mut ws = WsClient::connect(server.addr, &format!("/ws?token={token}")).await;
    ws.send(json!({"type": "identify", "displayName": name}))
        .await;
    ws.send(json!({"type": "keepalive"})).await;
    ws.expect("keepalive").await;
    ws
}

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
    rest.call(
        "POST",
        "/api/servers",
        Some(&ada_token),
        Some(&json!({"id": "lobby", "name": "Lobby", "visibility": "public"})),
    )
    .await
    .expect_ok(201);
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

/// One `GET /api/connect` stream opened with `Authorization: Bearer`, read over raw TCP
/// (chunked transfer decoded here).
struct SseStream {
    socket: TcpStream,
    raw: Vec<u8>,
    decoded: Vec<u8>,
}

impl SseStream {
    async fn open(addr: SocketAddr, room: &str, token: &str) -> Self {
        let mut socket = TcpStream::connect(addr).await.expect("connect");
        let head = format!(
            "GET /api/connect?room={room} HTTP/1.1\r\nHost: {addr}\r\n\
             Authorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n"
        );
        socket.write_all(head.as_bytes()).await.expect("write");
        let mut raw = Vec::new();
        let split = loop {
            if let Some(p) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                break p;
            }
            let mut buf = [0u8; 4096];
            let n = tokio::time::timeout(WAIT, socket.read(&mut buf))
                .await
                .expect("response head in time")
                .expect("read");
            assert!(n > 0, "connection closed before the response head");
            raw.extend_from_slice(&buf[..n]);
        };
        let head = String::from_utf8_lossy(&raw[..split]).to_string();
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        Self {
            socket,
            raw: raw[split + 4..].to_vec(),
            decoded: Vec::new(),
        }
    }

    /// The next chunk of the body, `None` at its end.
    async fn chunk(&mut self) -> Option<Vec<u8>> {
        loop {
            if let Some(end) = self.raw.windows(2).position(|w| w == b"\r\n") {
                let size_text = String::from_utf8_lossy(&self.raw[..end]).to_string();
                let size = usize::from_str_radix(size_text.trim(), 16).expect("chunk size");
                if size == 0 {
                    return None;
                }
                if self.raw.len() >= end + 2 + size + 2 {
                    let data = self.raw[end + 2..end + 2 + size].to_vec();
                    self.raw.drain(..end + 2 + size + 2);
                    return Some(data);
                }
            }
            let mut buf = vec![0u8; 65536];
            let n = self.socket.read(&mut buf).await.unwrap_or(0);
            if n == 0 {
                return None;
            }
            self.raw.extend_from_slice(&buf[..n]);
        }
    }

    /// The next event's name and data (comments skipped).
    async fn next_event(&mut self) -> (String, Value) {
        loop {
            if let Some(p) = self.decoded.windows(2).position(|w| w == b"\n\n") {
                let block = String::from_utf8(self.decoded[..p + 2].to_vec()).expect("utf-8");
                self.decoded.drain(..p + 2);
                if block.starts_with(':') {
                    continue;
                }
                let mut lines = block.lines();
                let name = lines.next().and_then(|l| l.strip_prefix("event: "));
                let data = lines.next().and_then(|l| l.strip_prefix("data: "));
                let (Some(name), Some(data)) = (name, data) else {
                    panic!("not an event: {block}");
                };
                return (name.to_owned(), serde_json::from_str(data).expect("json"));
            }
            let chunk = tokio::time::timeout(WAIT, self.chunk())
                .await
                .expect("an event in time")
                .expect("the stream ended");
            self.decoded.extend(chunk);
        }
    }

    /// Reads until the server ends the stream (keepalives and events skipped).
    async fn expect_end(&mut self) {
        tokio::time::timeout(WAIT, async { while self.chunk().await.is_some() {} })
            .await
            .expect("the stream ended in time");
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
    rest.call(
        "POST",
        "/api/servers",
        Some(&ada_token),
        Some(&json!({"id": room, "name": "Lobby", "visibility": "public"})),
    )
    .await
    .expect_ok(201);
    let mut ada = connect_as(&a, &ada_token, "Ada").await;
    ada.join(room).await;

    let (bob_token, bob_id) = rest.guest("Bob").await;
    let mut bob = SseStream::open(b.addr, room, &bob_token).await;
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
