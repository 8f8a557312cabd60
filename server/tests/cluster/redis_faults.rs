//! Redis faults under three nodes: every subscriber connection killed (`CLIENT KILL TYPE
//! pubsub`), and Redis shut down (`SHUTDOWN NOSAVE`, its data lost) then started again on the
//! same port. `/api/health` answers 200 on every node throughout; afterwards rosters converge
//! (a member joining later is announced on every node) and cross-node delivery works again.

use crate::common::Client;
use crate::harness::{Cluster, Mode, available, script};
use crate::{User, create_server, fresh_roster, is, reaches, wait_for};

/// Ada on node 1 and Bob on node 2 in `lobby`, each seeing the other.
async fn pair(cluster: &Cluster) -> (User, User) {
    let mut ada = User::on(cluster.addr(1), "Ada").await;
    create_server(cluster.addr(1), &ada.token, "lobby").await;
    ada.ws.join("lobby").await;
    let mut bob = User::on(cluster.addr(2), "Bob").await;
    bob.ws.join("lobby").await;
    wait_for(&mut ada.ws, "Bob joined", |e| is(e, "user_joined", &bob.id)).await;
    (ada, bob)
}

async fn healthy_everywhere(cluster: &Cluster) {
    for &node in &cluster.nodes {
        Client { addr: node }
            .get("/api/health", None)
            .await
            .expect_ok(200);
    }
}

/// Carol joins on node 3; Ada and Bob are told, and messages cross nodes both ways.
async fn converged(cluster: &Cluster, ada: &mut User, bob: &mut User) {
    let mut carol = User::on(cluster.addr(3), "Carol").await;
    carol.ws.join("lobby").await;
    for user in [&mut *ada, &mut *bob] {
        wait_for(&mut user.ws, "Carol announced", |e| {
            is(e, "user_joined", &carol.id)
        })
        .await;
    }
    reaches(ada, bob).await;
    reaches(bob, &mut carol).await;
    reaches(&mut carol, ada).await;
}

#[tokio::test]
#[ignore = "cluster suite: starts processes, Redis and PostgreSQL; run by scripts/test"]
async fn killed_subscriber_connections_resubscribe_and_rosters_converge() {
    let test = "killed_subscriber_connections_resubscribe_and_rosters_converge";
    if available(test).is_none() {
        return;
    }
    let cluster = Cluster::up(3, Mode::Redis);
    let (mut ada, mut bob) = pair(&cluster).await;
    script(&["redis", "kill-pubsub"]);
    healthy_everywhere(&cluster).await;
    let both = [ada.id.clone(), bob.id.clone()];
    let both: Vec<&str> = both.iter().map(String::as_str).collect();
    fresh_roster(&mut ada, "lobby", &both).await;
    fresh_roster(&mut bob, "lobby", &both).await;
    converged(&cluster, &mut ada, &mut bob).await;
    healthy_everywhere(&cluster).await;
}

#[tokio::test]
#[ignore = "cluster suite: starts processes, Redis and PostgreSQL; run by scripts/test"]
async fn a_redis_shutdown_and_restart_keeps_health_and_rosters_converge() {
    let test = "a_redis_shutdown_and_restart_keeps_health_and_rosters_converge";
    if available(test).is_none() {
        return;
    }
    let cluster = Cluster::up(3, Mode::Redis);
    let (mut ada, mut bob) = pair(&cluster).await;
    script(&["redis", "shutdown"]);
    healthy_everywhere(&cluster).await;
    for &node in &cluster.nodes {
        // Degraded, not dead: a liveness or readiness probe must not kill every node.
        let ready = Client { addr: node }.get("/api/ready", None).await;
        assert_eq!(ready.status, 200, "{node}: {}", ready.text);
    }
    script(&["redis", "start"]);
    // Redis lost its data: every node registers again and hands its members a fresh roster.
    let both = [ada.id.clone(), bob.id.clone()];
    let both: Vec<&str> = both.iter().map(String::as_str).collect();
    fresh_roster(&mut ada, "lobby", &both).await;
    fresh_roster(&mut bob, "lobby", &both).await;
    converged(&cluster, &mut ada, &mut bob).await;
    healthy_everywhere(&cluster).await;
}
