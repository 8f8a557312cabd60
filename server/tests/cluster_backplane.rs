//! The Redis backplane (`signalbox::cluster`) against a real `redis-server` (Debian's 7.0).
//!
//! Several `Backplane`s with different node ids in one process stand for the nodes of a
//! cluster. Each test starts its own `redis-server` on a free loopback port (fault tests kill
//! subscriptions or restart it) and uses a fresh key prefix. Without `redis-server` a test
//! uses `SIGNALBOX_TEST_REDIS_URL` when set (the fault tests need their own server), else it
//! is skipped with a printed reason; under `CI=true` a missing server is a failure.
//! No timed assertions: conditions are awaited with a generous deadline.

#![allow(missing_docs)]

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use signalbox::cluster::wire::{Kind, Message};
use signalbox::cluster::{
    Backplane, Change, ClusterError, ClusterSettings, ForwardOutcome, Inbound, RelayOutcome,
    RosterEvent, Sink, SseOwner, SseSession,
};
use signalbox_protocol::Secret;

const DEADLINE: Duration = Duration::from_secs(30);

/// A `redis-server` child on a free loopback port, killed on drop.
struct RedisServer {
    child: Option<Child>,
    port: u16,
}

impl RedisServer {
    fn start_on(port: u16) -> Self {
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        let server = Self {
            child: Some(child),
            port,
        };
        server.wait_ready();
        server
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn wait_ready(&self) {
        let started = std::time::Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(started.elapsed() < DEADLINE, "redis-server never listened");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `SHUTDOWN NOSAVE` and wait for the process to end (Redis loses everything).
    async fn shutdown(&mut self) {
        let mut admin = admin(&self.url()).await;
        let _: redis::RedisResult<()> = redis::cmd("SHUTDOWN")
            .arg("NOSAVE")
            .query_async(&mut admin)
            .await;
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
    }

    fn restart(&mut self) {
        assert!(self.child.is_none(), "shut down first");
        *self = Self::start_on(self.port);
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn have_redis_server() -> bool {
    Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn skip(reason: &str) {
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "cluster backplane tests cannot run in CI: {reason}"
    );
    println!("SKIPPED: {reason} (install redis-server or run scripts/cluster redis start)");
}

/// Where a test's Redis is: its own server, or the shared one from the environment.
enum Redis {
    Own(RedisServer),
    Shared(String),
}

impl Redis {
    fn url(&self) -> String {
        match self {
            Self::Own(s) => s.url(),
            Self::Shared(url) => url.clone(),
        }
    }
}

/// Own server when possible; `need_own` (fault tests) refuses the shared one.
fn redis(need_own: bool) -> Option<Redis> {
    if have_redis_server() {
        return Some(Redis::Own(RedisServer::start_on(free_port())));
    }
    match std::env::var("SIGNALBOX_TEST_REDIS_URL") {
        Ok(url) if !need_own => Some(Redis::Shared(url)),
        _ => {
            skip("redis-server is not installed");
            None
        }
    }
}

async fn admin(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("admin connection")
}

/// Records everything delivered to one node.
#[derive(Default)]
struct Recorder {
    events: Mutex<Vec<Inbound>>,
}

impl Sink for Recorder {
    fn deliver(&self, event: Inbound) {
        self.events.lock().expect("lock").push(event);
    }
}

impl Recorder {
    fn snapshot(&self) -> Vec<Inbound> {
        self.events.lock().expect("lock").clone()
    }

    fn forwards(&self) -> Vec<(String, Bytes)> {
        self.snapshot()
            .into_iter()
            .filter_map(|e| match e {
                Inbound::Forward { target, frame } => Some((target, frame)),
                _ => None,
            })
            .collect()
    }

    /// The roster of `server` as this node's members know it: snapshots and events, in order.
    fn view(&self, server: &str) -> Vec<String> {
        let mut members = std::collections::BTreeSet::new();
        for event in self.snapshot() {
            match event {
                Inbound::Snapshot(s) if s.server == server => {
                    members = s.members.into_iter().map(|(u, _)| u).collect();
                }
                Inbound::Roster(e) if e.server == server => match e.change {
                    Change::Joined { user, .. } => {
                        members.insert(user);
                    }
                    Change::Left { user, .. } => {
                        members.remove(&user);
                    }
                    Change::Status { .. } => {}
                },
                _ => {}
            }
        }
        members.into_iter().collect()
    }

    fn roster_events(&self) -> Vec<RosterEvent> {
        self.snapshot()
            .into_iter()
            .filter_map(|e| match e {
                Inbound::Roster(r) => Some(r),
                _ => None,
            })
            .collect()
    }
}

async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = tokio::time::Instant::now();
    loop {
        if check().await {
            return;
        }
        assert!(started.elapsed() < DEADLINE, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn settings(url: &str, prefix: &str, node: &str) -> ClusterSettings {
    let mut s = ClusterSettings::new(node, Secret::new(url));
    s.key_prefix = prefix.to_owned();
    s.heartbeat_ms = 200;
    s.node_ttl_ms = 1_000;
    s
}

fn fresh_prefix() -> String {
    format!("t{}:", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

async fn node(url: &str, prefix: &str, id: &str) -> (Backplane, Arc<Recorder>) {
    let sink = Arc::new(Recorder::default());
    let backplane = Backplane::start(settings(url, prefix, id), sink.clone())
        .await
        .expect("backplane starts");
    (backplane, sink)
}

fn entry(user: &str) -> Bytes {
    Bytes::from(format!("{{\"userId\":\"{user}\"}}"))
}

#[tokio::test]
async fn joins_on_three_nodes_give_one_roster_with_increasing_versions() {
    let Some(redis) = redis(false) else { return };
    let (url, prefix) = (redis.url(), fresh_prefix());
    let (a, sink_a) = node(&url, &prefix, "node-a").await;
    let (b, sink_b) = node(&url, &prefix, "node-b").await;
    let (c, _sink_c) = node(&url, &prefix, "node-c").await;

    let va = a
        .join("S", "ua", 1, entry("ua"))
        .await
        .expect("join a")
        .version;
    let vb = b
        .join("S", "ub", 1, entry("ub"))
        .await
        .expect("join b")
        .version;
    let snap_c = c.join("S", "uc", 2, entry("uc")).await.expect("join c");
    assert!(
        va < vb && vb < snap_c.version,
        "{va} {vb} {}",
        snap_c.version
    );
    // A second device of a member already listed changes nothing.
    let again = a.join("S", "uc", 1, entry("uc")).await.expect("join again");
    assert_eq!(again.version, snap_c.version);

    for n in [&a, &b, &c] {
        let snap = n.snapshot("S").await.expect("snapshot");
        let mut users: Vec<_> = snap.members.iter().map(|(u, _)| u.clone()).collect();
        users.sort();
        assert_eq!(
            users,
            ["ua", "ub", "uc"],
            "{} sees a different roster",
            n.node_id()
        );
        assert_eq!(snap.version, snap_c.version);
    }
    // Node a joined first: it is told of ub then uc, in version order, once each.
    eventually("node a hears both later joins", || async {
        sink_a.roster_events().len() >= 2
    })
    .await;
    let heard: Vec<(u64, String)> = sink_a
        .roster_events()
        .into_iter()
        .map(|e| match e.change {
            Change::Joined { user, .. } => (e.version, user),
            Change::Left { user, .. } => (e.version, format!("-{user}")),
            Change::Status { user, .. } => (e.version, format!("~{user}")),
        })
        .collect();
    assert_eq!(
        heard,
        [(vb, "ub".to_owned()), (snap_c.version, "uc".to_owned())]
    );
    eventually("node b hears uc", || async {
        !sink_b.roster_events().is_empty()
    })
    .await;
    assert_eq!(sink_b.roster_events().len(), 1);

    // ua leaves: everyone who holds S hears it with the next version.
    a.leave("S", "ua", 0).await.expect("leave");
    eventually("node b hears ua leave", || async {
        sink_b.roster_events().iter().any(|e| {
            e.version == snap_c.version + 1
                && matches!(&e.change, Change::Left { user, entry: last } if user == "ua" && *last == entry("ua"))
        })
    })
    .await;
}

#[tokio::test]
async fn a_cross_node_offer_ice_and_answer_arrive_in_order_exactly_once() {
    let Some(redis) = redis(false) else { return };
    let (url, prefix) = (redis.url(), fresh_prefix());
    let (a, _sink_a) = node(&url, &prefix, "node-a").await;
    let (b, sink_b) = node(&url, &prefix, "node-b").await;
    a.identify("alice", 1).await.expect("identify alice");
    b.identify("bob", 1).await.expect("identify bob");

    let mut frames = vec!["offer".to_owned()];
    frames.extend((0..100).map(|i| format!("ice-{i}")));
    frames.push("answer".to_owned());
    let receipts: Vec<_> = frames
        .iter()
        .map(|f| {
            a.forward("alice", "bob", f.as_bytes(), None)
                .expect("queued")
        })
        .collect();
    for receipt in receipts {
        assert_eq!(receipt.outcome().await, ForwardOutcome::Delivered(1));
    }
    eventually("bob's node receives all 102 frames", || async {
        sink_b.forwards().len() >= frames.len()
    })
    .await;
    let got = sink_b.forwards();
    assert_eq!(got.len(), frames.len(), "a frame arrived twice");
    for ((target, frame), sent) in got.iter().zip(&frames) {
        assert_eq!(target, "bob");
        assert_eq!(frame.as_ref(), sent.as_bytes());
    }
}

#[tokio::test]
async fn a_forward_to_an_absent_target_reports_target_not_found() {
    let Some(redis) = redis(false) else { return };
    let (url, prefix) = (redis.url(), fresh_prefix());
    let (a, _) = node(&url, &prefix, "node-a").await;
    let (b, _) = node(&url, &prefix, "node-b").await;
    a.identify("alice", 1).await.expect("identify");
    let nobody = a.forward("alice", "nobody", b"{}", None).expect("queued");
    assert_eq!(nobody.outcome().await, ForwardOutcome::TargetNotFound);

    // Under the shared-server policy a target in none of the sender's servers is refused.
    b.identify("bob", 1).await.expect("identify");
    b.join("T", "bob", 1, entry("bob")).await.expect("join");
    let servers = ["S".to_owned()];
    let refused = a
        .forward("alice", "bob", b"{}", Some(&servers))
        .expect("queued");
    assert_eq!(refused.outcome().await, ForwardOutcome::Forbidden);
    let servers = ["S".to_owned(), "T".to_owned()];
    let allowed = a
        .forward("alice", "bob", b"{}", Some(&servers))
        .expect("queued");
    assert_eq!(allowed.outcome().await, ForwardOutcome::Delivered(1));

    // A user whose node died (its subscription gone) is not found either.
    drop(b);
    eventually("the dead node's subscription is gone", || async {
        let r = a.forward("alice", "bob", b"{}", None).expect("queued");
        r.outcome().await == ForwardOutcome::TargetNotFound
    })
    .await;
}

async fn numsub(url: &str, channel: &str) -> i64 {
    let mut admin = admin(url).await;
    let reply: Vec<redis::Value> = redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg(channel)
        .query_async(&mut admin)
        .await
        .expect("numsub");
    match reply.get(1) {
        Some(redis::Value::Int(n)) => *n,
        other => panic!("NUMSUB reply {other:?}"),
    }
}

#[tokio::test]
async fn a_broadcast_reaches_no_node_without_a_member() {
    let Some(redis) = redis(false) else { return };
    let (url, prefix) = (redis.url(), fresh_prefix());
    let (a, sink_a) = node(&url, &prefix, "node-a").await;
    let (b, sink_b) = node(&url, &prefix, "node-b").await;
    let (_c, sink_c) = node(&url, &prefix, "node-c").await;
    a.join("S", "alice", 1, entry("alice")).await.expect("join");
    b.join("S", "bob", 1, entry("bob")).await.expect("join");
    let channel = a.keys().server_channel("S");
    assert_eq!(numsub(&url, &channel).await, 2, "only a and b subscribe");

    a.broadcast("S", "alice", Bytes::from_static(b"hello"))
        .expect("queued");
    // Ordered after the broadcast on the same publisher: once bob's node has this forward,
    // the broadcast was delivered (or never will be) everywhere.
    b.identify("bob", 1).await.expect("identify");
    let fence = a.forward("alice", "bob", b"fence", None).expect("queued");
    assert_eq!(fence.outcome().await, ForwardOutcome::Delivered(1));
    eventually("bob's node receives the fence", || async {
        !sink_b.forwards().is_empty()
    })
    .await;
    let broadcasts = |events: Vec<Inbound>| {
        events
            .into_iter()
            .filter(|e| matches!(e, Inbound::Broadcast { .. }))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        broadcasts(sink_b.snapshot()),
        [Inbound::Broadcast {
            server: "S".into(),
            sender: "alice".into(),
            frame: Bytes::from_static(b"hello")
        }]
    );
    assert!(
        broadcasts(sink_a.snapshot()).is_empty(),
        "the origin re-delivered"
    );
    assert!(
        sink_c.snapshot().is_empty(),
        "a node without members got traffic"
    );

    b.leave("S", "bob", 0).await.expect("leave");
    assert_eq!(
        numsub(&url, &channel).await,
        1,
        "b unsubscribed after its last leave"
    );
}

async fn keys_naming(url: &str, prefix: &str, needle: &str) -> Vec<String> {
    let mut admin = admin(url).await;
    let mut found = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}*"))
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut admin)
            .await
            .expect("scan");
        for key in keys {
            let kind: String = redis::cmd("TYPE")
                .arg(&key)
                .query_async(&mut admin)
                .await
                .expect("type");
            let members: Vec<String> = match kind.as_str() {
                "hash" => redis::cmd("HKEYS").arg(&key).query_async(&mut admin).await,
                "set" => {
                    redis::cmd("SMEMBERS")
                        .arg(&key)
                        .query_async(&mut admin)
                        .await
                }
                "zset" => {
                    redis::cmd("ZRANGE")
                        .arg(&key)
                        .arg(0)
                        .arg(-1)
                        .query_async(&mut admin)
                        .await
                }
                _ => Ok(Vec::new()),
            }
            .expect("members");
            if key.contains(needle) || members.iter().any(|m| m == needle) {
                found.push(key);
            }
        }
        if next == 0 {
            return found;
        }
        cursor = next;
    }
}

#[tokio::test]
async fn a_node_that_stops_heartbeating_is_reaped() {
    let Some(redis) = redis(false) else { return };
    let (url, prefix) = (redis.url(), fresh_prefix());
    let (a, sink_a) = node(&url, &prefix, "node-a").await;
    let (b, _) = node(&url, &prefix, "node-b").await;
    a.identify("alice", 1).await.expect("identify");
    a.join("S", "alice", 1, entry("alice")).await.expect("join");
    b.identify("bob", 2).await.expect("identify");
    b.join("S", "bob", 2, entry("bob")).await.expect("join");
    b.join("T", "bob", 1, entry("bob")).await.expect("join");
    assert!(!keys_naming(&url, &prefix, "node-b").await.is_empty());

    drop(b); // no leave, no deregistration: what a crash leaves behind
    eventually("node a hears bob leave S", || async {
        sink_a
            .roster_events()
            .iter()
            .any(|e| matches!(&e.change, Change::Left { user, .. } if user == "bob"))
    })
    .await;
    eventually("no key names the dead node", || async {
        keys_naming(&url, &prefix, "node-b").await.is_empty()
    })
    .await;
    assert!(a.reaped() >= 1, "node a ran the reaper");
    let snap = a.snapshot("S").await.expect("snapshot");
    assert_eq!(snap.members.len(), 1);
    assert_eq!(a.snapshot("T").await.expect("snapshot").members.len(), 0);
    let gone = a.forward("alice", "bob", b"{}", None).expect("queued");
    assert_eq!(gone.outcome().await, ForwardOutcome::TargetNotFound);
}

#[tokio::test]
async fn a_killed_subscription_resubscribes_and_delivers_again() {
    let Some(redis) = redis(true) else { return };
    let (url, prefix) = (redis.url(), fresh_prefix());
    let (a, _) = node(&url, &prefix, "node-a").await;
    let (b, sink_b) = node(&url, &prefix, "node-b").await;
    a.identify("alice", 1).await.expect("identify");
    b.identify("bob", 1).await.expect("identify");
    b.join("S", "bob", 1, entry("bob")).await.expect("join");

    let mut admin = admin(&url).await;
    let killed: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("pubsub")
        .query_async(&mut admin)
        .await
        .expect("client kill");
    assert!(killed >= 2, "both subscribers killed ({killed})");

    eventually("b resubscribed to its node and server channels", || async {
        numsub(&url, &b.keys().node_channel("node-b")).await == 1
            && numsub(&url, &b.keys().server_channel("S")).await == 1
    })
    .await;
    let before = sink_b.forwards().len();
    let receipt = a.forward("alice", "bob", b"after", None).expect("queued");
    assert_eq!(receipt.outcome().await, ForwardOutcome::Delivered(1));
    eventually("bob's node delivers again", || async {
        sink_b.forwards().len() > before
    })
    .await;
    eventually("the disconnection triggered a resync", || async {
        b.resyncs() >= 1
    })
    .await;
}

#[tokio::test]
async fn a_redis_restart_changes_the_epoch_and_the_resync_registers_again() {
    if !have_redis_server() {
        skip("redis-server is not installed");
        return;
    }
    let mut server = RedisServer::start_on(free_port());
    let (url, prefix) = (server.url(), fresh_prefix());
    let (a, sink_a) = node(&url, &prefix, "node-a").await;
    let (b, _) = node(&url, &prefix, "node-b").await;
    a.identify("alice", 1).await.expect("identify");
    a.join("S", "alice", 1, entry("alice")).await.expect("join");
    a.register_sse("s1", session("lobby"))
        .await
        .expect("register");
    b.identify("bob", 1).await.expect("identify");

    server.shutdown().await;
    eventually("both nodes see Redis gone", || async {
        !a.is_up() && !b.is_up()
    })
    .await;
    // Meanwhile a remote send answers an error instead of hanging.
    let outage = b.forward("bob", "alice", b"lost", None).expect("queued");
    assert_eq!(outage.outcome().await, ForwardOutcome::Unavailable);
    server.restart();

    eventually("node a resynced after the epoch change", || async {
        a.resyncs() >= 1
    })
    .await;
    eventually("alice is registered and listed again", || async {
        let mut admin = admin(&url).await;
        let nodes: Vec<String> = redis::cmd("HKEYS")
            .arg(format!("{prefix}u:alice"))
            .query_async(&mut admin)
            .await
            .unwrap_or_default();
        let listed: bool = redis::cmd("HEXISTS")
            .arg(format!("{prefix}s:S:m"))
            .arg("alice")
            .query_async(&mut admin)
            .await
            .unwrap_or(false);
        nodes == ["node-a"] && listed
    })
    .await;
    eventually("node a handed a fresh roster to its members", || async {
        sink_a.snapshot().iter().any(|e| {
            matches!(e, Inbound::Snapshot(s) if s.server == "S"
                && s.members.iter().any(|(u, _)| u == "alice"))
        })
    })
    .await;
    eventually("bob reaches alice across nodes again", || async {
        let r = b.forward("bob", "alice", b"hi", None).expect("queued");
        r.outcome().await == ForwardOutcome::Delivered(1)
    })
    .await;
    eventually("node a's SSE session is registered again", || async {
        b.sse_owner("s1")
            .await
            .is_ok_and(|owner| owner.is_some_and(|o| o.node == "node-a"))
    })
    .await;
}

#[tokio::test]
async fn a_version_gap_makes_the_node_refetch_the_roster() {
    let Some(redis) = redis(false) else { return };
    let (url, prefix) = (redis.url(), fresh_prefix());
    let (a, sink_a) = node(&url, &prefix, "node-a").await;
    let snap = a.join("S", "alice", 1, entry("alice")).await.expect("join");
    // An event from the future (versions in between never seen): the node must not apply
    // it blindly but fetch the roster as Redis holds it.
    let future = Message {
        kind: Kind::UserJoined,
        origin: "node-x".into(),
        roster_version: snap.version + 5,
        change_id: 0,
        server: "S".into(),
        user: "ghost".into(),
        payload: entry("ghost"),
    }
    .encode()
    .expect("encodes");
    let mut admin = admin(&url).await;
    let _: i64 = redis::cmd("PUBLISH")
        .arg(a.keys().server_channel("S"))
        .arg(future.as_ref())
        .query_async(&mut admin)
        .await
        .expect("publish");
    eventually("node a refetched S", || async {
        sink_a
            .snapshot()
            .iter()
            .any(|e| matches!(e, Inbound::Snapshot(s) if s.server == "S"))
    })
    .await;
    assert!(
        sink_a.roster_events().is_empty(),
        "the gapped event was applied: {:?}",
        sink_a.roster_events()
    );
}

#[tokio::test]
async fn garbage_on_a_channel_is_dropped_and_delivery_goes_on() {
    let Some(redis) = redis(false) else { return };
    let (url, prefix) = (redis.url(), fresh_prefix());
    let (a, _) = node(&url, &prefix, "node-a").await;
    let (b, sink_b) = node(&url, &prefix, "node-b").await;
    a.identify("alice", 1).await.expect("identify");
    b.identify("bob", 1).await.expect("identify");
    let mut admin = admin(&url).await;
    for garbage in [
        &b""[..],
        b"S",
        b"{\"type\":\"chat\"}",
        &[0x53, 1, 2, 0xff, 0xff][..],
    ] {
        let _: i64 = redis::cmd("PUBLISH")
            .arg(b.keys().node_channel("node-b"))
            .arg(garbage)
            .query_async(&mut admin)
            .await
            .expect("publish");
    }
    let receipt = a.forward("alice", "bob", b"real", None).expect("queued");
    assert_eq!(receipt.outcome().await, ForwardOutcome::Delivered(1));
    eventually("the real frame arrives", || async {
        !sink_b.forwards().is_empty()
    })
    .await;
    assert_eq!(
        sink_b.forwards(),
        [("bob".to_owned(), Bytes::from_static(b"real"))]
    );
}

#[tokio::test]
async fn a_resync_takes_back_what_the_node_no_longer_holds() {
    let Some(redis) = redis(true) else { return };
    let (url, prefix) = (redis.url(), fresh_prefix());
    let (a, _) = node(&url, &prefix, "node-a").await;
    let (b, sink_b) = node(&url, &prefix, "node-b").await;
    a.identify("alice", 1).await.expect("identify");
    a.join("S", "alice", 1, entry("alice")).await.expect("join");
    b.join("S", "bob", 1, entry("bob")).await.expect("join");
    // What a leave and a disconnect lost during an outage leave behind: Redis still lists a
    // "ghost" on node a, which node a no longer has.
    let mut admin = admin(&url).await;
    let () = redis::pipe()
        .cmd("HSET")
        .arg(format!("{prefix}u:ghost"))
        .arg("node-a")
        .arg(1)
        .ignore()
        .cmd("SADD")
        .arg(format!("{prefix}n:node-a:users"))
        .arg("ghost")
        .ignore()
        .cmd("HSET")
        .arg(format!("{prefix}s:S:n:node-a"))
        .arg("ghost")
        .arg(1)
        .ignore()
        .cmd("HSET")
        .arg(format!("{prefix}s:S:m"))
        .arg("ghost")
        .arg("{}")
        .ignore()
        // And a whole server T Redis lists for node a, where node a holds nobody any more.
        .cmd("SADD")
        .arg(format!("{prefix}n:node-a:servers"))
        .arg("T")
        .ignore()
        .cmd("HSET")
        .arg(format!("{prefix}s:T:n:node-a"))
        .arg("ghost")
        .arg(1)
        .ignore()
        .cmd("HSET")
        .arg(format!("{prefix}s:T:m"))
        .arg("ghost")
        .arg("{}")
        .ignore()
        .query_async(&mut admin)
        .await
        .expect("plant the ghost");
    // Node a resyncs after its subscription is killed.
    let _: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("pubsub")
        .query_async(&mut admin)
        .await
        .expect("client kill");
    // Node b's subscription was killed too: it hears the ghost leave, or (when the leave was
    // published before it resubscribed) its own resync hands it a roster without the ghost.
    eventually("node b's members learn the ghost is gone", || async {
        let told = sink_b.snapshot().iter().any(|e| match e {
            Inbound::Roster(r) => matches!(&r.change, Change::Left { user, .. } if user == "ghost"),
            Inbound::Snapshot(s) => s.server == "S",
            _ => false,
        });
        told && !sink_b.view("S").iter().any(|u| u == "ghost")
    })
    .await;
    let mut users: Vec<String> = a
        .snapshot("S")
        .await
        .expect("snapshot")
        .members
        .into_iter()
        .map(|(u, _)| u)
        .collect();
    users.sort();
    assert_eq!(users, ["alice", "bob"]);
    let routed: Vec<String> = redis::cmd("HKEYS")
        .arg(format!("{prefix}u:ghost"))
        .query_async(&mut admin)
        .await
        .expect("hkeys");
    assert!(routed.is_empty(), "the ghost is still routed to {routed:?}");
    eventually("node a gave server T back", || async {
        a.snapshot("T")
            .await
            .is_ok_and(|snap| snap.members.is_empty())
    })
    .await;
    let share: i64 = redis::cmd("EXISTS")
        .arg(format!("{prefix}s:T:n:node-a"))
        .query_async(&mut admin)
        .await
        .expect("exists");
    assert_eq!(share, 0);
    let listed: Vec<String> = redis::cmd("SMEMBERS")
        .arg(format!("{prefix}n:node-a:servers"))
        .query_async(&mut admin)
        .await
        .expect("smembers");
    assert_eq!(listed, ["S"]);
}

#[tokio::test]
async fn a_status_change_bumps_every_server_and_fans_out_once_per_node() {
    let Some(redis) = redis(false) else { return };
    let (url, prefix) = (redis.url(), fresh_prefix());
    let (a, _) = node(&url, &prefix, "node-a").await;
    let (b, sink_b) = node(&url, &prefix, "node-b").await;
    for server in ["S", "T"] {
        a.join(server, "alice", 1, entry("alice"))
            .await
            .expect("join");
        b.join(server, "bob", 1, entry("bob")).await.expect("join");
    }
    let before_s = a.snapshot("S").await.expect("snapshot").version;
    let before_t = a.snapshot("T").await.expect("snapshot").version;
    let away = Bytes::from_static(b"{\"userId\":\"alice\",\"status\":\"away\"}");
    a.set_status("alice", away.clone()).expect("queued");

    let statuses = || {
        sink_b
            .roster_events()
            .into_iter()
            .filter_map(|e| match e.change {
                Change::Status {
                    user,
                    entry,
                    change_id,
                    fan_out,
                    ..
                } => Some((e.server, e.version, user, entry, change_id, fan_out)),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    eventually("node b hears the change in S and T", || async {
        statuses().len() >= 2
    })
    .await;
    let got = statuses();
    assert_eq!(got.len(), 2, "{got:?}");
    let mut servers: Vec<_> = got.iter().map(|g| (g.0.clone(), g.1)).collect();
    servers.sort();
    assert_eq!(
        servers,
        [
            ("S".to_owned(), before_s + 1),
            ("T".to_owned(), before_t + 1)
        ]
    );
    assert!(got.iter().all(|g| g.2 == "alice" && g.3 == away));
    assert_eq!(got[0].4, got[1].4, "one change id");
    assert_ne!(got[0].4, 0);
    assert_eq!(
        got.iter().filter(|g| g.5).count(),
        1,
        "fanned out exactly once"
    );
    let snap = b.snapshot("T").await.expect("snapshot");
    assert!(snap.members.contains(&("alice".to_owned(), away)));
}

#[tokio::test]
async fn a_resync_with_nothing_lost_changes_no_roster_version() {
    let Some(redis) = redis(true) else { return };
    let (url, prefix) = (redis.url(), fresh_prefix());
    let (a, _) = node(&url, &prefix, "node-a").await;
    let (b, sink_b) = node(&url, &prefix, "node-b").await;
    a.identify("alice", 1).await.expect("identify");
    a.join("S", "alice", 2, entry("alice")).await.expect("join");
    b.join("S", "bob", 1, entry("bob")).await.expect("join");
    let version = a.snapshot("S").await.expect("snapshot").version;

    let mut admin = admin(&url).await;
    let _: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("pubsub")
        .query_async(&mut admin)
        .await
        .expect("client kill");
    eventually("both nodes resynced and handed out rosters", || async {
        a.resyncs() >= 1
            && b.resyncs() >= 1
            && sink_b
                .snapshot()
                .iter()
                .any(|e| matches!(e, Inbound::Snapshot(s) if s.server == "S"))
    })
    .await;
    let snap = a.snapshot("S").await.expect("snapshot");
    assert_eq!(snap.version, version, "a rejoin replayed joins");
    let share: Vec<(String, u32)> = redis::cmd("HGETALL")
        .arg(format!("{prefix}s:S:n:node-a"))
        .query_async(&mut admin)
        .await
        .expect("hgetall");
    assert_eq!(share, [("alice".to_owned(), 2)]);
    assert!(sink_b.roster_events().iter().all(|e| e.version <= version));
}

#[tokio::test]
async fn a_forward_to_a_user_only_on_this_node_never_touches_redis() {
    if !have_redis_server() {
        skip("redis-server is not installed");
        return;
    }
    let mut server = RedisServer::start_on(free_port());
    let (url, prefix) = (server.url(), fresh_prefix());
    let (a, _) = node(&url, &prefix, "node-a").await;
    let (b, sink_b) = node(&url, &prefix, "node-b").await;
    a.identify("alice", 1).await.expect("identify");
    assert!(a.is_only_local("alice"));
    let local = a.forward("carol", "alice", b"{}", None).expect("answered");
    assert_eq!(local.outcome().await, ForwardOutcome::LocalOnly);

    // A second device of alice on node b: b knows at once (the registry's answer), a is told
    // by the devices hint; a forward on a now reaches b too.
    b.identify("alice", 1).await.expect("identify");
    assert!(!b.is_only_local("alice"));
    eventually("node a hears alice is on node b too", || async {
        !a.is_only_local("alice")
    })
    .await;
    let both = a.forward("carol", "alice", b"both", None).expect("queued");
    assert_eq!(both.outcome().await, ForwardOutcome::Delivered(1));
    eventually("node b delivers it", || async {
        sink_b.forwards() == [("alice".to_owned(), Bytes::from_static(b"both"))]
    })
    .await;

    b.identify("alice", 0).await.expect("identify");
    eventually("node a hears alice left node b", || async {
        a.is_only_local("alice")
    })
    .await;
    // Redis gone: a forward to a local-only target is still answered, locally.
    server.shutdown().await;
    let alone = a.forward("carol", "alice", b"{}", None).expect("answered");
    assert_eq!(alone.outcome().await, ForwardOutcome::LocalOnly);
    assert!(!a.is_only_local("nobody"));
}

#[tokio::test]
async fn a_roster_change_lost_without_a_trace_is_caught_by_the_version_check() {
    let Some(redis) = redis(false) else { return };
    let (url, prefix) = (redis.url(), fresh_prefix());
    let (a, sink_a) = node(&url, &prefix, "node-a").await;
    a.join("S", "alice", 1, entry("alice")).await.expect("join");
    // A change whose announcement never arrived: the roster and its version moved, no event.
    let mut admin = admin(&url).await;
    let () = redis::pipe()
        .cmd("HSET")
        .arg(format!("{prefix}s:S:m"))
        .arg("ghost")
        .arg("{}")
        .ignore()
        .cmd("INCR")
        .arg(format!("{prefix}s:S:v"))
        .ignore()
        .query_async(&mut admin)
        .await
        .expect("plant");
    eventually("node a refetched S and lists the ghost", || async {
        sink_a.snapshot().iter().any(|e| {
            matches!(e, Inbound::Snapshot(s) if s.server == "S"
                && s.members.iter().any(|(u, _)| u == "ghost"))
        })
    })
    .await;
    assert!(sink_a.roster_events().is_empty());
}

/// A node's SSE side as the transport will be: answers relays and takeovers at once (from
/// the sink, which must not block: `answer_relay` only queues), records raw signals.
#[derive(Default)]
struct SseAnswerer {
    backplane: std::sync::OnceLock<std::sync::Weak<Backplane>>,
    recorder: Recorder,
}

impl Sink for SseAnswerer {
    fn deliver(&self, event: Inbound) {
        let answer = match &event {
            Inbound::Relay {
                corr,
                reply_to,
                request,
                session,
            } => Some((
                reply_to.clone(),
                *corr,
                Bytes::from(format!("{session}:{}", String::from_utf8_lossy(request))),
            )),
            Inbound::Takeover {
                corr,
                reply_to,
                session,
            } => Some((
                reply_to.clone(),
                *corr,
                Bytes::from(format!("state-of-{session}")),
            )),
            _ => None,
        };
        if let Some((reply_to, corr, result)) = answer
            && let Some(node) = self.backplane.get().and_then(std::sync::Weak::upgrade)
        {
            node.answer_relay(&reply_to, corr, result).expect("queued");
        }
        self.recorder.deliver(event);
    }
}

async fn sse_node(
    url: &str,
    prefix: &str,
    id: &str,
    tweak: impl FnOnce(&mut ClusterSettings),
) -> (Arc<Backplane>, Arc<SseAnswerer>) {
    let sink = Arc::new(SseAnswerer::default());
    let mut s = settings(url, prefix, id);
    tweak(&mut s);
    let backplane = Arc::new(Backplane::start(s, sink.clone()).await.expect("starts"));
    sink.backplane
        .set(Arc::downgrade(&backplane))
        .expect("set once");
    (backplane, sink)
}

fn session(room: &str) -> SseSession {
    SseSession {
        room: room.to_owned(),
        token_sha256: "ab".repeat(32),
        principal: "guest-1".to_owned(),
    }
}

#[tokio::test]
async fn an_sse_request_landing_on_another_node_is_relayed_and_answered() {
    let Some(redis) = redis(false) else { return };
    let (url, prefix) = (redis.url(), fresh_prefix());
    let (a, sink_a) = sse_node(&url, &prefix, "node-a", |_| {}).await;
    let (b, _) = sse_node(&url, &prefix, "node-b", |_| {}).await;
    a.register_sse("s1", session("lobby"))
        .await
        .expect("register");
    assert_eq!(
        b.sse_owner("s1").await.expect("lookup"),
        Some(SseOwner {
            node: "node-a".into(),
            session: session("lobby")
        })
    );
    assert_eq!(b.sse_owner("nobody").await.expect("lookup"), None);

    let answered = b.relay("node-a", "s1", Bytes::from_static(b"signal")).await;
    assert_eq!(
        answered,
        RelayOutcome::Answered(Bytes::from_static(b"s1:signal"))
    );
    assert_eq!(b.metrics().pending_relays, 0);

    // A signal from a session on b to a's session travels wire-exact.
    assert!(
        b.raw_signal(
            "node-a",
            "s2",
            "s1",
            Bytes::from_static(b"event: signal\n\n")
        )
        .await
        .expect("published")
    );
    eventually("node a hands the raw signal over", || async {
        sink_a.recorder.snapshot().iter().any(|e| {
            *e == Inbound::RawSignal {
                from: "s2".into(),
                to: "s1".into(),
                raw: Bytes::from_static(b"event: signal\n\n"),
            }
        })
    })
    .await;

    // A resume on b takes the session over: a answers its state, b owns the entry, and a's
    // late removal leaves b's entry alone.
    let state = b.takeover("node-a", "s1").await;
    assert_eq!(
        state,
        RelayOutcome::Answered(Bytes::from_static(b"state-of-s1"))
    );
    b.register_sse("s1", session("lobby"))
        .await
        .expect("register");
    a.remove_sse("s1").await.expect("remove");
    let owner = a.sse_owner("s1").await.expect("lookup").expect("present");
    assert_eq!(owner.node, "node-b");
    b.remove_sse("s1").await.expect("remove");
    assert_eq!(a.sse_owner("s1").await.expect("lookup"), None);
}

#[tokio::test]
async fn a_relay_to_a_dead_silent_or_busy_owner_is_answered_at_once_or_times_out() {
    let Some(redis) = redis(false) else { return };
    let (url, prefix) = (redis.url(), fresh_prefix());
    let (b, _) = sse_node(&url, &prefix, "node-b", |s| {
        s.relay_timeout_ms = 300;
        s.max_pending_relays = 1;
    })
    .await;
    // Nobody listens on node-x's channel: the owner is dead.
    let none = b.relay("node-x", "s1", Bytes::new()).await;
    assert_eq!(none, RelayOutcome::NoOwner);
    // node-c listens but never answers (a recorder, not a transport).
    let (_c, sink_c) = node(&url, &prefix, "node-c").await;
    let (first, second) = tokio::join!(
        b.relay("node-c", "s1", Bytes::from_static(b"one")),
        b.relay("node-c", "s1", Bytes::from_static(b"two")),
    );
    assert_eq!(first, RelayOutcome::TimedOut);
    assert_eq!(second, RelayOutcome::Busy, "the table holds one");
    let m = b.metrics();
    assert_eq!((m.relay_timeouts, m.relays_refused), (1, 1));
    assert_eq!((m.pending_relays, m.pending_relays_limit), (0, 1));
    assert!(m.redis_up);
    assert!(
        sink_c
            .snapshot()
            .iter()
            .any(|e| matches!(e, Inbound::Relay { .. }))
    );
}

#[tokio::test]
async fn a_dead_nodes_sse_sessions_leave_the_registry() {
    let Some(redis) = redis(false) else { return };
    let (url, prefix) = (redis.url(), fresh_prefix());
    let (a, _) = node(&url, &prefix, "node-a").await;
    let (b, _) = node(&url, &prefix, "node-b").await;
    b.register_sse("s9", session("r")).await.expect("register");
    assert!(a.sse_owner("s9").await.expect("lookup").is_some());
    drop(b);
    eventually("the reaper removed the dead node's session", || async {
        a.sse_owner("s9").await.expect("lookup").is_none()
    })
    .await;
    eventually("no key names the dead node", || async {
        keys_naming(&url, &prefix, "node-b").await.is_empty()
    })
    .await;
}

#[tokio::test]
async fn a_leave_the_full_queue_refused_is_replayed_by_the_next_heartbeat() {
    let Some(redis) = redis(true) else { return };
    let (url, prefix) = (redis.url(), fresh_prefix());
    let (a, sink_a) = node(&url, &prefix, "node-a").await;
    let mut small = settings(&url, &prefix, "node-b");
    small.publish_queue = 4;
    let b = Backplane::start(small, Arc::new(Recorder::default()))
        .await
        .expect("backplane starts");
    a.identify("alice", 1).await.expect("identify");
    a.join("S", "alice", 1, entry("alice")).await.expect("join");
    b.identify("bob", 1).await.expect("identify");
    b.join("S", "bob", 1, entry("bob")).await.expect("join");
    eventually("node a hears bob join", || async {
        sink_a.view("S") == ["bob"]
    })
    .await;

    // Redis holds every write, so node b's queue fills behind the pipeline in flight.
    let mut admin = admin(&url).await;
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(5_000)
        .arg("WRITE")
        .query_async(&mut admin)
        .await
        .expect("pause");
    while b.broadcast("S", "bob", Bytes::from_static(b"{}")).is_ok() {}
    let refused = b.leave("S", "bob", 0).await;
    let _: () = redis::cmd("CLIENT")
        .arg("UNPAUSE")
        .query_async(&mut admin)
        .await
        .expect("unpause");
    assert!(
        matches!(refused, Err(ClusterError::QueueFull)),
        "{refused:?}"
    );

    eventually("bob leaves the roster Redis holds", || async {
        a.snapshot("S").await.is_ok_and(|s| {
            s.members
                .iter()
                .map(|(u, _)| u.as_str())
                .collect::<Vec<_>>()
                == ["alice"]
        })
    })
    .await;
    eventually("node a hears bob leave", || async {
        sink_a.view("S").is_empty()
    })
    .await;
}

#[tokio::test]
async fn a_node_reaped_while_alive_that_writes_and_then_dies_leaves_no_key() {
    let Some(redis) = redis(false) else { return };
    let (url, prefix) = (redis.url(), fresh_prefix());
    let (a, _) = node(&url, &prefix, "node-a").await;
    // Node b beats once (at start) and not again for the rest of the test.
    let mut slow = settings(&url, &prefix, "node-b");
    slow.heartbeat_ms = 60_000;
    slow.node_ttl_ms = 600_000;
    let b = Backplane::start(slow, Arc::new(Recorder::default()))
        .await
        .expect("backplane starts");
    b.identify("bob", 1).await.expect("identify");

    // What a `kill -STOP` longer than the TTL looks like to node a: b is reaped.
    let mut admin = admin(&url).await;
    let _: () = redis::cmd("ZADD")
        .arg(b.keys().nodes())
        .arg(0)
        .arg("node-b")
        .query_async(&mut admin)
        .await
        .expect("backdate b");
    eventually("node a reaps b", || async {
        keys_naming(&url, &prefix, "node-b").await.is_empty()
    })
    .await;

    // b runs again and writes before its next heartbeat would notice, then dies.
    b.identify("carol", 1).await.expect("identify");
    b.join("S", "carol", 1, entry("carol")).await.expect("join");
    drop(b);
    eventually("no key names the dead node", || async {
        keys_naming(&url, &prefix, "node-b").await.is_empty()
    })
    .await;
    assert_eq!(a.snapshot("S").await.expect("snapshot").members.len(), 0);
}

#[tokio::test]
async fn a_node_restarted_under_the_same_id_takes_back_what_it_held_before() {
    let Some(redis) = redis(false) else { return };
    let (url, prefix) = (redis.url(), fresh_prefix());
    let (a, _) = node(&url, &prefix, "node-a").await;
    a.identify("alice", 1).await.expect("identify");
    a.join("S", "alice", 1, entry("alice")).await.expect("join");
    let (b, _) = node(&url, &prefix, "node-b").await;
    b.identify("bob", 1).await.expect("identify");
    b.join("S", "bob", 1, entry("bob")).await.expect("join");
    b.register_sse("sess-1", session("R"))
        .await
        .expect("register");

    // A crash and a restart well within the node TTL: the new process holds nobody.
    drop(b);
    let (b, _) = node(&url, &prefix, "node-b").await;
    let roster = a.snapshot("S").await.expect("snapshot");
    assert_eq!(
        roster
            .members
            .iter()
            .map(|(u, _)| u.as_str())
            .collect::<Vec<_>>(),
        ["alice"]
    );
    assert_eq!(b.sse_owner("sess-1").await.expect("owner"), None);
    assert!(
        keys_naming(&url, &prefix, "bob").await.is_empty(),
        "no routing entry for bob"
    );
}
