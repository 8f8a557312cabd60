//! Built-in TLS against real clients: a self-signed pair made here (rcgen), a rustls client for
//! HTTPS, WSS (tokio-tungstenite over the TLS stream) and SSE, and reloads (explicit, by file
//! change, by SIGHUP) under live connections: open connections keep working, new handshakes see
//! the new certificate. Also: a pair that cannot be used stops the start, naming the key, and
//! the client's address reaches the routes (loopback-only `/admin/stats` answers over HTTPS).

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use signalbox::app::{self, RunningServer};
use signalbox::cli::Overrides;
use signalbox::config::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use tokio_tungstenite::tungstenite::Message;

const WAIT: Duration = Duration::from_secs(10);

/// A self-signed certificate for `localhost` and 127.0.0.1, as DER and PEM.
struct Pair {
    der: CertificateDer<'static>,
    cert_pem: String,
    key_pem: String,
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn self_signed() -> Pair {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
        .expect("rcgen");
    let der = made.cert.der().clone();
    Pair {
        cert_pem: pem("CERTIFICATE", &der),
        key_pem: pem("PRIVATE KEY", &made.signing_key.serialize_der()),
        der,
    }
}

fn write_pair(dir: &Path, pair: &Pair) -> (PathBuf, PathBuf) {
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    std::fs::write(&cert, &pair.cert_pem).expect("write cert");
    std::fs::write(&key, &pair.key_pem).expect("write key");
    (cert, key)
}

async fn start_tls(dir: &Path, extra: Value) -> Result<RunningServer, signalbox::RunError> {
    let mut tls = json!({
        "certFile": dir.join("cert.pem"),
        "keyFile": dir.join("key.pem"),
        "reloadPollMs": 50,
    });
    if let (Some(tls), Some(extra)) = (tls.as_object_mut(), extra.as_object()) {
        tls.extend(extra.clone());
    }
    let variables = json!({ "stunUrls": [], "tls": tls });
    std::fs::write(dir.join("variables.json"), variables.to_string()).expect("variables");
    let overrides = Overrides {
        data_dir: dir.to_owned(),
        port: Some(0),
        ..Overrides::default()
    };
    app::start(Config::load(&overrides)?).await
}

/// A TLS client trusting every certificate in `roots`.
fn connector(roots: &[&CertificateDer<'static>]) -> TlsConnector {
    let mut store = RootCertStore::empty();
    for root in roots {
        store.add((*root).clone()).expect("root");
    }
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(store)
        .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

/// A TLS connection to the server and the leaf certificate it presented.
async fn handshake(
    server: &RunningServer,
    roots: &[&CertificateDer<'static>],
) -> (TlsStream<TcpStream>, CertificateDer<'static>) {
    let tcp = TcpStream::connect(server.addr).await.expect("tcp");
    let name = ServerName::try_from("localhost").expect("name");
    let tls = tokio::time::timeout(WAIT, connector(roots).connect(name, tcp))
        .await
        .expect("handshake in time")
        .expect("handshake");
    let leaf = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .expect("a certificate")
        .clone()
        .into_owned();
    (tls, leaf)
}

/// One HTTPS request; returns status and body.
async fn https(
    server: &RunningServer,
    roots: &[&CertificateDer<'static>],
    request: &str,
) -> (u16, String) {
    let (mut tls, _) = handshake(server, roots).await;
    tls.write_all(request.as_bytes()).await.expect("write");
    let mut buf = Vec::new();
    tokio::time::timeout(WAIT, tls.read_to_end(&mut buf))
        .await
        .expect("response in time")
        .expect("read");
    let text = String::from_utf8_lossy(&buf).to_string();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {text}"));
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

type Wss = tokio_tungstenite::WebSocketStream<TlsStream<TcpStream>>;

async fn wss(server: &RunningServer, roots: &[&CertificateDer<'static>]) -> (Wss, Value) {
    let (tls, _) = handshake(server, roots).await;
    let (mut ws, _) = tokio_tungstenite::client_async("wss://localhost/ws", tls)
        .await
        .expect("websocket upgrade over TLS");
    let connected = next_json(&mut ws).await;
    (ws, connected)
}

async fn next_json(ws: &mut Wss) -> Value {
    loop {
        let frame = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("frame in time")
            .expect("open")
            .expect("frame");
        if let Message::Text(text) = frame {
            return serde_json::from_str(&text).expect("JSON");
        }
    }
}

async fn keepalive_round_trip(ws: &mut Wss) {
    ws.send(Message::text(json!({"type": "keepalive"}).to_string()))
        .await
        .expect("send");
    loop {
        let reply = next_json(ws).await;
        if reply["type"] == "keepalive" {
            return;
        }
    }
}

/// An SSE stream over TLS: `GET /api/connect?room=...`, read until `needle` arrives.
struct SseOverTls {
    tls: TlsStream<TcpStream>,
    seen: String,
}

impl SseOverTls {
    async fn open(server: &RunningServer, roots: &[&CertificateDer<'static>], room: &str) -> Self {
        let (mut tls, _) = handshake(server, roots).await;
        let head = format!(
            "GET /api/connect?room={room} HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n\r\n"
        );
        tls.write_all(head.as_bytes()).await.expect("write");
        let mut this = Self {
            tls,
            seen: String::new(),
        };
        this.until("\r\n\r\n").await;
        this.until("event: joined").await;
        this
    }

    /// Reads until the text read so far (since the last call) contains `needle`.
    async fn until(&mut self, needle: &str) {
        while !self.seen.contains(needle) {
            let mut buf = [0u8; 4096];
            let n = tokio::time::timeout(WAIT, self.tls.read(&mut buf))
                .await
                .unwrap_or_else(|_| panic!("`{needle}` in time; got {}", self.seen))
                .expect("read");
            assert!(n > 0, "stream ended before `{needle}`: {}", self.seen);
            self.seen.push_str(&String::from_utf8_lossy(&buf[..n]));
            assert!(
                !self.seen.starts_with("HTTP/") || self.seen.starts_with("HTTP/1.1 200"),
                "{}",
                self.seen
            );
        }
        let at = self.seen.find(needle).unwrap_or(0) + needle.len();
        self.seen = self.seen.split_off(at);
    }
}

/// Waits until the server has reloaded `n` times (reloads by file change are asynchronous).
async fn reloaded(server: &RunningServer, n: u64) {
    let tls = server.tls.as_ref().expect("serving TLS");
    tokio::time::timeout(WAIT, async {
        while tls.reloads() < n {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the reload happened");
}

#[tokio::test]
async fn https_wss_and_sse_share_the_tls_port() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = self_signed();
    write_pair(dir.path(), &first);
    let server = start_tls(dir.path(), json!({})).await.expect("start");
    let roots = [&first.der];

    let (status, body) = https(
        &server,
        &roots,
        "GET /api/health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"status\":\"ok\""), "{body}");

    // The client address reaches the routes through the TLS loop: /admin answers loopback.
    let (status, body) = https(
        &server,
        &roots,
        "GET /admin/stats HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, 200, "{body}");

    let (mut ws, connected) = wss(&server, &roots).await;
    assert_eq!(connected["type"], "connected", "{connected}");
    keepalive_round_trip(&mut ws).await;

    let mut agent = SseOverTls::open(&server, &roots, "tls-room").await;
    agent.until("event: roster").await;

    // A plain-HTTP request on the TLS port gets no HTTP answer.
    let mut plain = TcpStream::connect(server.addr).await.expect("tcp");
    plain
        .write_all(b"GET /api/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(WAIT, plain.read_to_end(&mut buf)).await;
    assert!(
        !buf.starts_with(b"HTTP/1.1 200"),
        "plain HTTP served on the TLS port"
    );
    drop((ws, agent));
    server.shutdown().await;
}

#[tokio::test]
async fn a_reload_keeps_open_connections_and_new_handshakes_get_the_new_certificate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (first, second) = (self_signed(), self_signed());
    write_pair(dir.path(), &first);
    let server = start_tls(dir.path(), json!({ "reloadPollMs": 3_600_000 }))
        .await
        .expect("start");
    let roots = [&first.der, &second.der];
    let (mut ws, _) = wss(&server, &roots).await;
    let mut agent = SseOverTls::open(&server, &roots, "reload-room").await;
    agent.until("event: roster").await;
    let (_, leaf) = handshake(&server, &roots).await;
    assert_eq!(leaf, first.der);

    write_pair(dir.path(), &second);
    server.tls.as_ref().expect("tls").reload().expect("reload");

    let (_, leaf) = handshake(&server, &roots).await;
    assert_eq!(leaf, second.der, "a new handshake sees the new certificate");
    // The connections made before the reload still carry traffic both ways.
    keepalive_round_trip(&mut ws).await;
    let _second_agent = SseOverTls::open(&server, &roots, "reload-room").await;
    agent.until("event: roster").await;
    drop((ws, agent));
    server.shutdown().await;
}

#[tokio::test]
async fn changed_files_are_picked_up_without_a_signal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (first, second) = (self_signed(), self_signed());
    write_pair(dir.path(), &first);
    let server = start_tls(dir.path(), json!({})).await.expect("start");
    let roots = [&first.der, &second.der];
    let (mut ws, _) = wss(&server, &roots).await;

    write_pair(dir.path(), &second);
    reloaded(&server, 1).await;
    // Wait for the reload that saw both new files (the poll may have caught the cert alone).
    let mut leaf = handshake(&server, &roots).await.1;
    let deadline = tokio::time::Instant::now() + WAIT;
    while leaf != second.der && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
        leaf = handshake(&server, &roots).await.1;
    }
    assert_eq!(leaf, second.der);
    keepalive_round_trip(&mut ws).await;
    drop(ws);
    server.shutdown().await;
}

#[cfg(unix)]
#[tokio::test]
async fn sighup_reloads_the_pair() {
    // Keeps SIGHUP handled for the whole test process before it is sent.
    let _hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .expect("SIGHUP handler");
    let dir = tempfile::tempdir().expect("tempdir");
    let (first, second) = (self_signed(), self_signed());
    write_pair(dir.path(), &first);
    let server = start_tls(dir.path(), json!({ "reloadPollMs": 3_600_000 }))
        .await
        .expect("start");
    let roots = [&first.der, &second.der];
    let (mut ws, _) = wss(&server, &roots).await;
    write_pair(dir.path(), &second);
    let status = std::process::Command::new("kill")
        .args(["-HUP", &std::process::id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    reloaded(&server, 1).await;
    assert_eq!(handshake(&server, &roots).await.1, second.der);
    keepalive_round_trip(&mut ws).await;
    drop(ws);
    server.shutdown().await;
}

#[tokio::test]
async fn an_unusable_pair_stops_the_start_naming_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let err = start_tls(dir.path(), json!({}))
        .await
        .expect_err("no files");
    assert!(err.to_string().contains("key `tls.certFile`"), "{err}");

    let (a, b) = (self_signed(), self_signed());
    std::fs::write(dir.path().join("cert.pem"), &a.cert_pem).expect("cert");
    let err = start_tls(dir.path(), json!({})).await.expect_err("no key");
    assert!(err.to_string().contains("key `tls.keyFile`"), "{err}");

    std::fs::write(dir.path().join("key.pem"), &b.key_pem).expect("key");
    let err = start_tls(dir.path(), json!({}))
        .await
        .expect_err("mismatch");
    let text = err.to_string();
    assert!(text.contains("key `tls.keyFile`"), "{text}");
    assert!(text.contains("is not the private key"), "{text}");
    assert!(!text.contains("PRIVATE KEY"), "no key material in messages");

    std::fs::write(dir.path().join("cert.pem"), "not a certificate").expect("cert");
    let err = start_tls(dir.path(), json!({})).await.expect_err("garbage");
    assert!(err.to_string().contains("key `tls.certFile`"), "{err}");
}

#[tokio::test]
async fn a_failed_reload_keeps_the_pair_in_force() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (first, other) = (self_signed(), self_signed());
    write_pair(dir.path(), &first);
    let server = start_tls(dir.path(), json!({ "reloadPollMs": 3_600_000 }))
        .await
        .expect("start");
    std::fs::write(dir.path().join("key.pem"), &other.key_pem).expect("key");
    let err = server
        .tls
        .as_ref()
        .expect("tls")
        .reload()
        .expect_err("mismatch");
    assert!(err.to_string().contains("tls.keyFile"), "{err}");
    let roots = [&first.der];
    assert_eq!(handshake(&server, &roots).await.1, first.der);
    server.shutdown().await;
}
