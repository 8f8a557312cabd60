//! Normal client behaviour never logs at ERROR: the real binary is driven with abandoned SSE
//! streams, WebSockets dropped without a close frame, half-sent requests and a request that is
//! not HTTP, then stopped with SIGTERM; its whole JSON log is read and must hold no ERROR line,
//! while the re-levelled "client went away" lines prove the failures did happen. A refused
//! request is logged at INFO with its code.

#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::mpsc;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const BIN: &str = env!("CARGO_BIN_EXE_signalbox");

/// Reads until `needle` has arrived (or the peer closed).
async fn read_until(socket: &mut TcpStream, needle: &[u8]) -> Vec<u8> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !seen.windows(needle.len()).any(|w| w == needle) {
        let n = tokio::time::timeout(common::ws::WAIT, socket.read(&mut buf))
            .await
            .expect("the server answered in time")
            .unwrap();
        if n == 0 {
            break;
        }
        seen.extend_from_slice(&buf[..n]);
    }
    seen
}

/// Opens an SSE stream, reads its first event, and goes away without `/api/leave`.
async fn abandon_sse_stream(addr: SocketAddr, room: &str) {
    let mut socket = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "GET /api/connect?room={room} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n"
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    let seen = read_until(&mut socket, b"event: ").await;
    assert!(
        seen.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&seen)
    );
    drop(socket);
}

/// Connects a WebSocket, reads `connected`, and drops the TCP stream without a close frame.
async fn drop_websocket(addr: SocketAddr) {
    let client = common::ws::WsClient::connect(addr, "/ws").await;
    drop(client);
}

/// Sends `bytes` and hangs up without waiting for an answer.
async fn send_and_hang_up(addr: SocketAddr, bytes: &[u8]) {
    let mut socket = TcpStream::connect(addr).await.unwrap();
    socket.write_all(bytes).await.unwrap();
    drop(socket);
}

#[tokio::test]
async fn ordinary_client_behaviour_logs_no_error() {
    let dir = tempfile::tempdir().unwrap();
    // Short keep-alives, so an abandoned stream is written to (and found gone) quickly.
    std::fs::write(
        dir.path().join("variables.json"),
        r#"{ "sse": { "keepaliveIntervalMs": 50 } }"#,
    )
    .unwrap();
    let mut child = Command::new(BIN)
        .args(["serve", "--port", "0", "--log-format", "json", "--data-dir"])
        .arg(dir.path())
        .env("RUST_LOG", "info,signalbox::connection=debug")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn signalbox");
    let stderr = child.stderr.take().unwrap();
    let (addr_tx, addr_rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut lines = Vec::new();
        for line in BufReader::new(stderr).lines() {
            let line = line.unwrap();
            if let Ok(entry) = serde_json::from_str::<Value>(&line)
                && let Some(addr) = entry["fields"]["addr"].as_str()
            {
                let _ = addr_tx.send(addr.parse::<SocketAddr>().unwrap());
            }
            lines.push(line);
        }
        lines
    });
    let addr = addr_rx.recv().expect("the server logs its address");

    for i in 0..5 {
        abandon_sse_stream(addr, &format!("room{i}")).await;
        drop_websocket(addr).await;
    }
    // Headers cut short; a body cut short; not HTTP at all.
    send_and_hang_up(addr, b"GET /api/health HTTP/1.1\r\nHost: x\r\n").await;
    send_and_hang_up(
        addr,
        b"POST /api/auth/guest HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"disp",
    )
    .await;
    let mut garbage = TcpStream::connect(addr).await.unwrap();
    garbage
        .write_all(b"\x16\x03\x01 not http\r\n\r\n")
        .await
        .unwrap();
    let answer = read_until(&mut garbage, b"\r\n\r\n").await;
    assert!(answer.starts_with(b"HTTP/1.1 400"), "{answer:?}");
    drop(garbage);
    // The server is still well after all that.
    let client = common::Client { addr };
    assert_eq!(client.get("/api/health", None).await.status, 200);
    // A refused request: logged at INFO with its code.
    assert_eq!(client.get("/api/servers/nope", None).await.status, 404);

    // A graceful stop ends every stream, so every connection's failure has been logged once the
    // process exits; then the whole log is read.
    let stopped = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    assert!(child.wait().unwrap().success());
    let lines = reader.join().unwrap();

    let entries: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not a JSON log line: {l}")))
        .collect();
    let errors: Vec<&Value> = entries.iter().filter(|e| e["level"] == "ERROR").collect();
    assert!(errors.is_empty(), "ERROR lines: {errors:#?}");
    let gone = entries
        .iter()
        .filter(|e| {
            e["target"] == "signalbox::connection" && e["fields"]["message"] == "client went away"
        })
        .count();
    assert!(gone >= 1, "no re-levelled connection error in {lines:#?}");
    let refused = entries
        .iter()
        .filter(|e| e["fields"]["message"] == "malformed request refused")
        .count();
    assert!(
        refused >= 1,
        "the non-HTTP request was not logged as refused: {lines:#?}"
    );
    let not_found = entries
        .iter()
        .find(|e| e["fields"]["message"] == "request refused" && e["fields"]["status"] == 404)
        .unwrap_or_else(|| panic!("the 404 was not logged: {lines:#?}"));
    assert_eq!(not_found["level"], "INFO");
    assert_eq!(not_found["fields"]["code"], "NotFound");
}
