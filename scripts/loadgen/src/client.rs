//! One WebSocket client speaking signalbox's protocol, bound to a chosen loopback source address.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use signalbox_protocol::ws::{Identify, JoinServer, Keepalive};
use signalbox_protocol::{ClientEnvelope, ServerEnvelope, ServerId, UserId};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{WebSocketStream, client_async_with_config};

/// The sending half.
pub type Sink = SplitSink<WebSocketStream<TcpStream>, Message>;
/// The receiving half.
pub type Stream = SplitStream<WebSocketStream<TcpStream>>;

/// A connected, identified client.
pub struct Client {
    /// Where envelopes go.
    pub sink: Sink,
    /// Where envelopes come from.
    pub stream: Stream,
}

/// Bytes tungstenite reads per system call on a generator socket. Its default (128 KiB) is
/// zeroed before every read: with thousands of small frames per second on one generator
/// thread that `memset` alone was 12% of the generator's samples (the closed loop was
/// generator-bound). Frames larger than this still arrive whole: the buffer grows for them.
pub const READ_BUFFER_BYTES: usize = 8 * 1024;

/// Opens a WebSocket from `127.0.0.{source}` to `url` (an `ws://IP:port/...` URL), with
/// Nagle's algorithm off and a small read buffer ([`READ_BUFFER_BYTES`]). Speaks no protocol:
/// the callers do.
pub async fn open_socket(url: &str, source: u8) -> Result<WebSocketStream<TcpStream>, String> {
    let uri: tokio_tungstenite::tungstenite::http::Uri =
        url.parse().map_err(|e| format!("bad url {url}: {e}"))?;
    let host = uri.host().ok_or("url has no host")?;
    let port = uri.port_u16().unwrap_or(80);
    let target: SocketAddr = format!("{host}:{port}")
        .parse()
        .map_err(|e| format!("url host must be an IP address: {e}"))?;
    let socket = TcpSocket::new_v4().map_err(|e| e.to_string())?;
    let source_ip = IpAddr::V4(Ipv4Addr::new(127, 0, 0, source.max(1)));
    socket
        .bind(SocketAddr::new(source_ip, 0))
        .map_err(|e| format!("bind {source_ip}: {e}"))?;
    let tcp = socket
        .connect(target)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    tcp.set_nodelay(true).map_err(|e| e.to_string())?;
    let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER_BYTES);
    let (ws, _) = client_async_with_config(url, tcp, Some(config))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    Ok(ws)
}

/// Opens a connection from `127.0.0.{source}` to `url` and identifies as `user`.
pub async fn connect(url: &str, source: u8, user: &str) -> Result<Client, String> {
    let (sink, stream) = open_socket(url, source).await?.split();
    let mut client = Client { sink, stream };
    client.expect("connected").await?;
    client
        .send(&ClientEnvelope::Identify(Identify {
            oder_id: Some(UserId::from(user)),
            display_name: user.to_owned(),
            connection_scope: None,
            description: None,
            profile_updated_at: None,
            token: None,
        }))
        .await?;
    // The server answers nothing to `identify`; a keepalive round trip proves it was handled.
    client
        .send(&ClientEnvelope::Keepalive(Keepalive {}))
        .await?;
    client.expect("keepalive").await?;
    Ok(client)
}

impl Client {
    /// Sends one envelope.
    pub async fn send(&mut self, envelope: &ClientEnvelope) -> Result<(), String> {
        send_on(&mut self.sink, envelope).await
    }

    /// The next envelope from the server (control frames are skipped).
    pub async fn next(&mut self) -> Result<ServerEnvelope, String> {
        next_envelope(&mut self.stream).await
    }

    /// Reads until an envelope of `wire_type` arrives, skipping others.
    pub async fn expect(&mut self, wire_type: &str) -> Result<ServerEnvelope, String> {
        loop {
            let envelope = self.next().await?;
            if envelope.wire_type() == wire_type {
                return Ok(envelope);
            }
            if let ServerEnvelope::Error(error) = &envelope {
                return Err(format!(
                    "server error while waiting for {wire_type}: {error:?}"
                ));
            }
        }
    }

    /// Joins `server_id` and waits for its roster.
    pub async fn join(&mut self, server_id: &str) -> Result<(), String> {
        self.send(&ClientEnvelope::JoinServer(JoinServer {
            server_id: ServerId::from(server_id),
            password: None,
            invite_code: None,
        }))
        .await?;
        match self.expect_any(&["server_users", "access_denied"]).await? {
            ServerEnvelope::AccessDenied(denied) => Err(format!("join refused: {denied:?}")),
            _ => Ok(()),
        }
    }

    async fn expect_any(&mut self, wire_types: &[&str]) -> Result<ServerEnvelope, String> {
        loop {
            let envelope = self.next().await?;
            if wire_types.contains(&envelope.wire_type()) {
                return Ok(envelope);
            }
        }
    }
}

/// Sends one envelope on `sink`.
pub async fn send_on(sink: &mut Sink, envelope: &ClientEnvelope) -> Result<(), String> {
    let text = serde_json::to_string(envelope).map_err(|e| e.to_string())?;
    sink.send(Message::text(text))
        .await
        .map_err(|e| format!("send: {e}"))
}

/// The next envelope on `stream`.
pub async fn next_envelope(stream: &mut Stream) -> Result<ServerEnvelope, String> {
    loop {
        match stream.next().await {
            Some(Ok(Message::Text(text))) => {
                return serde_json::from_str(&text).map_err(|e| format!("bad envelope: {e}"));
            }
            Some(Ok(Message::Close(frame))) => return Err(format!("closed by server: {frame:?}")),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(format!("receive: {e}")),
            None => return Err("connection ended".into()),
        }
    }
}
