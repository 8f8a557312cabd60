//! SSE across nodes with real processes: agent X's stream on node 1, agent Y's on node 2, their
//! POSTs landing on node 3 (no sticky sessions). An offer, 100 ICE candidates and a marker from
//! X arrive on Y's stream in order, exactly once, each frame byte for byte what standalone
//! sends; a resume of X on node 3 takes its session over from node 1, and a leave through node
//! 2 ends it there. `kill -9` of the node holding a stream: a POST for that session is 403 and
//! a signal to it is 404 on the other nodes, and the room's roster drops it.

use std::net::SocketAddr;

use serde_json::{Value, json};
use signalbox_protocol::sse::{SessionId, SseError, SseEvent};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::{Client, Response};
use crate::harness::{Cluster, DEADLINE, Mode, available, eventually};

/// One `GET /api/connect` stream, read over raw TCP (chunked transfer decoded here).
struct Stream {
    socket: TcpStream,
    raw: Vec<u8>,
    decoded: Vec<u8>,
}

impl Stream {
    async fn open(node: SocketAddr, query: &str) -> Self {
        let mut socket = TcpStream::connect(node).await.expect("connect");
        let head = format!(
            "GET /api/connect?{query} HTTP/1.1\r\nHost: {node}\r\nAccept: text/event-stream\r\n\r\n"
        );
        socket.write_all(head.as_bytes()).await.expect("write");
        let mut raw = Vec::new();
        let split = loop {
            if let Some(p) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                break p;
            }
            let mut buf = [0u8; 4096];
            let n = tokio::time::timeout(DEADLINE, socket.read(&mut buf))
                .await
                .expect("response head in time")
                .expect("read");
            assert!(n > 0, "closed before the response head");
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

    async fn chunk(&mut self) -> Vec<u8> {
        loop {
            if let Some(end) = self.raw.windows(2).position(|w| w == b"\r\n") {
                let size_text = String::from_utf8_lossy(&self.raw[..end]).to_string();
                let size = usize::from_str_radix(size_text.trim(), 16).expect("chunk size");
                assert!(size > 0, "the stream ended");
                if self.raw.len() >= end + 2 + size + 2 {
                    let data = self.raw[end + 2..end + 2 + size].to_vec();
                    self.raw.drain(..end + 2 + size + 2);
                    return data;
                }
            }
            let mut buf = vec![0u8; 65536];
            let n = self.socket.read(&mut buf).await.expect("read");
            assert!(n > 0, "the stream ended");
            self.raw.extend_from_slice(&buf[..n]);
        }
    }

    /// The next event's exact text, comments skipped.
    async fn frame(&mut self) -> String {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            if let Some(p) = self.decoded.windows(2).position(|w| w == b"\n\n") {
                let block = String::from_utf8(self.decoded[..p + 2].to_vec()).expect("utf-8");
                self.decoded.drain(..p + 2);
                if !block.starts_with(':') {
                    return block;
                }
                continue;
            }
            let chunk = tokio::time::timeout_at(deadline, self.chunk())
                .await
                .unwrap_or_else(|_| panic!("no event within {DEADLINE:?}"));
            self.decoded.extend(chunk);
        }
    }

    /// The next event that is not a `roster`.
    async fn non_roster(&mut self) -> String {
        loop {
            let frame = self.frame().await;
            if !frame.starts_with("event: roster\n") {
                return frame;
            }
        }
    }

    /// Reads rosters until one lists exactly `ids`.
    async fn roster(&mut self, ids: &[&str]) {
        let mut want: Vec<&str> = ids.to_vec();
        want.sort_unstable();
        loop {
            let frame = self.frame().await;
            let Some(data) = frame.strip_prefix("event: roster\ndata: ") else {
                continue;
            };
            let mut got: Vec<String> = serde_json::from_str(data.trim_end()).expect("ids");
            got.sort();
            if got == want {
                return;
            }
        }
    }
}

/// A joined agent.
struct Agent {
    stream: Stream,
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
        let mut stream = Stream::open(node, query).await;
        let frame = stream.frame().await;
        let data = frame
            .strip_prefix("event: joined\ndata: ")
            .unwrap_or_else(|| panic!("not joined: {frame:?}"));
        let joined: Value = serde_json::from_str(data.trim_end()).expect("json");
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
    x.stream.roster(&[&x.id, &y.id]).await;
    y.stream.roster(&[&x.id, &y.id]).await;

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
        assert_eq!(y.stream.non_roster().await, frame_of(&x.id, body));
    }
    // Nothing was delivered twice: the next signal after the marker is a fresh one.
    let after = json!({"after": true});
    signal(cluster.addr(3), room, &y, &x.id, &after)
        .await
        .expect_ok(200);
    assert_eq!(x.stream.non_roster().await, frame_of(&y.id, &after));
    signal(cluster.addr(1), room, &x, &y.id, &after)
        .await
        .expect_ok(200);
    assert_eq!(y.stream.non_roster().await, frame_of(&x.id, &after));

    // x's stream moves to node 3 (a resume landing on another node): node 1 gives it up.
    x = x.resume(cluster.addr(3), room).await;
    x.stream.roster(&[&x.id, &y.id]).await;
    signal(cluster.addr(1), room, &y, &x.id, &after)
        .await
        .expect_ok(200);
    assert_eq!(x.stream.non_roster().await, frame_of(&y.id, &after));

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
    y.stream.roster(&[&y.id]).await;
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
    y.stream.roster(&[&x.id, &y.id]).await;

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
    y.stream.roster(&[&y.id]).await;
    let prefix = cluster.key_prefix.clone();
    eventually("no registry entry names the dead session", || {
        let left = cluster.redis(&["EXISTS", &format!("{prefix}sse:{}", x.id)]);
        async move { (left.trim() == "0").then_some(()) }
    })
    .await;
}
