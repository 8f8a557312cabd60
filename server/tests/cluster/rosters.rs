//! Rosters across nodes: members joining on three nodes all end with the same roster, built from
//! their `server_users` and the `user_joined`/`user_left` that follow, with no member announced
//! twice; a server's channel is subscribed only by nodes holding one of its members
//! (`PUBSUB NUMSUB`).

use std::collections::BTreeSet;

use serde_json::Value;

use crate::harness::{Cluster, Mode, available};
use crate::{User, create_server};

/// One client's view of a server's roster, failing on a duplicate announcement.
struct Roster {
    server: String,
    members: BTreeSet<String>,
}

impl Roster {
    fn from_server_users(users: &Value) -> Self {
        let mut members = BTreeSet::new();
        for user in users["users"].as_array().expect("users") {
            let id = user["oderId"].as_str().expect("oderId").to_owned();
            assert!(members.insert(id.clone()), "{id} twice in {users}");
        }
        Self {
            server: users["serverId"].as_str().expect("serverId").to_owned(),
            members,
        }
    }

    fn apply(&mut self, envelope: &Value) {
        if envelope["serverId"] != self.server.as_str() {
            return;
        }
        let id = envelope["oderId"].as_str().unwrap_or_default().to_owned();
        match envelope["type"].as_str() {
            Some("user_joined") => {
                assert!(
                    self.members.insert(id.clone()),
                    "{id} announced twice: {envelope}"
                );
            }
            Some("user_left") => {
                assert!(
                    self.members.remove(&id),
                    "{id} left without being there: {envelope}"
                );
            }
            _ => {}
        }
    }
}

/// Reads `user`'s envelopes until its roster is `expected` (each read waits at most the
/// client's frame deadline, so a roster that never converges fails the case).
async fn converge(user: &mut User, roster: &mut Roster, expected: &BTreeSet<String>) {
    while &roster.members != expected {
        let envelope = user.ws.recv().await;
        roster.apply(&envelope);
    }
}

#[tokio::test]
#[ignore = "cluster suite: starts processes, Redis and PostgreSQL; run by scripts/test"]
async fn joins_on_three_nodes_give_every_member_the_same_roster() {
    let test = "joins_on_three_nodes_give_every_member_the_same_roster";
    if available(test).is_none() {
        return;
    }
    let cluster = Cluster::up(3, Mode::Redis);
    let mut users = Vec::new();
    let mut rosters = Vec::new();
    let owner = User::on(cluster.addr(1), "Owner").await;
    create_server(cluster.addr(1), &owner.token, "lobby").await;
    users.push(owner);
    for n in 1..6 {
        users.push(User::on(cluster.addr(n % 3 + 1), &format!("Member{n}")).await);
    }
    for user in &mut users {
        let server_users = user.ws.join("lobby").await;
        rosters.push(Roster::from_server_users(&server_users));
    }
    let expected: BTreeSet<String> = users.iter().map(|u| u.id.clone()).collect();
    for (user, roster) in users.iter_mut().zip(rosters.iter_mut()) {
        converge(user, roster, &expected).await;
    }
}

#[tokio::test]
#[ignore = "cluster suite: starts processes, Redis and PostgreSQL; run by scripts/test"]
async fn only_nodes_with_a_member_subscribe_to_a_servers_channel() {
    let test = "only_nodes_with_a_member_subscribe_to_a_servers_channel";
    if available(test).is_none() {
        return;
    }
    let cluster = Cluster::up(3, Mode::Redis);
    let mut ada = User::on(cluster.addr(1), "Ada").await;
    create_server(cluster.addr(1), &ada.token, "quiet").await;
    ada.ws.join("quiet").await;
    let mut bob = User::on(cluster.addr(2), "Bob").await;
    bob.ws.join("quiet").await;
    assert_eq!(ada.ws.until("user_joined").await["oderId"], bob.id.as_str());
    // Node 3 has a connected user who is not a member.
    let _carol = User::on(cluster.addr(3), "Carol").await;
    let channel = format!("{}s:quiet", cluster.key_prefix);
    let numsub = cluster.redis(&["pubsub", "numsub", &channel]);
    let count: Vec<&str> = numsub.lines().collect();
    assert_eq!(
        count,
        [channel.as_str(), "2"],
        "nodes 1 and 2 only: {numsub}"
    );
}
