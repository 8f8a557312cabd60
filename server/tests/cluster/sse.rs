//! SSE across nodes with real processes: agent X's stream on node 1, agent Y's on node 2, their
//! POSTs landing on node 3 (no sticky sessions). An offer, 100 ICE candidates and a marker from
//! X arrive on Y's stream in order, exactly once, each frame byte for byte what standalone
//! sends; a resume of X on node 3 takes its session over from node 1, and a leave through node
//! 2 ends it there. `kill -9` of the node holding a stream: a POST for that session is 403 and
//! a signal to it is 404 on the other nodes, and the room's roster drops it.

use std::net::SocketAddr;

use serde_json::{Value, json};
use signalbox_protocol::sse::{SessionId, SseError, SseEvent};

use crate::common::sse::SseClient;
use crate::common::{Client, Response};
use crate::harness::{Cluster, DEADLINE, Mode, available, eventually};

/// A joined agent.
struct Agent {
    stream: SseClient,
    id: String,
    token: String,
}

impl Agent {
    async fn join(node: SocketAddr, room: &str) -> Self {
        Self::connect(node, &format!("room={room}")).await
    }

    /// Resumes this agent's session on `node`: the same id and token come back.
    async fn resume(&self, node: SocketAddr, room: &str) -> Self {
        let query = format!("room={room}&session_id={}&token={}", self.id, self.token);
        let resumed = Self::connect(node, &query).await;
        assert_eq!((&resumed.id, &resumed.token), (&self.id, &self.token));
        resumed
    }

    async fn connect(node: SocketAddr, query: &str) -> Self {
        let mut stream = SseClient::open_with(node, query, None, DEADLINE).await.ok();
        let joined = stream.expect("joined").await;
        Self {
            id: joined["id"].as_str().expect("id").to_owned(),
            token: joined["token"].as_str().expect("token").to_owned(),
            stream,
        }
    }
}

async fn signal(node: SocketAddr, room: &str, from: &Agent, to: &str, body: &Value) -> Response {
    let request = json!({"sender": from.id, "to": to, "token": from.token, "signal": body});
    Client { addr: node }
        .call(
            "POST",
            &format!("/api/signal?room={room}"),
            None,
            Some(&request),
        )
        .await
}

fn frame_of(sender: &str, signal: &Value) -> String {
    let raw = serde_json::value::to_raw_value(signal).expect("raw");
    SseEvent::raw_signal_frame(&SessionId(sender.to_owned()), &raw).expect("frame")
}

fn refused(response: &Response, error: SseError) -> bool {
    response.status == error.status() && response.json()["error"] == error.message()
}

#[tokio::test]
#[ignore = "cluster suite: starts processes, Redis and PostgreSQL; run by scripts/test"]
async fn sse_signals_posted_on_a_third_node_arrive_in_order_exactly_once() {
    let test = "sse_signals_posted_on_a_third_node_arrive_in_order_exactly_once";
    if available(test).is_none() {
        return;
    }
    // 103 signals in a burst: above the default bucket, which the owner node applies.
    let cluster = Cluster::up_with(3, Mode::Redis, r#"{"sse": {"rateLimitBurst": 1000}}"#);
    let room = "AGENTS";
    let mut x = Agent::join(cluster.addr(1), room).await;
    let mut y = Agent::join(cluster.addr(2), room).await;
    x.stream.until_roster(&[&x.id, &y.id]).await;
    y.stream.until_roster(&[&x.id, &y.id]).await;

    let mut sent = vec![json!({"type": "offer", "sdp": "v=0"})];
    sent.extend(
        (0..100).map(|n| json!({"type": "candidate", "candidate": format!("candidate:{n}")})),
    );
    sent.push(json!({"marker": "last"}));
    for body in &sent {
        signal(cluster.addr(3), room, &x, &y.id, body)
            .await
            .expect_ok(200);
    }
    for body in &sent {
        assert_eq!(y.stream.next_non_roster().await, frame_of(&x.id, body));
    }
    // Nothing was delivered twice: the next signal after the marker is a fresh one.
    let after = json!({"after": true});
    signal(cluster.addr(3), room, &y, &x.id, &after)
        .await
        .expect_ok(200);
    assert_eq!(x.stream.next_non_roster().await, frame_of(&y.id, &after));
    signal(cluster.addr(1), room, &x, &y.id, &after)
        .await
        .expect_ok(200);
    assert_eq!(y.stream.next_non_roster().await, frame_of(&x.id, &after));

    // x's stream moves to node 3 (a resume landing on another node): node 1 gives it up.
    x = x.resume(cluster.addr(3), room).await;
    x.stream.until_roster(&[&x.id, &y.id]).await;
    signal(cluster.addr(1), room, &y, &x.id, &after)
        .await
        .expect_ok(200);
    assert_eq!(x.stream.next_non_roster().await, frame_of(&y.id, &after));

    let leave = json!({"sender": x.id, "token": x.token});
    Client {
        addr: cluster.addr(2),
    }
    .call(
        "POST",
        &format!("/api/leave?room={room}"),
        None,
        Some(&leave),
    )
    .await
    .expect_ok(200);
    y.stream.until_roster(&[&y.id]).await;
    let gone = signal(cluster.addr(2), room, &x, &y.id, &after).await;
    assert!(refused(&gone, SseError::InvalidToken), "{}", gone.text);
}

#[tokio::test]
#[ignore = "cluster suite: starts processes, Redis and PostgreSQL; run by scripts/test"]
async fn a_killed_nodes_sse_sessions_are_refused_elsewhere_and_leave_the_roster() {
    let test = "a_killed_nodes_sse_sessions_are_refused_elsewhere_and_leave_the_roster";
    if available(test).is_none() {
        return;
    }
    let cluster = Cluster::up(3, Mode::Redis);
    let room = "AGENTS";
    let x = Agent::join(cluster.addr(1), room).await;
    let mut y = Agent::join(cluster.addr(2), room).await;
    y.stream.until_roster(&[&x.id, &y.id]).await;

    cluster.node("kill", 1);
    let body = json!({"after": "kill"});
    // Before the reaper runs the owner's channel has no listener; after, no entry is left:
    // either way the session is unknown (403) and a target on no node (404).
    let from_dead = signal(cluster.addr(3), room, &x, &y.id, &body).await;
    assert!(
        refused(&from_dead, SseError::InvalidToken),
        "{}",
        from_dead.text
    );
    let to_dead = signal(cluster.addr(2), room, &y, &x.id, &body).await;
    assert!(
        refused(&to_dead, SseError::TargetNotInRoom),
        "{}",
        to_dead.text
    );
    y.stream.until_roster(&[&y.id]).await;
    let prefix = cluster.key_prefix.clone();
    eventually("no registry entry names the dead session", || {
        let left = cluster.redis(&["EXISTS", &format!("{prefix}sse:{}", x.id)]);
        async move { (left.trim() == "0").then_some(()) }
    })
    .await;
}
