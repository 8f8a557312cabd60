//! `bench-relay`: the practical limit for `scripts/bench --peers`, a bare tokio-tungstenite
//! signal relay with no protocol beyond addressing. A client connects to `/NAME` and is greeted
//! `hello NAME`; a text frame `DST\nBODY` is delivered to `DST` as `SRC\nBODY`. One reader task
//! and one writer task per connection (the writer flushes once per batch of queued frames);
//! unbounded queues; no limits, no auth, no validation: it must never listen beyond loopback and
//! is not a server to deploy.
//!
//! Usage: `bench-relay 127.0.0.1:PORT` (port 0: any free port; the bound address is printed
//! on stderr as `bench-relay listening on IP:PORT`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};

/// Connected clients by name.
type Clients = Arc<Mutex<HashMap<String, mpsc::UnboundedSender<Message>>>>;

#[tokio::main]
async fn main() -> Result<(), String> {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18090".into())
        .parse()
        .map_err(|e| format!("usage: bench-relay 127.0.0.1:PORT ({e})"))?;
    if !addr.ip().is_loopback() {
        return Err(format!("bench-relay listens on loopback only, not {addr}"));
    }
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| format!("bind {addr}: {e}"))?;
    // The bound address (port 0 picks one): the line a caller waits for.
    let bound = listener.local_addr().map_err(|e| e.to_string())?;
    eprintln!("bench-relay listening on {bound}");
    let clients: Clients = Arc::default();
    loop {
        let (tcp, _) = listener.accept().await.map_err(|e| e.to_string())?;
        tokio::spawn(serve(tcp, clients.clone()));
    }
}

fn lock(
    clients: &Clients,
) -> std::sync::MutexGuard<'_, HashMap<String, mpsc::UnboundedSender<Message>>> {
    clients.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One connection: registers under its path's name, relays its frames, unregisters.
// The handshake callback's error type is tungstenite's `ErrorResponse` (an HTTP response);
// its size is tungstenite's choice, and this callback never returns it.
#[allow(clippy::result_large_err)]
async fn serve(tcp: TcpStream, clients: Clients) {
    let _ = tcp.set_nodelay(true);
    let mut name = String::new();
    let ws = tokio_tungstenite::accept_hdr_async(tcp, |request: &Request, response: Response| {
        name = request.uri().path().trim_start_matches('/').to_owned();
        Ok(response)
    })
    .await;
    let Ok(ws) = ws else { return };
    if name.is_empty() {
        return;
    }
    let (mut sink, mut stream) = ws.split();
    let (queue, mut queued) = mpsc::unbounded_channel();
    let _ = queue.send(Message::text(format!("hello {name}")));
    lock(&clients).insert(name.clone(), queue.clone());
    let writer = tokio::spawn(async move {
        while let Some(message) = queued.recv().await {
            if sink.feed(message).await.is_err() {
                return;
            }
            while let Ok(message) = queued.try_recv() {
                if sink.feed(message).await.is_err() {
                    return;
                }
            }
            if sink.flush().await.is_err() {
                return;
            }
        }
    });
    while let Some(Ok(message)) = stream.next().await {
        let Message::Text(text) = message else {
            continue;
        };
        let Some((to, body)) = text.as_str().split_once('\n') else {
            continue;
        };
        let delivery = Message::text(format!("{name}\n{body}"));
        if let Some(recipient) = lock(&clients).get(to) {
            let _ = recipient.send(delivery);
        }
    }
    {
        let mut clients = lock(&clients);
        if clients.get(&name).is_some_and(|q| q.same_channel(&queue)) {
            clients.remove(&name);
        }
    }
    drop(queue);
    writer.abort();
}
