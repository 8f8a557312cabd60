//! The process-level cluster suite (issue 13): real `signalbox serve` nodes, Redis and PostgreSQL
//! started by `scripts/cluster up`, real WebSocket and HTTP clients spread over the nodes.
//!
//! - `forwarding`: a cross-node offer, 100 ICE candidates and an answer arrive in order, exactly
//!   once; an absent target answers `TARGET_NOT_FOUND`.
//! - `rosters`: joins on three nodes give every member the same roster without duplicates; a
//!   broadcast reaches no node without a member (`PUBSUB NUMSUB`).
//! - `node_faults`: `kill -9` of a node: its users leave every roster, no Redis key names it,
//!   they reconnect elsewhere; `kill -STOP`/`-CONT`: reaped, then announced again.
//! - `redis_faults`: `CLIENT KILL TYPE pubsub`; `SHUTDOWN NOSAVE` and start: health stays 200,
//!   rosters converge, delivery across nodes resumes.
//! - `slow_consumer`: a stalled client on one node is closed by that node alone; Redis's output
//!   buffers stay small.
//! - `pg_faults`: a PostgreSQL crash answers 503, then every node recovers with the same pid.
//! - `migrations`: three nodes started together on an empty database apply each migration once.
//!
//! Every case is `#[ignore]`d in the plain `cargo test`: it starts processes and services and
//! must run alone. `scripts/test` runs them with
//! `cargo test -p signalbox --test cluster -- --ignored --test-threads 1`. Without redis-server
//! or PostgreSQL a case prints why it is skipped (a failure under `CI=true`). Never asserts on
//! elapsed time: it waits for conditions with generous deadlines.

#![allow(missing_docs)]

#[path = "../common/mod.rs"]
mod common;

mod forwarding;
mod harness;
mod migrations;
mod node_faults;
mod pg_faults;
mod redis_faults;
mod rosters;
mod slow_consumer;

use std::net::SocketAddr;

use serde_json::{Value, json};

use common::Client;
use common::ws::WsClient;

/// A guest connected over WebSocket to one node, identified by its token.
pub struct User {
    pub id: String,
    pub token: String,
    pub ws: WsClient,
}

impl User {
    /// A new guest named `name`, created through `node`'s REST API and connected to it.
    pub async fn on(node: SocketAddr, name: &str) -> Self {
        let (token, id) = Client { addr: node }.guest(name).await;
        let ws = connect_as(node, &token, name).await;
        Self { id, token, ws }
    }
}

/// Connects to `node` with `?token=` and identifies; a keepalive round trip proves it.
pub async fn connect_as(node: SocketAddr, token: &str, name: &str) -> WsClient {
    let mut ws = WsClient::connect(node, &format!("/ws?token={token}")).await;
    ws.send(json!({"type": "identify", "displayName": name}))
        .await;
    ws.send(json!({"type": "keepalive"})).await;
    ws.until("keepalive").await;
    ws
}

/// Creates the public server `id` owned by `token`'s user through `node`.
pub async fn create_server(node: SocketAddr, token: &str, id: &str) -> Value {
    let body = json!({"id": id, "name": format!("Server {id}")});
    Client { addr: node }
        .call("POST", "/api/servers", Some(token), Some(&body))
        .await
        .expect_ok(201)
}

/// The first envelope on `ws` that `matches`, within `within`; `None` when none came (frames
/// that do not match are consumed).
pub async fn first_within(
    ws: &mut WsClient,
    within: std::time::Duration,
    matches: impl Fn(&Value) -> bool,
) -> Option<Value> {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, ws.stream.next()).await {
            Err(_) => return None,
            Ok(Some(Ok(Message::Text(text)))) => {
                let envelope: Value = serde_json::from_str(text.as_str()).expect("JSON");
                if matches(&envelope) {
                    return Some(envelope);
                }
            }
            Ok(Some(Ok(_))) => {}
            Ok(other) => panic!("the connection ended while waiting: {other:?}"),
        }
    }
}

/// The first envelope on `ws` that `matches`, failing with `what` after the harness deadline.
pub async fn wait_for(ws: &mut WsClient, what: &str, matches: impl Fn(&Value) -> bool) -> Value {
    first_within(ws, harness::DEADLINE, matches)
        .await
        .unwrap_or_else(|| panic!("gave up after {:?} waiting for: {what}", harness::DEADLINE))
}

/// `envelope` is `wire_type` about user `id` (`oderId`).
pub fn is(envelope: &Value, wire_type: &str, id: &str) -> bool {
    envelope["type"] == wire_type && envelope["oderId"] == id
}

/// Waits for a fresh `server_users` of `server` on `user` (a resync sends one to every
/// member), then applies the `user_joined` / `user_left` that follow it until the roster is
/// exactly `expected`; fails on a member announced twice or leaving without being there.
pub async fn fresh_roster(user: &mut User, server: &str, expected: &[&str]) {
    let users = wait_for(&mut user.ws, "a fresh roster", |e| {
        e["type"] == "server_users" && e["serverId"] == server
    })
    .await;
    let mut members = std::collections::BTreeSet::new();
    for entry in users["users"].as_array().expect("users") {
        let id = entry["oderId"].as_str().expect("oderId").to_owned();
        assert!(members.insert(id), "twice in {users}");
    }
    let expected: std::collections::BTreeSet<String> =
        expected.iter().map(|id| (*id).to_owned()).collect();
    while members != expected {
        let envelope = user.ws.recv().await;
        if envelope["serverId"] != server {
            continue;
        }
        let id = envelope["oderId"].as_str().unwrap_or_default().to_owned();
        match envelope["type"].as_str() {
            Some("user_joined") => assert!(members.insert(id), "twice: {envelope}"),
            Some("user_left") => assert!(members.remove(&id), "not there: {envelope}"),
            _ => {}
        }
    }
}

/// Sends direct messages from `from` to `to` until one arrives (the path may be healing after a
/// fault); fails after the harness deadline.
pub async fn reaches(from: &mut User, to: &mut User) {
    let deadline = tokio::time::Instant::now() + harness::DEADLINE;
    for attempt in 0u32.. {
        from.ws
            .send(json!({"type": "direct-message", "targetUserId": to.id, "payload": {"attempt": attempt}}))
            .await;
        let got = first_within(&mut to.ws, std::time::Duration::from_millis(500), |e| {
            e["type"] == "direct-message" && e["payload"]["attempt"] == attempt
        })
        .await;
        if got.is_some() {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "gave up after {:?}: no direct message from {} reached {}",
            harness::DEADLINE,
            from.id,
            to.id
        );
    }
}
