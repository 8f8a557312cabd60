//! In-process cluster test helpers: a throwaway `redis-server` on a free loopback port (killed
//! on drop) and two `app::start` nodes in `cluster.mode: "redis"` on it and on a fresh
//! PostgreSQL schema. Shared by `cluster_wiring`, `cluster_sse` and `cluster_withdrawal`.
//! Without redis-server or PostgreSQL a test prints why it is skipped; under `CI=true` it fails.

#![allow(dead_code, missing_docs)]

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::TestServer;
use crate::pg;

/// A `redis-server` of one test, killed when dropped.
pub struct RedisServer {
    pub child: Child,
    pub port: u16,
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `redis-server` without persistence on a free loopback port, or `None` (after
/// printing the reason) when it is not installed; panics under `CI=true`.
pub fn redis_server() -> Option<RedisServer> {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let child = Command::new("redis-server")
        .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let Ok(child) = child else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "cluster tests cannot be skipped in CI: redis-server is missing"
        );
        println!("SKIPPED: redis-server is not installed");
        return None;
    };
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "redis-server never listened"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Some(RedisServer { child, port })
}

/// Two nodes of one cluster (`node-a`, `node-b`, keys under `key_prefix`) on a fresh Redis and
/// a fresh PostgreSQL schema.
pub async fn two_nodes(
    test: &str,
    key_prefix: &str,
) -> Option<(RedisServer, TestServer, TestServer)> {
    two_nodes_with(test, key_prefix, |_| json!({})).await
}

/// [`two_nodes`] where `cluster_extra(node_id)` adds settings to that node's `cluster` object.
pub async fn two_nodes_with(
    test: &str,
    key_prefix: &str,
    cluster_extra: impl Fn(&str) -> Value,
) -> Option<(RedisServer, TestServer, TestServer)> {
    let base = pg::server_url(test)?;
    let redis = redis_server()?;
    let url = pg::fresh_schema_url(&base).await;
    let variables = |node: &str| {
        let mut variables = json!({
            "directory": { "backend": "postgres", "postgresUrl": url },
            "cluster": {
                "mode": "redis",
                "nodeId": node,
                "redisUrl": format!("redis://127.0.0.1:{}", redis.port),
                "keyPrefix": key_prefix,
            }
        });
        if let (Some(cluster), Value::Object(extra)) =
            (variables["cluster"].as_object_mut(), cluster_extra(node))
        {
            cluster.extend(extra);
        }
        variables.to_string()
    };
    let (on_a, on_b) = (variables("node-a"), variables("node-b"));
    let (a, b) = tokio::join!(TestServer::start_with(&on_a), TestServer::start_with(&on_b));
    Some((redis, a, b))
}
