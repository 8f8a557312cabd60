//! Cluster mode wired end to end in one process: two `app::start` servers in
//! `cluster.mode: "redis"` on one `redis-server` (started here on a free loopback port) and one
//! PostgreSQL schema (`SIGNALBOX_TEST_POSTGRES_URL`, `scripts/postgres start`), real WebSocket
//! clients, one on each node. Skipped with a printed reason when either is missing (a failure
//! under `CI=true`). No timed assertions: every wait has a generous deadline.
#![allow(missing_docs)]

mod common;
mod pg;
mod two_nodes;

use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use common::ws::connect_as;
use serde_json::{Value, json};
use signalbox_protocol::ws::{StatusUpdateBroadcast, UserJoined, UserLeft, UserSummary};
use signalbox_protocol::{ServerEnvelope, ServerId, UserId, UserStatus};
use two_nodes::{RedisServer, two_nodes, two_nodes_with};

/// `envelope` is valid against the generated `ServerEnvelope` schema.
fn assert_valid(envelope: &Value) {
    static VALIDATOR: OnceLock<jsonschema::Validator> = OnceLock::new();
    let validator = VALIDATOR.get_or_init(|| {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../schemas/ServerEnvelope.schema.json"
        );
        let text = std::fs::read_to_string(path).expect("the generated schema");
        let schema: Value = serde_json::from_str(&text).expect("schema JSON");
        jsonschema::validator_for(&schema).expect("the schema compiles")
    });
    let errors: Vec<String> = validator
        .iter_errors(envelope)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{envelope}: {}", errors.join("; "));
}

/// What a standalone server sends for `envelope`, as JSON.
fn standalone(envelope: ServerEnvelope) -> Value {
    serde_json::to_value(&envelope).expect("serialize")
}

/// The roster entry of a guest that identified with only a display name.
fn summary(id: &str, name: &str, status: UserStatus) -> UserSummary {
    UserSummary {
        oder_id: UserId::from(id),
        display_name: name.into(),
        description: None,
        status,
        profile_updated_at: None,
        connection_scope: None,
    }
}

fn names(users: &Value) -> Vec<String> {
    let mut names: Vec<String> = users["users"]
        .as_array()
        .expect("users")
        .iter()
        .filter_map(|u| u["oderId"].as_str().map(str::to_owned))
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_chat_offers_and_rosters() {
    let Some((redis, a, b)) = two_nodes("two_nodes_share_chat_offers_and_rosters", "wiring:").await
    else {
        return;
    };
    a.client().get("/api/ready", None).await.expect_ok(200);

    let (ada_token, ada) = a.client().guest("Ada").await;
    let (bob_token, bob) = a.client().guest("Bob").await;
    a.client()
        .create_public_server(&ada_token, "lobby", "Lobby")
        .await;

    let mut on_a = connect_as(&a, &ada_token, "Ada").await;
    let mut on_b = connect_as(&b, &bob_token, "Bob").await;
    // One `server_users` per join (the roster over every node), then plugin_requirements.
    let alone = on_a.join("lobby").await;
    assert_eq!(names(&alone), vec![ada.clone()], "{alone}");
    let roster = on_b.join("lobby").await;
    assert_valid(&roster);
    let mut both = vec![ada.clone(), bob.clone()];
    both.sort();
    assert_eq!(
        names(&roster),
        both,
        "Bob on node B sees Ada of node A: {roster}"
    );
    let joined = on_a.until("user_joined").await;
    assert_valid(&joined);
    assert_eq!(
        joined,
        standalone(ServerEnvelope::UserJoined(UserJoined {
            server_id: ServerId::from("lobby"),
            user: summary(&bob, "Bob", UserStatus::Online),
        })),
        "the cross-node user_joined is the standalone one"
    );

    // A status change on node B reaches node A once, as standalone sends it.
    on_b.send(json!({"type": "status_update", "status": "away"}))
        .await;
    let status = on_a.until("status_update").await;
    assert_valid(&status);
    assert_eq!(
        status,
        standalone(ServerEnvelope::StatusUpdate(StatusUpdateBroadcast {
            oder_id: UserId::from(bob.as_str()),
            status: UserStatus::Away,
        }))
    );
    // ... and is in the roster a later joiner on node A gets.
    let mut ada_tab = connect_as(&a, &ada_token, "Ada").await;
    let later = ada_tab.join("lobby").await;
    let bob_entry = later["users"]
        .as_array()
        .expect("users")
        .iter()
        .find(|u| u["oderId"] == bob.as_str())
        .cloned()
        .expect("Bob in the roster");
    assert_eq!(bob_entry["status"], "away", "{later}");
    ada_tab.close().await;

    on_a.send(json!({"type": "chat_message", "serverId": "lobby", "message": {"text": "hi"}}))
        .await;
    let chat = on_b.until("chat_message").await;
    assert_eq!(chat["senderId"], ada.as_str(), "{chat}");
    assert_eq!(chat["message"]["text"], "hi");

    on_a.send(
        json!({"type": "offer", "targetUserId": bob, "sdp": {"type": "offer", "sdp": "v=0"}}),
    )
    .await;
    let offer = on_b.until("offer").await;
    assert_eq!(offer["fromUserId"], ada.as_str(), "{offer}");

    on_b.send(
        json!({"type": "answer", "targetUserId": ada, "sdp": {"type": "answer", "sdp": "v=0"}}),
    )
    .await;
    let answer = on_a.until("answer").await;
    assert_eq!(answer["fromUserId"], bob.as_str(), "{answer}");

    on_a.send(json!({"type": "offer", "targetUserId": "nobody-anywhere", "sdp": {"type": "offer", "sdp": "v=0"}}))
        .await;
    on_a.expect_error("TARGET_NOT_FOUND").await;

    on_b.close().await;
    let left = on_a.until("user_left").await;
    assert_valid(&left);
    assert_eq!(
        left,
        standalone(ServerEnvelope::UserLeft(UserLeft {
            server_id: ServerId::from("lobby"),
            oder_id: UserId::from(bob.as_str()),
            display_name: Some("Bob".into()),
        }))
    );

    let metrics = a.client().get("/metrics", None).await;
    assert_eq!(metrics.status, 200);
    for line in [
        "signalbox_cluster_redis_up 1",
        "signalbox_cluster_publish_queue_limit 65536",
    ] {
        assert!(
            metrics.text.lines().any(|l| l == line),
            "no `{line}` in /metrics"
        );
    }

    // Redis goes away: /api/ready stays 200 but says degraded, /api/health stays 200 and ok.
    drop(redis);
    let started = std::time::Instant::now();
    loop {
        let ready = a.client().get("/api/ready", None).await.expect_ok(200);
        if ready["status"] == "degraded" {
            assert!(
                ready["reason"]
                    .as_str()
                    .is_some_and(|r| r.contains("Redis")),
                "{ready}"
            );
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "never degraded: {ready}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let health = a.client().get("/api/health", None).await.expect_ok(200);
    assert_eq!(health["status"], "ok", "{health}");
    // Local delivery goes on.
    let mut ada_phone = connect_as(&a, &ada_token, "Ada").await;
    ada_phone
        .send(json!({"type": "join_server", "serverId": "lobby"}))
        .await;
    ada_phone.until("plugin_requirements").await;
    ada_phone
        .send(
            json!({"type": "chat_message", "serverId": "lobby", "message": {"text": "still here"}}),
        )
        .await;
    let chat = on_a.until("chat_message").await;
    assert_eq!(chat["message"]["text"], "still here", "{chat}");
    // A forward that needs another node says the nodes are unreachable, not an internal error.
    on_a.send(
        json!({"type": "offer", "targetUserId": bob, "sdp": {"type": "offer", "sdp": "v=0"}}),
    )
    .await;
    let error = on_a.until("error").await;
    assert_eq!(error["code"], "UNAVAILABLE", "{error}");
    assert_eq!(error["requestType"], "offer", "{error}");
}

/// Freezes (`SIGSTOP`) or resumes (`SIGCONT`) the test's `redis-server`: while frozen, every
/// receipt of the backplane is pending.
fn signal(redis: &RedisServer, sig: &str) {
    let status = Command::new("kill")
        .args([sig, &redis.child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill {sig}");
}

fn rpc_to_nobody(request_id: &str) -> Value {
    json!({"type": "rpc_request", "targetUserId": "nobody-anywhere", "requestId": request_id,
           "method": "ping"})
}

/// The `error`s of the RPCs `ids` in this order (a refusal that had to wait for Redis is
/// `TARGET_NOT_FOUND`, or `UNAVAILABLE` when Redis stayed frozen past its reply timeout).
fn assert_refused_in_order(errors: &[Value], ids: &[String]) {
    let got: Vec<&str> = errors
        .iter()
        .map(|e| e["requestId"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(got, ids, "{errors:?}");
    for error in errors {
        assert_valid(error);
        assert_eq!(error["requestType"], "rpc_request", "{error}");
        assert!(
            error["code"] == "TARGET_NOT_FOUND" || error["code"] == "UNAVAILABLE",
            "{error}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_node_forwards_do_not_hold_the_connection_up_to_its_bound() {
    // Node A: the default bound (64); node B: 2 unresolved cross-node forwards per connection.
    let bound = |node: &str| {
        let bound = if node == "node-b" { 2 } else { 64 };
        json!({ "maxPendingForwardsPerConnection": bound })
    };
    let Some((redis, a, b)) = two_nodes_with(
        "cross_node_forwards_do_not_hold_the_connection",
        "pending:",
        bound,
    )
    .await
    else {
        return;
    };
    let (ada_token, ada) = a.client().guest("Ada").await;
    let (bob_token, bob) = a.client().guest("Bob").await;
    a.client()
        .create_public_server(&ada_token, "lobby", "Lobby")
        .await;
    let mut on_a = connect_as(&a, &ada_token, "Ada").await;
    let mut on_b = connect_as(&b, &bob_token, "Bob").await;
    on_a.join("lobby").await;
    on_b.join("lobby").await;
    on_a.until("user_joined").await;

    // Redis frozen: ten forwards that need it, an offer to Bob on node B, then a keepalive.
    // The keepalive is answered first: none of the forwards held the connection.
    signal(&redis, "-STOP");
    let ids: Vec<String> = (0..10).map(|i| format!("r{i}")).collect();
    for id in &ids {
        on_a.send(rpc_to_nobody(id)).await;
    }
    on_a.send(
        json!({"type": "offer", "targetUserId": bob, "sdp": {"type": "offer", "sdp": "v=0"}}),
    )
    .await;
    on_a.send(json!({"type": "keepalive"})).await;
    let first = on_a.recv().await;
    assert_eq!(
        first["type"], "keepalive",
        "the local answer comes before the pending refusals: {first}"
    );
    // Redis back: the pending ones resolve, each refusal with its RPC's requestId, in order,
    // and the offer reaches Bob's node.
    signal(&redis, "-CONT");
    let mut errors = Vec::new();
    for _ in &ids {
        errors.push(on_a.expect("error").await);
    }
    assert_refused_in_order(&errors, &ids);
    let offer = on_b.until("offer").await;
    assert_eq!(offer["fromUserId"], ada.as_str(), "{offer}");

    // Node B allows 2 unresolved cross-node forwards per connection: the third waits for a
    // slot, which the first refusal frees only once it is queued, so the keepalive sent after
    // the three is answered after at least one of their refusals (with the default bound and
    // Redis frozen, it would be answered first, as on node A).
    signal(&redis, "-STOP");
    let ids: Vec<String> = (0..3).map(|i| format!("b{i}")).collect();
    for id in &ids {
        on_b.send(rpc_to_nobody(id)).await;
    }
    on_b.send(json!({"type": "keepalive"})).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    signal(&redis, "-CONT");
    let mut frames = Vec::new();
    while frames.len() < ids.len() + 1 {
        frames.push(on_b.recv().await);
    }
    let keepalive_at = frames
        .iter()
        .position(|f| f["type"] == "keepalive")
        .expect("the keepalive is answered");
    assert!(
        keepalive_at >= 1,
        "at the bound the connection waited for a refusal: {frames:?}"
    );
    let errors: Vec<Value> = frames
        .into_iter()
        .filter(|f| f["type"] == "error")
        .collect();
    assert_refused_in_order(&errors, &ids);
    drop(redis);
}
