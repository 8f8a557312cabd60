//! A WebSocket test client (tokio-tungstenite) speaking JSON envelopes, with timeouts on every
//! wait so a missing frame fails the test instead of hanging it.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode as WsCloseCode;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long a test waits for a frame it expects.
pub const WAIT: Duration = Duration::from_secs(5);

pub struct WsClient {
    pub stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// The `connected` envelope the server sent first.
    pub connected: Value,
}

/// What ended a connection, as the client saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closed {
    pub code: u16,
    pub reason: String,
}

impl WsClient {
    /// Connects to `path_and_query` (e.g. `/ws?token=...`) and reads `connected`.
    pub async fn connect(addr: SocketAddr, path_and_query: &str) -> Self {
        let mut client = Self::connect_raw(addr, path_and_query).await;
        let connected = client.recv().await;
        assert_eq!(connected["type"], "connected", "{connected}");
        client.connected = connected;
        client
    }

    /// Connects without reading anything.
    pub async fn connect_raw(addr: SocketAddr, path_and_query: &str) -> Self {
        let url = format!("ws://{addr}{path_and_query}");
        let (stream, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
            .await
            .expect("connect timed out")
            .expect("connect");
        Self {
            stream,
            connected: Value::Null,
        }
    }

    /// Connects and identifies as `oder_id` with `name`.
    pub async fn identified(addr: SocketAddr, oder_id: &str, name: &str) -> Self {
        let mut client = Self::connect(addr, "/ws").await;
        client
            .send(json!({"type": "identify", "oderId": oder_id, "displayName": name}))
            .await;
        client
    }

    pub async fn send(&mut self, envelope: Value) {
        self.send_text(envelope.to_string()).await;
    }

    pub async fn send_text(&mut self, text: String) {
        self.stream.send(Message::text(text)).await.expect("send");
    }

    /// The next JSON envelope (pings and pongs skipped); panics on close or timeout.
    pub async fn recv(&mut self) -> Value {
        loop {
            let next = tokio::time::timeout(WAIT, self.stream.next())
                .await
                .expect("timed out waiting for a frame");
            match next {
                Some(Ok(Message::Text(text))) => {
                    return serde_json::from_str(text.as_str()).expect("server sent JSON");
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                other => panic!("expected a text frame, got {other:?}"),
            }
        }
    }

    /// The next envelope, which must be of `wire_type`.
    pub async fn expect(&mut self, wire_type: &str) -> Value {
        let envelope = self.recv().await;
        assert_eq!(envelope["type"], wire_type, "{envelope}");
        envelope
    }

    /// The next envelope, which must be an `error` with `code`.
    pub async fn expect_error(&mut self, code: &str) -> Value {
        let envelope = self.expect("error").await;
        assert_eq!(envelope["code"], code, "{envelope}");
        envelope
    }

    /// Skips envelopes until one of `wire_type` arrives.
    pub async fn until(&mut self, wire_type: &str) -> Value {
        loop {
            let envelope = self.recv().await;
            if envelope["type"] == wire_type {
                return envelope;
            }
        }
    }

    /// Asserts nothing but pings arrives within `window`.
    pub async fn expect_silence(&mut self, window: Duration) {
        let deadline = tokio::time::Instant::now() + window;
        loop {
            match tokio::time::timeout_at(deadline, self.stream.next()).await {
                Err(_) => return,
                Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => {}
                Ok(other) => panic!("expected silence, got {other:?}"),
            }
        }
    }

    /// Reads (skipping envelopes) until the server's close frame; returns its code.
    pub async fn expect_close(&mut self) -> Closed {
        self.expect_close_within(WAIT).await
    }

    pub async fn expect_close_within(&mut self, wait: Duration) -> Closed {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let next = tokio::time::timeout_at(deadline, self.stream.next())
                .await
                .expect("timed out waiting for close");
            match next {
                Some(Ok(Message::Close(Some(frame)))) => {
                    return Closed {
                        code: u16::from(frame.code),
                        reason: frame.reason.to_string(),
                    };
                }
                Some(Ok(Message::Close(None))) => {
                    return Closed {
                        code: u16::from(WsCloseCode::Status),
                        reason: String::new(),
                    };
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => panic!("socket error before a close frame: {e}"),
                None => panic!("stream ended without a close frame"),
            }
        }
    }

    /// Joins `server` and returns its `server_users` (after which `plugin_requirements` is read).
    pub async fn join(&mut self, server: &str) -> Value {
        self.send(json!({"type": "join_server", "serverId": server}))
            .await;
        let users = self.expect("server_users").await;
        let requirements = self.expect("plugin_requirements").await;
        assert_eq!(requirements["serverId"], server);
        users
    }

    pub async fn close(mut self) {
        let _ = self.stream.close(None).await;
    }
}

/// Connects to `server` with `?token=` and identifies (no `oderId`: the token's identity is
/// used); `identify` has no reply, so a keepalive round trip proves it was processed.
pub async fn connect_as(server: &super::TestServer, token: &str, name: &str) -> WsClient {
    let mut ws = WsClient::connect(server.addr, &format!("/ws?token={token}")).await;
    ws.send(json!({"type": "identify", "displayName": name}))
        .await;
    ws.send(json!({"type": "keepalive"})).await;
    ws.expect("keepalive").await;
    ws
}
