//! Frame cap, rate limit, heartbeat, slow consumers, connection caps and `/metrics`.

use std::time::Duration;

use futures_util::SinkExt as _;
use serde_json::json;

use crate::common::TestServer;
use crate::common::ws::WsClient;
use crate::{User, lobby};

#[tokio::test]
async fn frames_over_the_cap_close_with_1009() {
    let server = TestServer::start_with(r#"{"realtime": {"maxFrameBytes": 1024}}"#).await;
    let mut ws = WsClient::connect(server.addr, "/ws").await;
    ws.send(json!({"type": "keepalive", "pad": "x".repeat(900)}))
        .await;
    ws.expect("keepalive").await;
    ws.send(json!({"type": "keepalive", "pad": "x".repeat(4096)}))
        .await;
    assert_eq!(ws.expect_close().await.code, 1009);
}

#[tokio::test]
async fn the_rate_limit_answers_then_closes_with_1008() {
    let variables = r#"{"realtime": {"rateLimitBurst": 5, "rateLimitRefillPerSec": 1, "rateLimitStrikesBeforeClose": 3}}"#;
    let server = TestServer::start_with(variables).await;
    let mut ws = WsClient::connect(server.addr, "/ws").await;
    for _ in 0..5 {
        ws.send(json!({"type": "keepalive"})).await;
    }
    for _ in 0..5 {
        ws.expect("keepalive").await;
    }
    ws.send(json!({"type": "keepalive"})).await;
    let error = ws.expect_error("RATE_LIMITED").await;
    assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
    // Within the same second further refusals are not answered one by one; binary frames pay
    // too; the third strike closes.
    ws.stream
        .send(tokio_tungstenite::tungstenite::Message::binary(vec![
            0u8;
            8
        ]))
        .await
        .expect("send binary");
    ws.send(json!({"type": "keepalive"})).await;
    assert_eq!(ws.expect_close().await.code, 1008);
}

#[tokio::test]
async fn silent_connections_close_with_4002_and_live_ones_stay() {
    let variables = r#"{"realtime": {"heartbeatIntervalMs": 100, "heartbeatTimeoutMs": 400}}"#;
    let server = TestServer::start_with(variables).await;
    // This client reads (so it answers pings with pongs) and stays past several timeouts.
    let mut live = WsClient::connect(server.addr, "/ws").await;
    live.expect_silence(Duration::from_millis(1200)).await;
    live.send(json!({"type": "keepalive"})).await;
    live.expect("keepalive").await;
    // This one does not read, so it never answers a ping.
    let mut silent = WsClient::connect(server.addr, "/ws").await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let closed = silent.expect_close().await;
    assert_eq!(closed.code, 4002);
    assert_eq!(closed.reason, "heartbeat timeout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_consumer_is_closed_and_nobody_else_waits() {
    // Small queue, generous rate limit, 16 KiB messages: the stalled client's socket buffers
    // fill within a few hundred messages, then its queue overflows. The write timeout is long
    // enough that the overflow, not a blocked write timing out on a loaded machine, closes it.
    let variables = r#"{"realtime": {"outboundQueueEnvelopes": 256, "rateLimitBurst": 100000, "rateLimitRefillPerSec": 100000, "writeTimeoutMs": 5000}}"#;
    let (server, mut sender) = lobby(variables).await;
    let mut reader = User::new(&server, "Reader").await;
    reader.ws.join("lobby").await;
    let mut stalled = User::new(&server, "Stalled").await;
    stalled.ws.join("lobby").await;
    sender.ws.until("user_joined").await;
    sender.ws.until("user_joined").await;
    reader.ws.until("user_joined").await;

    // Windows of 100: a healthy reader keeps up with a sender that waits for it, while the
    // stalled client's backlog grows past every buffer on the way.
    const WINDOW: usize = 100;
    const MESSAGES: usize = 2000;
    let text = "x".repeat(16 * 1024);
    let mut left = None;
    let storm = async {
        let mut next = 0;
        for window in 0..MESSAGES / WINDOW {
            for i in window * WINDOW..(window + 1) * WINDOW {
                sender
                    .ws
                    .send(json!({"type": "chat_message", "serverId": "lobby", "message": {"i": i, "text": text}}))
                    .await;
            }
            while next < (window + 1) * WINDOW {
                let got = reader.ws.recv().await;
                if got["type"] == "chat_message" {
                    assert_eq!(got["message"]["i"], next, "in order, none lost");
                    next += 1;
                } else if got["type"] == "user_left" {
                    left = Some(got);
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), storm)
        .await
        .expect("the reader got every message while the stalled client sat idle");

    let metrics = server.client().get("/metrics", None).await;
    assert!(
        metrics
            .text
            .contains("signalbox_slow_consumer_closes_total 1"),
        "{}",
        metrics.text
    );
    // The stalled connection is gone from the hub: the others saw it leave.
    let left = match left {
        Some(left) => left,
        None => reader.ws.until("user_left").await,
    };
    assert_eq!(left["oderId"], stalled.id.as_str());
    drop(stalled);
}

#[tokio::test]
async fn connection_caps_refuse_upgrades_with_a_clear_error() {
    let server = TestServer::start_with(r#"{"realtime": {"maxConnectionsPerIp": 2}}"#).await;
    let first = WsClient::connect(server.addr, "/ws").await;
    let _second = WsClient::connect(server.addr, "/ws").await;
    let url = format!("ws://{}/ws", server.addr);
    let refused = tokio_tungstenite::connect_async(url.clone()).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 429);
            let body = response
                .body()
                .as_deref()
                .map(String::from_utf8_lossy)
                .unwrap_or_default();
            assert!(body.contains("RATE_LIMITED"), "{body}");
        }
        other => panic!("expected HTTP 429, got {other:?}"),
    }
    // A slot frees when a connection closes.
    first.close().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    WsClient::connect(server.addr, "/ws").await;

    let full = TestServer::start_with(r#"{"realtime": {"maxConnections": 1}}"#).await;
    let _only = WsClient::connect(full.addr, "/ws").await;
    match tokio_tungstenite::connect_async(format!("ws://{}/ws", full.addr)).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 503);
        }
        other => panic!("expected HTTP 503, got {other:?}"),
    }
}

#[tokio::test]
async fn metrics_count_envelopes_errors_closes_and_latency() {
    let (server, mut ada) = lobby("{}").await;
    let mut bob = User::new(&server, "Bob").await;
    bob.ws.join("lobby").await;
    ada.ws.expect("user_joined").await;
    ada.ws
        .send(json!({"type": "offer", "targetUserId": bob.id, "sdp": {"type": "offer", "sdp": "v=0"}}))
        .await;
    bob.ws.expect("offer").await;
    ada.ws.send(json!({"type": "teleport"})).await;
    ada.ws.expect_error("UNKNOWN_TYPE").await;
    let mut refused = WsClient::connect_raw(server.addr, "/ws?v=999").await;
    refused.expect_close().await;

    let response = server.client().get("/metrics", None).await;
    assert_eq!(response.status, 200);
    let content_type = response
        .headers
        .iter()
        .find(|(k, _)| k == "content-type")
        .map(|(_, v)| v.as_str());
    assert_eq!(
        content_type,
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let text = response.text;
    for line in [
        "signalbox_connections_open 2",
        "signalbox_users_online 2",
        "signalbox_envelopes_in_total{type=\"offer\"} 1",
        "signalbox_envelopes_in_total{type=\"join_server\"} 2",
        "signalbox_envelopes_out_total{type=\"offer\"} 1",
        "signalbox_envelopes_out_total{type=\"user_joined\"} 1",
        "signalbox_errors_total{code=\"UNKNOWN_TYPE\"} 1",
        "signalbox_closes_total{code=\"4000\"} 1",
        "signalbox_forwards_total 1",
        "signalbox_forward_latency_seconds_count 1",
        "signalbox_fanout_size_bucket{le=\"+Inf\"}",
        "# TYPE signalbox_forward_latency_seconds histogram",
        "signalbox_sse_sessions_created_total 0",
        "signalbox_sse_rosters_serialized_total 0",
        "signalbox_sse_delta_rosters_serialized_total 0",
        "signalbox_sse_roster_changes_sent_total 0",
    ] {
        assert!(text.contains(line), "missing `{line}` in\n{text}");
    }
}
