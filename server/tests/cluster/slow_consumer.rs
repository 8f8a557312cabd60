//! A slow consumer on one node is closed alone: Ada (node 1) floods `lobby` while Reader
//! (node 3) keeps up and Stalled (node 2) never reads. Reader gets every message in order,
//! Stalled leaves everyone's roster, only node 2 counts a slow-consumer close, and Redis's
//! output buffer for every subscriber connection stays under 1 MiB (the backlog is held, and
//! dropped, by the node, not by Redis).

use serde_json::json;

use crate::common::Client;
use crate::harness::{Cluster, Mode, available};
use crate::{User, create_server, is, wait_for};

/// Small per-connection queue, generous rate limit: the stalled client's queue overflows
/// within a few hundred 16 KiB messages.
const VARIABLES: &str = r#"{"realtime": {"outboundQueueEnvelopes": 256, "writeTimeoutMs": 1000}}"#;
const WINDOW: usize = 100;
const MESSAGES: usize = 2000;

async fn slow_consumer_closes(node: std::net::SocketAddr) -> u64 {
    let metrics = Client { addr: node }.get("/metrics", None).await;
    metrics
        .text
        .lines()
        .find_map(|l| l.strip_prefix("signalbox_slow_consumer_closes_total "))
        .map_or(0, |n| n.trim().parse().expect("a count"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "cluster suite: starts processes, Redis and PostgreSQL; run by scripts/test"]
async fn a_slow_consumer_on_one_node_is_closed_alone() {
    let test = "a_slow_consumer_on_one_node_is_closed_alone";
    if available(test).is_none() {
        return;
    }
    let cluster = Cluster::up_with(3, Mode::Redis, VARIABLES);
    let mut ada = User::on(cluster.addr(1), "Ada").await;
    create_server(cluster.addr(1), &ada.token, "lobby").await;
    ada.ws.join("lobby").await;
    let mut reader = User::on(cluster.addr(3), "Reader").await;
    reader.ws.join("lobby").await;
    let mut stalled = User::on(cluster.addr(2), "Stalled").await;
    stalled.ws.join("lobby").await;
    wait_for(&mut ada.ws, "Reader joined", |e| {
        is(e, "user_joined", &reader.id)
    })
    .await;
    wait_for(&mut reader.ws, "Stalled joined", |e| {
        is(e, "user_joined", &stalled.id)
    })
    .await;

    // Windows of 100: the reader keeps up with a sender that waits for it, while the stalled
    // client's backlog grows past every buffer on the way.
    let text = "x".repeat(16 * 1024);
    let mut next = 0;
    let mut left = false;
    for window in 0..MESSAGES / WINDOW {
        for i in window * WINDOW..(window + 1) * WINDOW {
            ada.ws
                .send(json!({"type": "chat_message", "serverId": "lobby", "message": {"i": i, "text": text}}))
                .await;
        }
        while next < (window + 1) * WINDOW {
            let got = reader.ws.recv().await;
            if got["type"] == "chat_message" {
                assert_eq!(got["message"]["i"], next, "in order, none lost");
                next += 1;
            } else if is(&got, "user_left", &stalled.id) {
                left = true;
            }
        }
    }
    if !left {
        wait_for(&mut reader.ws, "Stalled left", |e| {
            is(e, "user_left", &stalled.id)
        })
        .await;
    }
    assert_eq!(
        slow_consumer_closes(cluster.addr(2)).await,
        1,
        "node 2 closed it"
    );
    assert_eq!(
        slow_consumer_closes(cluster.addr(1)).await,
        0,
        "node 1 closed none"
    );
    assert_eq!(
        slow_consumer_closes(cluster.addr(3)).await,
        0,
        "node 3 closed none"
    );

    let clients = cluster.redis(&["client", "list", "type", "pubsub"]);
    assert!(!clients.trim().is_empty(), "the nodes subscribe: {clients}");
    for line in clients.lines() {
        let omem: u64 = line
            .split_whitespace()
            .find_map(|field| field.strip_prefix("omem="))
            .expect("omem")
            .parse()
            .expect("a byte count");
        assert!(omem < 1024 * 1024, "output buffer under 1 MiB: {line}");
    }
    drop(stalled);
}
