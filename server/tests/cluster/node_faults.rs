//! A node killed with SIGKILL: its members leave every other node's roster (the reaper, within
//! the node TTL), no Redis key names it afterwards, and its clients reconnecting to another node
//! get a fresh roster. A node frozen with SIGSTOP is reaped the same way, and after SIGCONT
//! its members are announced again and reachable.

use crate::harness::{Cluster, Mode, available, eventually};
use crate::{User, connect_as, create_server, fresh_roster, is, reaches, wait_for};

#[tokio::test]
#[ignore = "cluster suite: starts processes, Redis and PostgreSQL; run by scripts/test"]
async fn a_killed_nodes_users_leave_every_roster_and_reconnect_elsewhere() {
    let test = "a_killed_nodes_users_leave_every_roster_and_reconnect_elsewhere";
    if available(test).is_none() {
        return;
    }
    let cluster = Cluster::up(3, Mode::Redis);
    let mut ada = User::on(cluster.addr(1), "Ada").await;
    create_server(cluster.addr(1), &ada.token, "lobby").await;
    ada.ws.join("lobby").await;
    let mut bob = User::on(cluster.addr(2), "Bob").await;
    bob.ws.join("lobby").await;
    assert_eq!(ada.ws.until("user_joined").await["oderId"], bob.id.as_str());
    let mut carol = User::on(cluster.addr(3), "Carol").await;
    carol.ws.join("lobby").await;
    assert_eq!(
        ada.ws.until("user_joined").await["oderId"],
        carol.id.as_str()
    );
    assert_eq!(
        bob.ws.until("user_joined").await["oderId"],
        carol.id.as_str()
    );

    cluster.node("kill", 3);
    // The reaper announces the departure once node 3's heartbeat is older than the node TTL
    // (3 s here).
    for user in [&mut ada, &mut bob] {
        wait_for(&mut user.ws, "Carol's user_left", |e| {
            is(e, "user_left", &carol.id)
        })
        .await;
    }
    let pattern = format!("{}*", cluster.key_prefix);
    eventually("no Redis key names node-3", || {
        let keys = cluster.redis(&["--scan", "--pattern", &pattern]);
        async move { (!keys.lines().any(|k| k.contains("node-3"))).then_some(()) }
    })
    .await;

    let mut again = connect_as(cluster.addr(1), &carol.token, "Carol").await;
    let users = again.join("lobby").await;
    let mut ids: Vec<&str> = users["users"]
        .as_array()
        .expect("users")
        .iter()
        .map(|u| u["oderId"].as_str().expect("oderId"))
        .collect();
    ids.sort_unstable();
    let mut expected = vec![ada.id.as_str(), bob.id.as_str(), carol.id.as_str()];
    expected.sort_unstable();
    assert_eq!(ids, expected, "a fresh roster, each member once: {users}");
}

/// Ada on node 1, Bob on node 2, Carol on node 3, all in `lobby`, each announcement consumed.
async fn trio(cluster: &Cluster) -> (User, User, User) {
    let mut ada = User::on(cluster.addr(1), "Ada").await;
    create_server(cluster.addr(1), &ada.token, "lobby").await;
    ada.ws.join("lobby").await;
    let mut bob = User::on(cluster.addr(2), "Bob").await;
    bob.ws.join("lobby").await;
    wait_for(&mut ada.ws, "Bob joined", |e| is(e, "user_joined", &bob.id)).await;
    let mut carol = User::on(cluster.addr(3), "Carol").await;
    carol.ws.join("lobby").await;
    wait_for(&mut ada.ws, "Carol joined", |e| {
        is(e, "user_joined", &carol.id)
    })
    .await;
    wait_for(&mut bob.ws, "Carol joined", |e| {
        is(e, "user_joined", &carol.id)
    })
    .await;
    (ada, bob, carol)
}

#[tokio::test]
#[ignore = "cluster suite: starts processes, Redis and PostgreSQL; run by scripts/test"]
async fn a_frozen_node_is_reaped_then_resyncs_when_it_continues() {
    let test = "a_frozen_node_is_reaped_then_resyncs_when_it_continues";
    if available(test).is_none() {
        return;
    }
    let cluster = Cluster::up(3, Mode::Redis);
    let (mut ada, mut bob, mut carol) = trio(&cluster).await;

    cluster.node("stop", 3);
    for user in [&mut ada, &mut bob] {
        wait_for(&mut user.ws, "frozen Carol's user_left", |e| {
            is(e, "user_left", &carol.id)
        })
        .await;
    }
    cluster.node("cont", 3);
    // Node 3 finds itself reaped, re-registers its connections and rejoins its members.
    for user in [&mut ada, &mut bob] {
        wait_for(&mut user.ws, "Carol announced again", |e| {
            is(e, "user_joined", &carol.id)
        })
        .await;
    }
    // Carol's node hands her a fresh roster after its resync.
    let all = [ada.id.clone(), bob.id.clone(), carol.id.clone()];
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    fresh_roster(&mut carol, "lobby", &all).await;
    reaches(&mut ada, &mut carol).await;
    reaches(&mut carol, &mut bob).await;
}
