//! The operator dashboard against a real server: who may see `/admin` and `/admin/stats`, the
//! snapshot following real WebSocket traffic, and the shipped Grafana dashboard and Prometheus
//! alert rules referring only to series `/metrics` exposes.

mod common;

use std::collections::BTreeSet;

use common::TestServer;
use common::ws::WsClient;
use ed25519_dalek::{Signer, SigningKey};
use serde_json::json;
use signalbox::auth::{decode_b64, encode_b64};
use signalbox_protocol::http::AdminStats;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn header<'a>(r: &'a common::Response, name: &str) -> Option<&'a str> {
    r.headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

async fn stats(s: &TestServer, token: Option<&str>) -> AdminStats {
    let r = s.client().get("/admin/stats", token).await;
    assert_eq!(r.status, 200, "{}", r.text);
    serde_json::from_str(&r.text).expect("an AdminStats body")
}

fn count(counts: &[signalbox_protocol::http::NamedCount], name: &str) -> u64 {
    counts
        .iter()
        .find(|c| c.name == name)
        .map_or(0, |c| c.count)
}

#[tokio::test]
async fn without_operators_the_dashboard_answers_loopback_callers() {
    let s = TestServer::start().await;
    let c = s.client();
    let page = c.get("/admin", None).await;
    assert_eq!(page.status, 200);
    assert_eq!(
        header(&page, "content-type"),
        Some("text/html; charset=utf-8")
    );
    let csp = header(&page, "content-security-policy").expect("CSP");
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(page.text.contains("/admin/admin.js"));
    for file in ["/admin/admin.js", "/admin/admin.css", "/admin/index.html"] {
        assert_eq!(c.get(file, None).await.status, 200, "{file}");
    }
    c.get("/admin/nothing-here", None)
        .await
        .expect_error(404, "NOT_FOUND");
    let stats = c.get("/admin/stats", None).await;
    assert_eq!(header(&stats, "cache-control"), Some("no-store"));
    let body: AdminStats = serde_json::from_str(&stats.text).expect("AdminStats");
    assert_eq!(body.connections.websocket, 0);
}

/// A guest connected with `?token=` and identified (a keepalive round trip proves it).
async fn guest(s: &TestServer, name: &str) -> (WsClient, String) {
    let (token, _) = s.client().guest(name).await;
    let mut ws = WsClient::connect(s.addr, &format!("/ws?token={token}")).await;
    ws.send(json!({"type": "identify", "displayName": name}))
        .await;
    ws.send(json!({"type": "keepalive"})).await;
    ws.expect("keepalive").await;
    (ws, token)
}

#[tokio::test]
async fn the_snapshot_follows_real_traffic() {
    let s = TestServer::start().await;
    let before = stats(&s, None).await;
    assert_eq!(before.users_online, 0);
    assert!(before.top_servers.is_empty());

    let c = s.client();
    let mut alice = guest(&s, "Alice").await;
    let mut bob = guest(&s, "Bob").await;
    let mut carol = guest(&s, "Carol").await;
    for (id, owner) in [("busy", &alice), ("quiet", &carol)] {
        let body = json!({"id": id, "name": id});
        c.call("POST", "/api/servers", Some(&owner.1), Some(&body))
            .await
            .expect_ok(201);
    }
    alice.0.join("busy").await;
    bob.0.join("busy").await;
    carol.0.join("quiet").await;
    alice
        .0
        .send(json!({"type": "chat_message", "serverId": "busy", "message": {"id": "m1", "content": "hi", "channelId": "general"}}))
        .await;
    bob.0.until("chat_message").await;

    let after = stats(&s, None).await;
    assert_eq!(after.connections.websocket, 3);
    assert_eq!(after.users_online, 3);
    let top: Vec<_> = after
        .top_servers
        .iter()
        .map(|l| (l.server_id.as_str(), l.members))
        .collect();
    assert_eq!(top, [("busy", 2), ("quiet", 1)]);
    assert_eq!(count(&after.envelopes_in, "identify"), 3);
    assert_eq!(count(&after.envelopes_in, "join_server"), 3);
    assert!(count(&after.envelopes_out, "connected") >= 3);
    assert!(after.uptime_seconds >= before.uptime_seconds);
    assert_eq!(after.upgrades_refused.len(), 3);

    // An SSE agent shows up as a session with an open stream.
    let mut agent = TcpStream::connect(s.addr).await.expect("tcp");
    agent
        .write_all(
            b"GET /api/connect?room=ops HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n",
        )
        .await
        .expect("write");
    let mut seen = String::new();
    while !seen.contains("event: joined") {
        let mut buf = [0u8; 2048];
        let n = tokio::time::timeout(common::ws::WAIT, agent.read(&mut buf))
            .await
            .expect("joined in time")
            .expect("read");
        assert!(n > 0, "stream ended: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    let with_sse = stats(&s, None).await;
    assert_eq!(with_sse.sse.sessions, 1);
    assert_eq!(with_sse.sse.sessions_created, 1);
    assert_eq!(with_sse.connections.sse_streams, 1);
    assert_eq!(
        with_sse.connections.websocket, 3,
        "SSE is not counted as WebSocket"
    );
    drop(agent);
    for (client, _) in [alice, bob, carol] {
        client.close().await;
    }
}

#[tokio::test]
async fn with_operators_the_stats_need_an_operator_token() {
    let key = SigningKey::from_bytes(&[9u8; 32]);
    let public = encode_b64(key.verifying_key().as_bytes());
    let vars = json!({ "operatorUserIds": [format!("key-{public}")] }).to_string();
    let s = TestServer::start_with(&vars).await;
    let c = s.client();
    // The page holds no data and is served to anyone; the stats are not.
    assert_eq!(c.get("/admin", None).await.status, 200);
    c.get("/admin/stats", None)
        .await
        .expect_error(401, "UNAUTHORIZED");
    c.get("/admin/stats", Some("not-a-token"))
        .await
        .expect_error(401, "UNAUTHORIZED");
    let (guest, _) = c.guest("Mallory").await;
    c.get("/admin/stats", Some(&guest))
        .await
        .expect_error(403, "FORBIDDEN");

    let ch = c
        .call(
            "POST",
            "/api/auth/challenge",
            None,
            Some(&json!({ "publicKey": public })),
        )
        .await
        .expect_ok(200);
    let challenge = decode_b64(ch["challenge"].as_str().expect("challenge")).expect("base64");
    let sig = encode_b64(&key.sign(&challenge).to_bytes());
    let verified = c
        .call(
            "POST",
            "/api/auth/verify",
            None,
            Some(
                &json!({ "challengeId": ch["challengeId"], "publicKey": public, "signature": sig }),
            ),
        )
        .await
        .expect_ok(200);
    let operator = verified["token"].as_str().expect("token");
    stats(&s, Some(operator)).await;
}

/// Every `signalbox_*` name in `text` (a PromQL expression, a dashboard, a rules file).
fn series_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let code: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect();
    let code = code.join("\n");
    let mut rest = code.as_str();
    while let Some(at) = rest.find("signalbox_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.insert(tail[..end].to_owned());
        rest = &tail[end..];
    }
    names
}

#[tokio::test]
async fn the_grafana_dashboard_and_alert_rules_use_only_exposed_series() {
    let s = TestServer::start().await;
    let metrics = s.client().get("/metrics", None).await;
    assert_eq!(metrics.status, 200);
    let exposed: BTreeSet<String> = metrics
        .text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_owned)
        .collect();
    assert!(exposed.contains("signalbox_ready"), "{exposed:?}");

    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let dashboard = std::fs::read_to_string(format!("{root}/docs/grafana/signalbox.json"))
        .expect("docs/grafana/signalbox.json");
    let parsed: serde_json::Value = serde_json::from_str(&dashboard).expect("dashboard is JSON");
    let panels = parsed["panels"].as_array().expect("panels");
    let mut exprs = String::new();
    for panel in panels {
        for target in panel["targets"].as_array().into_iter().flatten() {
            exprs.push_str(target["expr"].as_str().expect("expr"));
            exprs.push('\n');
        }
    }
    let rules = std::fs::read_to_string(format!("{root}/docs/prometheus/alerts.yml"))
        .expect("docs/prometheus/alerts.yml");
    for (file, text) in [("grafana", exprs.as_str()), ("alerts", rules.as_str())] {
        let used = series_names(text);
        assert!(used.len() >= 4, "{file} refers to too few series: {used:?}");
        let missing: Vec<_> = used.difference(&exposed).collect();
        assert!(
            missing.is_empty(),
            "{file} refers to series /metrics lacks: {missing:?}"
        );
    }
    for alert in [
        "NoReadyNode",
        "HighErrorRate",
        "SlowConsumerCloses",
        "SlowForwards",
    ] {
        assert!(rules.contains(&format!("alert: {alert}")), "{alert}");
    }
}
