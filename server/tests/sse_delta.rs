//! `GET /api/connect?roster=delta` against a real server on 127.0.0.1:0: a delta stream starts
//! from a full `roster` and then gets one `roster_joined`/`roster_left` per change, which
//! rebuild exactly the list a full stream shows; every new stream of a session (a resume, a
//! replaced stream, a switch of mode) starts from a full `roster` again; a stream without the
//! parameter is unchanged; a value that is not a mode is a 400.
//!
//! The stream is read with `common::sse`'s raw client, so nothing but the server's bytes decides
//! what a client sees.

#![allow(missing_docs)]
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;

use common::TestServer;
use common::sse::SseClient;
use serde_json::{Value, json};

fn ids(value: Value) -> BTreeSet<String> {
    serde_json::from_value(value).unwrap()
}

/// A delta client's view of the room: the last `roster` with every change since applied.
struct DeltaView {
    stream: SseClient,
    members: BTreeSet<String>,
}

impl DeltaView {
    /// Reads the stream's starting `roster` (after `joined`, and any signals kept for it).
    async fn start(mut stream: SseClient) -> (Self, Value) {
        let joined = stream.expect("joined").await;
        let members = loop {
            match stream.next_event().await {
                (name, data) if name == "roster" => break ids(data),
                (name, data) if name == "signal" => drop(data),
                (name, data) => panic!("`{name}` before the first roster: {data}"),
            }
        };
        (Self { stream, members }, joined)
    }

    /// Applies the next event, which must be a change, and returns the members.
    async fn apply_change(&mut self) -> &BTreeSet<String> {
        let (name, data) = self.stream.next_event().await;
        let id = data["id"].as_str().unwrap_or_else(|| panic!("{data}"));
        match name.as_str() {
            "roster_joined" => assert!(self.members.insert(id.to_owned()), "{id} twice"),
            "roster_left" => assert!(self.members.remove(id), "{id} was not there"),
            other => panic!("expected a change, got `{other}`: {data}"),
        }
        &self.members
    }
}

/// A session: id, token, and its stream when opened in full mode.
struct Agent {
    id: String,
    token: String,
}

async fn open_full(addr: std::net::SocketAddr, room: &str) -> (Agent, SseClient) {
    let mut stream = SseClient::open(addr, &format!("room={room}")).await;
    assert_eq!(stream.status, 200, "{:?}", stream.error_body);
    let joined = stream.expect("joined").await;
    (agent_of(&joined), stream)
}

async fn open_delta(addr: std::net::SocketAddr, room: &str) -> (Agent, DeltaView) {
    let stream = SseClient::open(addr, &format!("room={room}&roster=delta")).await;
    assert_eq!(stream.status, 200, "{:?}", stream.error_body);
    let (view, joined) = DeltaView::start(stream).await;
    (agent_of(&joined), view)
}

fn agent_of(joined: &Value) -> Agent {
    Agent {
        id: joined["id"].as_str().unwrap().to_owned(),
        token: joined["token"].as_str().unwrap().to_owned(),
    }
}

async fn leave(s: &TestServer, room: &str, agent: &Agent) {
    let body = json!({"sender": agent.id, "token": agent.token});
    let r = s
        .client()
        .call(
            "POST",
            &format!("/api/leave?room={room}"),
            None,
            Some(&body),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
}

fn resume_query(room: &str, agent: &Agent, mode: &str) -> String {
    format!(
        "room={room}&session_id={}&token={}{mode}",
        agent.id, agent.token
    )
}

fn metric(s: &TestServer, read: impl Fn(&signalbox::transport::sse::SseMetrics) -> u64) -> u64 {
    read(s.server.as_ref().unwrap().state.sse.metrics())
}

#[tokio::test]
async fn a_delta_stream_rebuilds_the_list_a_full_stream_sees_after_each_change() {
    let s = TestServer::start().await;
    let (full, mut full_stream) = open_full(s.addr, "mixed").await;
    assert_eq!(
        ids(full_stream.expect("roster").await),
        [full.id.clone()].into()
    );
    let (delta, mut view) = open_delta(s.addr, "mixed").await;
    assert_eq!(view.members, [full.id.clone(), delta.id.clone()].into());
    assert_eq!(ids(full_stream.expect("roster").await), view.members);

    // Joins and leaves of full and delta sessions, one change at a time: after each, the
    // full stream's roster and the delta stream's rebuilt list are the same set.
    let mut others = Vec::new();
    for step in 0..6 {
        if step % 3 == 2 {
            let gone: Agent = others.remove(0);
            leave(&s, "mixed", &gone).await;
        } else if step % 2 == 0 {
            let (agent, stream) = open_full(s.addr, "mixed").await;
            others.push(agent);
            drop(stream);
        } else {
            let (agent, other_view) = open_delta(s.addr, "mixed").await;
            others.push(agent);
            drop(other_view);
        }
        let shown = ids(full_stream.expect("roster").await);
        let rebuilt = view.apply_change().await.clone();
        assert_eq!(rebuilt, shown, "step {step}");
        let mut expected: BTreeSet<String> = others.iter().map(|a| a.id.clone()).collect();
        expected.extend([full.id.clone(), delta.id.clone()]);
        assert_eq!(rebuilt, expected, "step {step}");
    }
    // Each change cost the delta stream one small event, not a roster.
    assert!(
        view.stream.blocks[2..]
            .iter()
            .all(|b| b.len() < 100 && b.starts_with("event: roster_")),
        "{:?}",
        view.stream.blocks
    );
    assert_eq!(
        view.stream.blocks.len(),
        2 + 6,
        "joined, roster, six changes"
    );
}

const RELAXED: std::sync::atomic::Ordering = std::sync::atomic::Ordering::Relaxed;

#[tokio::test]
async fn every_new_delta_stream_starts_from_a_full_roster() {
    let s = TestServer::start().await;
    let (a, mut a_view) = open_delta(s.addr, "again").await;
    let (b, b_view) = open_delta(s.addr, "again").await;
    a_view.apply_change().await;
    // B's stream goes away; the room changes while it is gone; a signal is kept for it.
    drop(b_view);
    let (c, c_stream) = open_full(s.addr, "again").await;
    drop(c_stream);
    let (d, d_stream) = open_full(s.addr, "again").await;
    drop(d_stream);
    leave(&s, "again", &d).await;
    let body = json!({"sender": a.id, "to": b.id, "token": a.token, "signal": {"n": 1}});
    let r = s
        .client()
        .call("POST", "/api/signal?room=again", None, Some(&body))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    for _ in 0..3 {
        a_view.apply_change().await;
    }
    let now: BTreeSet<String> = [a.id.clone(), b.id.clone(), c.id.clone()].into();
    assert_eq!(a_view.members, now);

    // Resumed: `joined`, the kept signal, then a full roster of the room as it is now.
    let resumed = SseClient::open(s.addr, &resume_query("again", &b, "&roster=delta")).await;
    assert_eq!(resumed.status, 200);
    let (mut b_view, joined) = DeltaView::start(resumed).await;
    assert_eq!(joined["id"], b.id.as_str());
    assert!(
        b_view.stream.blocks.iter().any(|x| x.contains("\"n\":1")),
        "the kept signal came: {:?}",
        b_view.stream.blocks
    );
    assert_eq!(b_view.members, now);
    // ... and changes after it.
    leave(&s, "again", &c).await;
    let after: BTreeSet<String> = [a.id.clone(), b.id.clone()].into();
    assert_eq!(b_view.apply_change().await, &after);
    assert_eq!(a_view.apply_change().await, &after);

    // A second stream replacing a live one starts over too; the first ends.
    let replaced = SseClient::open(s.addr, &resume_query("again", &b, "&roster=delta")).await;
    let (mut b_again, _) = DeltaView::start(replaced).await;
    assert_eq!(b_again.members, after);
    b_view.stream.expect_end().await;
    let (e, e_stream) = open_full(s.addr, "again").await;
    drop(e_stream);
    let with_e: BTreeSet<String> = [a.id.clone(), b.id.clone(), e.id.clone()].into();
    assert_eq!(b_again.apply_change().await, &with_e);

    // Switching modes on resume: full, then delta again, each starting from a roster.
    drop(b_again);
    let mut full = SseClient::open(s.addr, &resume_query("again", &b, "&roster=full")).await;
    full.expect("joined").await;
    assert_eq!(ids(full.expect("roster").await), with_e);
    leave(&s, "again", &e).await;
    assert_eq!(ids(full.expect("roster").await), after);
    drop(full);
    let back = SseClient::open(s.addr, &resume_query("again", &b, "&roster=delta")).await;
    let (back, _) = DeltaView::start(back).await;
    assert_eq!(back.members, after);
    // One roster per delta stream start: A's, B's first, and B's four resumed streams
    // (the full one counts among the shared rosters).
    assert_eq!(metric(&s, |m| m.delta_rosters_serialized.load(RELAXED)), 5);
}

#[tokio::test]
async fn a_delta_stream_dropped_as_slow_resumes_from_a_full_roster() {
    let s = TestServer::start_with(common::sse::STALL_VARIABLES).await;
    let (a, mut a_view) = open_delta(s.addr, "stall").await;
    let (b, mut b_view) = open_delta(s.addr, "stall").await;
    a_view.apply_change().await;
    // B stops reading; A's large signals fill its stream until the server drops it.
    let payload = json!({"blob": "x".repeat(512 * 1024)});
    let body = json!({"sender": a.id, "to": b.id, "token": a.token, "signal": payload});
    let mut sent = 0;
    while metric(&s, |m| m.streams_dropped_slow.load(RELAXED)) == 0 {
        let r = s
            .client()
            .call("POST", "/api/signal?room=stall", None, Some(&body))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        sent += 1;
        assert!(sent < 400, "the stalled stream was never dropped");
    }
    // Changes while B has no stream: C joins and leaves, D joins.
    let (c, c_stream) = open_full(s.addr, "stall").await;
    drop(c_stream);
    leave(&s, "stall", &c).await;
    let (d, d_stream) = open_full(s.addr, "stall").await;
    drop(d_stream);
    for _ in 0..3 {
        a_view.apply_change().await;
    }
    let now: BTreeSet<String> = [a.id.clone(), b.id.clone(), d.id.clone()].into();
    assert_eq!(a_view.members, now);
    // The old stream, read again, shows only changes that apply, then ends.
    while let Some((name, data)) = b_view.stream.next_or_end().await {
        match name.as_str() {
            "roster_joined" => {
                assert!(
                    b_view
                        .members
                        .insert(data["id"].as_str().unwrap().to_owned())
                );
            }
            "roster_left" => assert!(b_view.members.remove(data["id"].as_str().unwrap())),
            "signal" => {}
            other => panic!("`{other}` on a dropped delta stream: {data}"),
        }
    }
    // The resumed stream starts from the room as it is now, then follows it.
    let resumed = SseClient::open(s.addr, &resume_query("stall", &b, "&roster=delta")).await;
    let (mut b_again, _) = DeltaView::start(resumed).await;
    assert_eq!(b_again.members, now);
    leave(&s, "stall", &d).await;
    let after: BTreeSet<String> = [a.id.clone(), b.id.clone()].into();
    loop {
        // Signals kept for B's return may still come first.
        let (name, data) = b_again.stream.next_event().await;
        if name == "signal" {
            continue;
        }
        assert_eq!(name, "roster_left", "{data}");
        assert!(b_again.members.remove(data["id"].as_str().unwrap()));
        break;
    }
    assert_eq!(b_again.members, after);
}

#[tokio::test]
async fn a_stream_without_the_parameter_is_unchanged_beside_delta_streams() {
    let s = TestServer::start().await;
    let (a, mut legacy) = open_full(s.addr, "legacy").await;
    let (b, _delta) = open_delta(s.addr, "legacy").await;
    let (c, _explicit) = open_full(s.addr, "legacy").await;
    leave(&s, "legacy", &c).await;
    let mut shown = Vec::new();
    for _ in 0..4 {
        shown.push(ids(legacy.expect("roster").await));
    }
    let (ab, abc): (BTreeSet<String>, BTreeSet<String>) = (
        [a.id.clone(), b.id.clone()].into(),
        [a.id.clone(), b.id.clone(), c.id.clone()].into(),
    );
    assert_eq!(shown, [[a.id.clone()].into(), ab.clone(), abc, ab]);
    // The exact bytes of the source service: `event: roster`, compact JSON array of ids.
    for block in &legacy.blocks[1..] {
        let data = block.strip_prefix("event: roster\ndata: ").unwrap();
        let list: Vec<String> = serde_json::from_str(data).unwrap();
        assert_eq!(data, serde_json::to_string(&list).unwrap());
    }
    // `roster=full` is the same as no parameter.
    let mut explicit = SseClient::open(s.addr, "room=legacy&roster=full").await;
    explicit.expect("joined").await;
    assert_eq!(
        explicit.expect("roster").await.as_array().map(Vec::len),
        Some(3)
    );
}

#[tokio::test]
async fn a_roster_value_that_is_not_a_mode_is_a_400() {
    let s = TestServer::start().await;
    for value in ["", "Delta", "DELTA", "deltas", "none", "full%20"] {
        let stream = SseClient::open(s.addr, &format!("room=bad&roster={value}")).await;
        assert_eq!(stream.status, 400, "roster={value}");
        assert_eq!(
            stream.error_body,
            Some(json!({"error": "Missing required parameters"})),
            "roster={value}"
        );
    }
    // Nothing was created for them.
    assert_eq!(metric(&s, |m| m.sessions_created.load(RELAXED)), 0);
}
