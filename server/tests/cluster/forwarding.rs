//! Targeted envelopes across nodes: Ada on node 1, Bob on node 2. An offer, 100 ICE candidates
//! and the answer arrive in order and exactly once (a marker sent last proves nothing follows);
//! a target that left answers `TARGET_NOT_FOUND`.

use serde_json::{Value, json};

use crate::harness::{Cluster, Mode, available};
use crate::{User, create_server};

const CANDIDATES: usize = 100;

fn ice(target: &str, n: usize) -> Value {
    json!({
        "type": "ice_candidate",
        "targetUserId": target,
        "candidate": {"candidate": format!("candidate:{n} 1 udp 1 127.0.0.1 {} typ host", 9000 + n), "sdpMid": "0", "sdpMLineIndex": 0}
    })
}

fn sdp(kind: &str, target: &str) -> Value {
    json!({"type": kind, "targetUserId": target, "sdp": {"type": kind, "sdp": format!("v=0\r\n{kind}")}})
}

fn marker(target: &str) -> Value {
    json!({"type": "direct-message", "targetUserId": target, "payload": {"marker": "last"}})
}

/// The forwarded envelopes `user` receives up to and including the marker, without `fromUserId`.
async fn forwarded_until_marker(user: &mut User) -> Vec<Value> {
    let mut got = Vec::new();
    loop {
        let mut envelope = user.ws.recv().await;
        let kind = envelope["type"].as_str().unwrap_or_default().to_owned();
        if !matches!(
            kind.as_str(),
            "offer" | "answer" | "ice_candidate" | "direct-message" | "error"
        ) {
            continue; // presence and roster traffic
        }
        if let Some(object) = envelope.as_object_mut() {
            object.remove("fromUserId");
        }
        let done = kind == "direct-message";
        got.push(envelope);
        if done {
            return got;
        }
    }
}

/// Ada on node 1 (owner of `lobby`), Bob on node 2, both members, each seeing the other.
async fn pair(cluster: &Cluster) -> (User, User) {
    let mut ada = User::on(cluster.addr(1), "Ada").await;
    create_server(cluster.addr(1), &ada.token, "lobby").await;
    ada.ws.join("lobby").await;
    let mut bob = User::on(cluster.addr(2), "Bob").await;
    let users = bob.ws.join("lobby").await;
    assert!(
        users["users"]
            .as_array()
            .expect("users")
            .iter()
            .any(|u| u["oderId"] == ada.id.as_str()),
        "Bob's roster names Ada: {users}"
    );
    let joined = ada.ws.until("user_joined").await;
    assert_eq!(joined["oderId"], bob.id.as_str());
    (ada, bob)
}

#[tokio::test]
#[ignore = "cluster suite: starts processes, Redis and PostgreSQL; run by scripts/test"]
async fn a_cross_node_offer_candidates_and_answer_arrive_in_order_exactly_once() {
    let test = "a_cross_node_offer_candidates_and_answer_arrive_in_order_exactly_once";
    if available(test).is_none() {
        return;
    }
    let cluster = Cluster::up(3, Mode::Redis);
    let (mut ada, mut bob) = pair(&cluster).await;

    let mut sent = vec![sdp("offer", &bob.id)];
    sent.extend((0..CANDIDATES).map(|n| ice(&bob.id, n)));
    sent.push(marker(&bob.id));
    for envelope in &sent {
        ada.ws.send(envelope.clone()).await;
    }
    assert_eq!(forwarded_until_marker(&mut bob).await, sent);

    let answer = vec![sdp("answer", &ada.id), marker(&ada.id)];
    for envelope in &answer {
        bob.ws.send(envelope.clone()).await;
    }
    assert_eq!(forwarded_until_marker(&mut ada).await, answer);
}

#[tokio::test]
#[ignore = "cluster suite: starts processes, Redis and PostgreSQL; run by scripts/test"]
async fn a_target_that_left_another_node_answers_target_not_found() {
    let test = "a_target_that_left_another_node_answers_target_not_found";
    if available(test).is_none() {
        return;
    }
    let cluster = Cluster::up(3, Mode::Redis);
    let (mut ada, bob) = pair(&cluster).await;
    let mut carol = User::on(cluster.addr(3), "Carol").await;
    carol.ws.join("lobby").await;
    assert_eq!(
        ada.ws.until("user_joined").await["oderId"],
        carol.id.as_str()
    );
    // Reachable on node 3 while connected.
    ada.ws.send(marker(&carol.id)).await;
    assert_eq!(
        carol.ws.until("direct-message").await["fromUserId"],
        ada.id.as_str()
    );

    let carol_id = carol.id.clone();
    carol.ws.close().await;
    assert_eq!(ada.ws.until("user_left").await["oderId"], carol_id.as_str());
    ada.ws.send(sdp("offer", &carol_id)).await;
    let error = ada.ws.until("error").await;
    assert_eq!(error["code"], "TARGET_NOT_FOUND", "{error}");
    assert_eq!(error["requestType"], "offer");
    ada.ws.send(sdp("offer", "nobody-anywhere")).await;
    assert_eq!(ada.ws.until("error").await["code"], "TARGET_NOT_FOUND");
    drop(bob);
}
