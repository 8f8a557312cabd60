//! A PostgreSQL crash under three running nodes (`pg_ctl stop -m immediate`, then start): every
//! node answers directory calls `503 UNAVAILABLE` with `Retry-After` while `/api/health` stays
//! 200, then answers 200 again with the same pid (no node restarts). The nodes run in redis
//! mode; `migrations` covers the standalone hubs on the shared database.

use crate::common::Client;
use crate::harness::{Cluster, Mode, available, eventually, script};

#[tokio::test]
#[ignore = "cluster suite: starts processes, Redis and PostgreSQL; run by scripts/test"]
async fn a_postgres_crash_answers_503_on_every_node_then_recovers_with_the_same_pids() {
    let test = "a_postgres_crash_answers_503_on_every_node_then_recovers_with_the_same_pids";
    if available(test).is_none() {
        return;
    }
    let cluster = Cluster::up(3, Mode::Redis);
    let pids: Vec<u32> = (1..=3).map(|i| cluster.pid(i)).collect();
    for &node in &cluster.nodes {
        Client { addr: node }
            .get("/api/servers", None)
            .await
            .expect_ok(200);
    }

    script(&["pg", "stop-immediate"]);
    for &node in &cluster.nodes {
        let c = Client { addr: node };
        let down = c.get("/api/servers", None).await;
        down.expect_error(503, "UNAVAILABLE");
        assert!(
            down.headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("retry-after")),
            "{node}: {:?}",
            down.headers
        );
        assert_eq!(c.get("/api/ready", None).await.status, 503, "{node}");
        c.get("/api/health", None).await.expect_ok(200);
    }

    script(&["pg", "start"]);
    for &node in &cluster.nodes {
        let c = Client { addr: node };
        // A call may still meet a session the crash cut (503); the pool replaces it.
        eventually(
            &format!("{node} answers /api/servers 200 again"),
            || async move { (c.get("/api/servers", None).await.status == 200).then_some(()) },
        )
        .await;
        c.get("/api/ready", None).await.expect_ok(200);
    }
    for pid in &pids {
        assert!(
            std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "node process {pid} is still the one serving"
        );
    }
    assert_eq!(pids, (1..=3).map(|i| cluster.pid(i)).collect::<Vec<_>>());
}
