//! The SSE transport against a real server on 127.0.0.1:0: the example clients' flows, every
//! status code, the rate limit, pruning, keepalives, TURN credentials, a stream that stops
//! reading, and an SSE agent and a WebSocket-side hub member in one room.
//!
//! The SSE stream is read with `common::sse`'s raw client, so nothing but the server's bytes
//! decides what a client sees.

#![allow(missing_docs)]
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use base64::Engine as _;
use common::TestServer;
use common::sse::{SseClient, SseItem, WAIT};
use common::ws::WsClient;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};

/// A joined session: its stream, id and token.
struct Agent {
    stream: SseClient,
    id: String,
    token: String,
    joined: Value,
}

async fn join(addr: std::net::SocketAddr, room: &str) -> Agent {
    let mut stream = SseClient::open(addr, &format!("room={room}")).await;
    assert_eq!(stream.status, 200, "{:?}", stream.error_body);
    let joined = stream.expect("joined").await;
    Agent {
        id: joined["id"].as_str().unwrap().to_owned(),
        token: joined["token"].as_str().unwrap().to_owned(),
        stream,
        joined,
    }
}

async fn post(s: &TestServer, path: &str, body: &Value) -> common::Response {
    s.client().call("POST", path, None, Some(body)).await
}

async fn signal(
    s: &TestServer,
    room: &str,
    from: &Agent,
    to: &str,
    signal: Value,
) -> common::Response {
    signal_as(s, room, (&from.id, &from.token), to, signal).await
}

async fn signal_as(
    s: &TestServer,
    room: &str,
    (id, token): (&str, &str),
    to: &str,
    signal: Value,
) -> common::Response {
    let body = json!({"sender": id, "to": to, "token": token, "signal": signal});
    post(s, &format!("/api/signal?room={room}"), &body).await
}

async fn leave(s: &TestServer, room: &str, agent: &Agent) -> common::Response {
    let body = json!({"sender": agent.id, "token": agent.token});
    post(s, &format!("/api/leave?room={room}"), &body).await
}

fn expect_error(response: &common::Response, status: u16) {
    assert_eq!(response.status, status, "{}", response.text);
    let body = response.json();
    let message = body["error"]
        .as_str()
        .unwrap_or_else(|| panic!("not an SSE error: {body}"));
    let expected = signalbox_protocol::sse::SseError::ALL
        .iter()
        .find(|e| e.status() == status)
        .unwrap()
        .message();
    assert_eq!(message, expected);
}

fn state(s: &TestServer) -> &std::sync::Arc<signalbox::app::AppState> {
    &s.server.as_ref().unwrap().state
}

#[tokio::test]
async fn the_example_flow_connect_roster_signal_both_ways_leave() {
    let s = TestServer::start().await;
    let mut a = join(s.addr, "agent-room").await;
    assert_eq!(a.stream.header("content-type"), Some("text/event-stream"));
    assert_eq!(
        a.stream.header("cache-control"),
        Some("no-cache, no-transform")
    );
    assert_eq!(a.stream.header("connection"), Some("keep-alive"));
    assert!(uuid::Uuid::parse_str(&a.id).is_ok());
    assert!(uuid::Uuid::parse_str(&a.token).is_ok());
    assert!(a.joined["iceServers"].is_array());
    a.stream.expect_roster(&[&a.id]).await;

    // Trimmed and upper-cased: the same room.
    let mut b = join(s.addr, "%20AGENT-ROOM%20").await;
    b.stream.expect_roster(&[&a.id, &b.id]).await;
    a.stream.expect_roster(&[&a.id, &b.id]).await;

    let ping = json!({"type": "agent-ping", "message": "Hello from python agent!"});
    let r = signal(&s, "Agent-Room", &a, &b.id, ping.clone()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json(), json!({"success": true}));
    let got = b.stream.expect("signal").await;
    assert_eq!(got, json!({"sender": a.id, "signal": ping}));

    // The signal arrives byte for byte: key order and spacing as sent.
    let text = format!(
        r#"{{"sender": "{}", "to": "{}", "token": "{}", "signal": {{"type": "agent-ping", "message": "hi"}}}}"#,
        a.id, b.id, a.token
    );
    let r = s
        .client()
        .raw(
            "POST",
            "/api/signal?room=agent-room",
            &[("Content-Type", "application/json")],
            text.as_bytes(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    b.stream.expect("signal").await;
    assert_eq!(
        b.stream.last_data,
        format!(
            r#"{{"sender":"{}","signal":{{"type": "agent-ping", "message": "hi"}}}}"#,
            a.id
        )
    );

    let sdp = json!({"sdp": {"type": "answer", "sdp": "v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\n"}, "connectionMode": "lan"});
    let r = signal(&s, "agent-room", &b, &a.id, sdp.clone()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        a.stream.expect("signal").await,
        json!({"sender": b.id, "signal": sdp})
    );

    let r = leave(&s, "agent-room", &b).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json(), json!({"success": true}));
    a.stream.expect_roster(&[&a.id]).await;
    b.stream.expect_end().await;
    // Gone: its token no longer works.
    let r = signal(&s, "agent-room", &b, &a.id, json!({})).await;
    expect_error(&r, 403);
}

#[tokio::test]
async fn reconnecting_with_session_id_and_token_brings_the_same_identity_back() {
    let s = TestServer::start().await;
    let mut a = join(s.addr, "resume").await;
    let b = join(s.addr, "resume").await;
    a.stream.expect_roster(&[&a.id, &b.id]).await;
    drop(b.stream);
    // The dropped stream does not end the session: a signal to it is kept for its return.
    let r = signal(&s, "resume", &a, &b.id, json!({"n": 1})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    // Membership changes meanwhile are not replayed: the resumed stream gets the current roster.
    let c = join(s.addr, "resume").await;
    let r = leave(&s, "resume", &c).await;
    assert_eq!(r.status, 200);
    a.stream.expect_roster(&[&a.id, &b.id]).await;

    let query = format!("room=resume&session_id={}&token={}", b.id, b.token);
    let mut again = SseClient::open(s.addr, &query).await;
    assert_eq!(again.status, 200);
    let joined = again.expect("joined").await;
    assert_eq!(joined["id"], b.id.as_str());
    assert_eq!(joined["token"], b.token.as_str());
    assert_eq!(
        again.expect("roster").await.as_array().map(Vec::len),
        Some(2)
    );
    assert_eq!(
        again.expect("signal").await,
        json!({"sender": a.id, "signal": {"n": 1}})
    );
    // A second stream for the same session replaces the first, which ends.
    let mut third = SseClient::open(s.addr, &query).await;
    assert_eq!(third.expect("joined").await["id"], b.id.as_str());
    again.expect_end().await;
    assert_eq!(
        state(&s)
            .sse
            .metrics()
            .sessions_resumed
            .load(std::sync::atomic::Ordering::Relaxed),
        2
    );

    // Wrong token: 403; no token: 400; another room: 403.
    let wrong = SseClient::open(
        s.addr,
        &format!("room=resume&session_id={}&token=nope", b.id),
    )
    .await;
    assert_eq!(wrong.status, 403);
    assert_eq!(
        wrong.error_body,
        Some(json!({"error": "Unauthorized: invalid session token"}))
    );
    let missing = SseClient::open(s.addr, &format!("room=resume&session_id={}", b.id)).await;
    assert_eq!(missing.status, 400);
    let other_room = SseClient::open(
        s.addr,
        &format!("room=elsewhere&session_id={}&token={}", b.id, b.token),
    )
    .await;
    assert_eq!(other_room.status, 403);
}

#[tokio::test]
async fn every_error_status_with_its_body() {
    let s = TestServer::start_with(
        r#"{"sse": {"maxBodyBytes": 1024, "maxSessionsPerRoom": 2, "maxSessions": 3}}"#,
    )
    .await;
    // 400: no room, blank room.
    for query in ["", "room=", "room=%20%20"] {
        let c = SseClient::open(s.addr, query).await;
        assert_eq!(c.status, 400, "{query}");
        assert_eq!(
            c.error_body,
            Some(json!({"error": "Missing required parameters"}))
        );
    }
    let a = join(s.addr, "errors").await;
    let b = join(s.addr, "errors").await;
    // 503: the room is full; then the server is full.
    let full = SseClient::open(s.addr, "room=errors").await;
    assert_eq!(full.status, 503);
    assert_eq!(
        full.error_body,
        Some(json!({"error": "Service Unavailable: room or server is full"}))
    );
    let c = join(s.addr, "other").await;
    let full = SseClient::open(s.addr, "room=third").await;
    assert_eq!(full.status, 503);

    // 400 on POSTs: no room, not JSON, missing fields, null signal.
    let ok_body = json!({"sender": a.id, "to": b.id, "token": a.token, "signal": {"x": 1}});
    expect_error(&post(&s, "/api/signal", &ok_body).await, 400);
    let r = s
        .client()
        .raw(
            "POST",
            "/api/signal?room=errors",
            &[("Content-Type", "application/json")],
            b"{not json",
        )
        .await;
    expect_error(&r, 400);
    for field in ["sender", "to", "token", "signal"] {
        let mut body = ok_body.clone();
        body.as_object_mut().unwrap().remove(field);
        expect_error(&post(&s, "/api/signal?room=errors", &body).await, 400);
    }
    let mut null_signal = ok_body.clone();
    null_signal["signal"] = Value::Null;
    expect_error(
        &post(&s, "/api/signal?room=errors", &null_signal).await,
        400,
    );
    expect_error(
        &post(&s, "/api/leave", &json!({"sender": a.id, "token": a.token})).await,
        400,
    );
    expect_error(
        &post(&s, "/api/leave?room=errors", &json!({"sender": a.id})).await,
        400,
    );

    // 403: wrong token, unknown sender, right token in the wrong room.
    let mut wrong = ok_body.clone();
    wrong["token"] = json!(b.token);
    expect_error(&post(&s, "/api/signal?room=errors", &wrong).await, 403);
    let mut unknown = ok_body.clone();
    unknown["sender"] = json!("nobody");
    expect_error(&post(&s, "/api/signal?room=errors", &unknown).await, 403);
    expect_error(&post(&s, "/api/signal?room=other", &ok_body).await, 403);
    expect_error(
        &post(
            &s,
            "/api/leave?room=errors",
            &json!({"sender": a.id, "token": b.token}),
        )
        .await,
        403,
    );

    // 404: the target is nobody, or a session of another room.
    let mut nobody = ok_body.clone();
    nobody["to"] = json!("nobody");
    expect_error(&post(&s, "/api/signal?room=errors", &nobody).await, 404);
    let mut elsewhere = ok_body.clone();
    elsewhere["to"] = json!(c.id);
    expect_error(&post(&s, "/api/signal?room=errors", &elsewhere).await, 404);

    // 413: over `sse.maxBodyBytes`.
    let mut big = ok_body.clone();
    big["signal"] = json!("x".repeat(2000));
    expect_error(&post(&s, "/api/signal?room=errors", &big).await, 413);

    // Still fine afterwards.
    let r = post(&s, "/api/signal?room=errors", &ok_body).await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn the_token_bucket_limits_each_sender() {
    let s = TestServer::start_with(r#"{"sse": {"rateLimitBurst": 5, "rateLimitRefillPerSec": 2}}"#)
        .await;
    let a = join(s.addr, "rate").await;
    let b = join(s.addr, "rate").await;
    for i in 0..5 {
        let r = signal(&s, "rate", &a, &b.id, json!({"i": i})).await;
        assert_eq!(r.status, 200, "signal {i}: {}", r.text);
    }
    let r = signal(&s, "rate", &a, &b.id, json!({"i": 5})).await;
    expect_error(&r, 429);
    assert_eq!(
        r.json(),
        json!({"error": "Too Many Requests: signaling rate limit exceeded"})
    );
    // Another sender has its own bucket.
    let r = signal(&s, "rate", &b, &a.id, json!({})).await;
    assert_eq!(r.status, 200);
    // Refill: 2 tokens per second.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let r = signal(&s, "rate", &a, &b.id, json!({"i": 6})).await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn default_limits_are_burst_50_refill_10() {
    let s = TestServer::start().await;
    let a = join(s.addr, "burst").await;
    let b = join(s.addr, "burst").await;
    let mut statuses = Vec::new();
    for i in 0..51 {
        statuses.push(signal(&s, "burst", &a, &b.id, json!({"i": i})).await.status);
    }
    // Fifty in the burst; the 51st is refused unless a tenth of a second passed meanwhile.
    assert!(statuses[..50].iter().all(|s| *s == 200), "{statuses:?}");
    let settings = state(&s).sse.settings();
    assert_eq!(
        (
            settings.rate_limit_burst,
            settings.rate_limit_refill_per_sec
        ),
        (50, 10)
    );
    assert_eq!(settings.keepalive_interval_ms, 10_000);
    assert_eq!(settings.session_idle_timeout_ms, 90_000);
    assert_eq!(settings.prune_scan_interval_ms, 30_000);
}

#[tokio::test]
async fn keepalive_comments_arrive_on_an_idle_stream() {
    let s = TestServer::start_with(r#"{"sse": {"keepaliveIntervalMs": 100}}"#).await;
    let mut a = join(s.addr, "quiet").await;
    a.stream.expect_roster(&[&a.id]).await;
    let item = tokio::time::timeout(WAIT, a.stream.next_item())
        .await
        .unwrap();
    assert_eq!(item, Some(SseItem::Comment("keepalive".into())));
    // The exact bytes: ": keepalive\n\n".
    assert_eq!(signalbox_protocol::sse::KEEPALIVE_FRAME, ": keepalive\n\n");
}

#[tokio::test]
async fn sessions_without_stream_or_request_are_pruned() {
    let s = TestServer::start_with(
        r#"{"sse": {"sessionIdleTimeoutMs": 300, "pruneScanIntervalMs": 100, "keepaliveIntervalMs": 100}}"#,
    )
    .await;
    let mut a = join(s.addr, "prune").await;
    let b = join(s.addr, "prune").await;
    a.stream.expect_roster(&[&a.id, &b.id]).await;
    let dropped_at = Instant::now();
    drop(b.stream);
    // A keeps its stream open and stays; B is pruned and A gets the new roster.
    a.stream.expect_roster(&[&a.id]).await;
    assert!(dropped_at.elapsed() >= Duration::from_millis(300));
    assert_eq!(state(&s).sse.session_count(), 1);
    assert!(
        state(&s)
            .sse
            .metrics()
            .sessions_pruned
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 1
    );
    // Its id is gone: resuming it starts a new session.
    let mut again = SseClient::open(
        s.addr,
        &format!("room=prune&session_id={}&token={}", b.id, b.token),
    )
    .await;
    let joined = again.expect("joined").await;
    assert_ne!(joined["id"], b.id.as_str());
    // A request keeps a stream-less session alive.
    let Agent {
        stream, id, token, ..
    } = join(s.addr, "prune").await;
    drop(stream);
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let r = signal_as(&s, "prune", (&id, &token), &a.id, json!({})).await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
}

#[tokio::test]
async fn turn_credentials_match_a_reference_hmac() {
    let s = TestServer::start_with(
        r#"{"stunUrls": ["stun:stun.example.org:3478"],
            "turnUrls": ["turn:turn.example.org:3478?transport=udp", "turns:turn.example.org:5349"],
            "turnSecret": "north-by-northwest", "turnCredentialTtlSeconds": 600}"#,
    )
    .await;
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let a = join(s.addr, "turn").await;
    let ice = a.joined["iceServers"].as_array().unwrap();
    assert_eq!(ice[0], json!({"urls": ["stun:stun.example.org:3478"]}));
    let turn = &ice[1];
    assert_eq!(
        turn["urls"],
        json!([
            "turn:turn.example.org:3478?transport=udp",
            "turns:turn.example.org:5349"
        ])
    );
    let username = turn["username"].as_str().unwrap();
    let (expiry, identity) = username.split_once(':').unwrap();
    assert_eq!(identity, a.id);
    let expiry: u64 = expiry.parse().unwrap();
    assert!(
        (before + 600..=before + 602).contains(&expiry),
        "{expiry} vs {before}"
    );
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(b"north-by-northwest").unwrap();
    mac.update(username.as_bytes());
    let reference = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    assert_eq!(turn["credential"].as_str(), Some(reference.as_str()));
    // Each session gets its own.
    let b = join(s.addr, "turn").await;
    assert_ne!(b.joined["iceServers"][1]["username"], turn["username"]);
}

#[tokio::test]
async fn a_stream_that_stops_reading_is_dropped_and_its_session_resumes() {
    let s = TestServer::start_with(common::sse::STALL_VARIABLES).await;
    let mut a = join(s.addr, "stall").await;
    let mut b = join(s.addr, "stall").await;
    a.stream.expect_roster(&[&a.id, &b.id]).await;
    b.stream.expect_roster(&[&a.id, &b.id]).await;
    // B stops reading. A sends it large signals until the server gives up on B's stream.
    let payload = json!({"blob": "x".repeat(512 * 1024)});
    let sse = &state(&s).sse;
    let dropped = || {
        sse.metrics()
            .streams_dropped_slow
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    let mut sent = 0;
    while dropped() == 0 {
        let r = signal(&s, "stall", &a, &b.id, payload.clone()).await;
        assert_eq!(r.status, 200, "{}", r.text);
        sent += 1;
        assert!(sent < 400, "the stalled stream was never dropped");
    }
    eprintln!("stream dropped after {sent} signals of 512 KiB");
    assert_eq!(sse.open_streams(), 1, "only A's stream is still fed");
    // Others are not slowed: A still gets its events.
    let r = signal(&s, "stall", &b, &a.id, json!({"still": "here"})).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        a.stream.expect("signal").await["signal"],
        json!({"still": "here"})
    );
    // The stalled session resumes with the same identity and gets what was kept for it.
    let mut again = SseClient::open(
        s.addr,
        &format!("room=stall&session_id={}&token={}", b.id, b.token),
    )
    .await;
    assert_eq!(again.expect("joined").await["id"], b.id.as_str());
    again.expect_roster(&[&a.id, &b.id]).await;
    let r = signal(&s, "stall", &a, &b.id, json!({"after": "resume"})).await;
    assert_eq!(r.status, 200);
    loop {
        let data = again.expect("signal").await;
        if data["signal"] == json!({"after": "resume"}) {
            break;
        }
    }
    // The old stream, once read again, ends after what it had been given.
    b.stream.expect_end().await;
}

#[tokio::test]
async fn an_sse_agent_and_a_websocket_member_share_a_room_through_the_hub() {
    // A real WebSocket client: the room `MIXED` is the directory server `MIXED`, which the
    // WebSocket side joins under the usual access rules.
    let s = TestServer::start().await;
    let http = s.client();
    let (token, _) = http.guest("Owner").await;
    http.call(
        "POST",
        "/api/servers",
        Some(&token),
        Some(&json!({"id": "MIXED", "name": "Mixed"})),
    )
    .await
    .expect_ok(201);
    let mut ws = WsClient::connect(s.addr, "/ws").await;
    ws.send(json!({"type": "identify", "oderId": "ws-browser", "displayName": "Browser"}))
        .await;
    ws.join("MIXED").await;

    // The SSE agent joins room " mixed ": the WebSocket member sees `user_joined`, the agent
    // sees both in its roster.
    let mut agent = join(s.addr, "%20mixed%20").await;
    assert!(state(&s).sse.is_session(&agent.id));
    assert!(!state(&s).sse.is_session("ws-browser"));
    agent.stream.expect_roster(&["ws-browser", &agent.id]).await;
    let joined = ws.expect("user_joined").await;
    assert_eq!(joined["serverId"], "MIXED");
    assert_eq!(joined["oderId"], agent.id.as_str());
    assert_eq!(joined["connectionScope"], "sse");

    // WebSocket -> SSE: an `offer` becomes a `signal` from the browser, unknown fields kept.
    ws.send(json!({
        "type": "offer", "targetUserId": agent.id,
        "sdp": {"type": "offer", "sdp": "v=0\r\n"}, "connectionMode": "lan"
    }))
    .await;
    assert_eq!(
        agent.stream.expect("signal").await,
        json!({"sender": "ws-browser", "signal": {
            "type": "offer", "sdp": {"type": "offer", "sdp": "v=0\r\n"}, "connectionMode": "lan"
        }})
    );

    // SSE -> WebSocket: a typed signal becomes the envelope, `fromUserId` stamped.
    let answer = json!({"type": "answer", "sdp": {"type": "answer", "sdp": "v=0\r\n"}, "fromUserId": "spoof"});
    let r = signal(&s, "MIXED", &agent, "ws-browser", answer).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let got = ws.expect("answer").await;
    assert_eq!(got["fromUserId"], agent.id.as_str());
    assert_eq!(got["targetUserId"], "ws-browser");
    assert_eq!(got["sdp"]["sdp"], "v=0\r\n");
    // An untyped signal has no envelope form: 422.
    let r = signal(&s, "mixed", &agent, "ws-browser", json!({"candidate": "x"})).await;
    expect_error(&r, 422);

    // A WebSocket client cannot take over a live SSE session's identity.
    let mut impostor = WsClient::connect(s.addr, "/ws").await;
    impostor
        .send(json!({"type": "identify", "oderId": agent.id, "displayName": "Impostor"}))
        .await;
    impostor.expect_error("AUTH_INVALID").await;
    assert_eq!(impostor.expect_close().await.code, 4001);

    // Leaving: the WebSocket member gets `user_left`, and the agent's roster follows the
    // WebSocket member's leave.
    let mut other = join(s.addr, "mixed").await;
    other
        .stream
        .expect_roster(&["ws-browser", &agent.id, &other.id])
        .await;
    ws.expect("user_joined").await;
    ws.send(json!({"type": "leave_server", "serverId": "MIXED"}))
        .await;
    other.stream.expect_roster(&[&agent.id, &other.id]).await;
    ws.join("MIXED").await;
    let r = leave(&s, "mixed", &agent).await;
    assert_eq!(r.status, 200);
    let left = ws.expect("user_left").await;
    assert_eq!(left["oderId"], agent.id.as_str());
}

#[tokio::test]
async fn graceful_shutdown_ends_open_streams() {
    let mut s = TestServer::start().await;
    let mut a = join(s.addr, "bye").await;
    a.stream.expect_roster(&[&a.id]).await;
    let server = s.server.take().unwrap();
    tokio::time::timeout(WAIT, server.shutdown())
        .await
        .expect("shutdown does not wait for SSE streams forever");
    a.stream.expect_end().await;
}

#[tokio::test]
async fn the_openapi_document_lists_the_sse_routes() {
    let s = TestServer::start().await;
    let doc = s
        .client()
        .get("/api/openapi.json", None)
        .await
        .expect_ok(200);
    for (path, method) in [
        ("/api/connect", "get"),
        ("/api/signal", "post"),
        ("/api/leave", "post"),
    ] {
        assert!(doc["paths"][path][method].is_object(), "{path}");
    }
    // Other methods on these paths reach the REST router's 404.
    let r = s.client().get("/api/signal", None).await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn a_membership_change_serializes_the_room_roster_once_for_every_session() {
    let s = TestServer::start().await;
    const AGENTS: usize = 12;
    let mut agents: Vec<Agent> = Vec::with_capacity(AGENTS);
    for _ in 0..AGENTS {
        let agent = join(s.addr, "crowd").await;
        agents.push(agent);
        let ids: Vec<String> = agents.iter().map(|a| a.id.clone()).collect();
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        for agent in &mut agents {
            agent.stream.expect_roster(&ids).await;
        }
    }
    // Every session saw every roster change; a per-session roster would have cost
    // 1 + 2 + ... + 12 = 78 serializations, a shared one at most one per join.
    let serialized = state(&s)
        .sse
        .metrics()
        .rosters_serialized
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        (1..=AGENTS as u64).contains(&serialized),
        "{serialized} rosters serialized for {AGENTS} joins"
    );
    // Leaving is a change like any other: the rest see the room without the leaver, sharing
    // one more serialization.
    let gone = agents.pop().unwrap();
    assert_eq!(leave(&s, "crowd", &gone).await.status, 200);
    let ids: Vec<String> = agents.iter().map(|a| a.id.clone()).collect();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    for agent in &mut agents {
        agent.stream.expect_roster(&ids).await;
    }
    let after = state(&s)
        .sse
        .metrics()
        .rosters_serialized
        .load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(after, serialized + 1);
}
