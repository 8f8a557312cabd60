//! Every gauge the registry lists is scraped from a real server's `/metrics`, with its limit;
//! gauges follow live structures; the database and process gauges are there.

#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use signalbox::telemetry::gauges::{BOUNDS, SIZES};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The value of the sample `name` (no labels) in an exposition.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

async fn scrape(c: &common::Client) -> String {
    let response = c.get("/metrics", None).await;
    assert_eq!(response.status, 200);
    response.text
}

#[tokio::test]
async fn every_registered_gauge_is_exported_with_its_limit() {
    let server = common::TestServer::start_with(
        r#"{ "sse": { "maxSessions": 77 }, "realtime": { "maxConnectionsPerIp": 9 },
             "database": { "cacheSizeKib": 1024 } }"#,
    )
    .await;
    let c = server.client();
    // One route's database write, so the latency histogram has a route's operation (a guest
    // token alone writes nothing: guests are ephemeral until they own or join something).
    let (token, _) = c.guest("Ada").await;
    c.call(
        "POST",
        "/api/servers",
        Some(&token),
        Some(&serde_json::json!({ "name": "gauged" })),
    )
    .await
    .expect_ok(201);
    let text = scrape(&c).await;
    for bound in BOUNDS {
        let name = format!("signalbox_{}", bound.gauge);
        assert!(sample(&text, &name).is_some(), "{name} missing:\n{text}");
        let limit = format!("{name}_limit");
        assert!(sample(&text, &limit).is_some(), "{limit} missing:\n{text}");
    }
    for (gauge, _, _) in SIZES {
        let name = format!("signalbox_{gauge}");
        assert!(sample(&text, &name).is_some(), "{name} missing:\n{text}");
    }
    // Limits come from the settings in force.
    assert_eq!(sample(&text, "signalbox_sse_sessions_limit"), Some(77.0));
    assert_eq!(
        sample(&text, "signalbox_realtime_connections_busiest_ip_limit"),
        Some(9.0)
    );
    assert_eq!(
        sample(&text, "signalbox_db_cache_limit_bytes"),
        Some(4.0 * 1024.0 * 1024.0)
    );
    assert!(sample(&text, "signalbox_db_file_bytes").unwrap() > 0.0);
    assert!(
        text.contains("signalbox_db_query_seconds_count{operation=\"routes::servers::"),
        "no latency of the create route's query:\n{text}"
    );
    for process in [
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_start_time_seconds",
    ] {
        assert!(sample(&text, process).unwrap() > 0.0, "{process}:\n{text}");
    }
    // Whole seconds (the collector's resolution): present, perhaps still 0 in a short test.
    assert!(
        sample(&text, "process_cpu_seconds_total").is_some(),
        "{text}"
    );
}

#[tokio::test]
async fn connection_gauges_follow_live_connections_back_to_zero() {
    let server = common::TestServer::start().await;
    let c = server.client();
    let ws = common::ws::WsClient::connect(server.addr, "/ws").await;
    let mut sse = TcpStream::connect(server.addr).await.unwrap();
    let head = format!(
        "GET /api/connect?room=lobby HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\n\r\n",
        server.addr
    );
    sse.write_all(head.as_bytes()).await.unwrap();
    let mut buf = [0u8; 1024];
    let n = sse.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));

    let text = scrape(&c).await;
    assert_eq!(sample(&text, "signalbox_websocket_connections"), Some(1.0));
    // The WebSocket and the SSE session come from one address and share its cap.
    assert_eq!(
        sample(&text, "signalbox_realtime_connections_busiest_ip"),
        Some(2.0)
    );
    assert_eq!(sample(&text, "signalbox_realtime_connections"), Some(2.0));
    assert_eq!(sample(&text, "signalbox_sse_sessions"), Some(1.0));
    assert_eq!(sample(&text, "signalbox_sse_room_sessions_max"), Some(1.0));
    assert_eq!(sample(&text, "signalbox_hub_connections"), Some(2.0));

    // The WebSocket goes; the SSE session stays (it is kept for a resume until pruned).
    ws.close().await;
    drop(sse);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let text = scrape(&c).await;
        if sample(&text, "signalbox_websocket_connections") == Some(0.0)
            && sample(&text, "signalbox_hub_connections") == Some(1.0)
        {
            // The SSE session still holds its slot of the shared caps.
            assert_eq!(
                sample(&text, "signalbox_realtime_client_addresses"),
                Some(1.0)
            );
            assert_eq!(sample(&text, "signalbox_sse_sessions"), Some(1.0));
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the WebSocket was not released:\n{text}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
