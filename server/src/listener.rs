//! The TCP listener every transport (HTTP, WebSocket, SSE; plain or TLS) is accepted from.
//!
//! Owns: binding the server's address with the socket options its connections need. Never
//! serves anything or reads a byte (that is [`crate::app`]'s wiring and the transports').
//!
//! Why its own module: warp's `serve(...).incoming(listener)` accepts connections itself and
//! never sets `TCP_NODELAY`, so every frame the server wrote went through Nagle's algorithm: a
//! small write waited for the peer's (delayed) acknowledgement of the previous one. On loopback
//! that stalled deliveries by up to 40 ms about once a second at 50,000 signals/s
//! (BENCHMARKS.md). Accepted sockets inherit `TCP_NODELAY` from their listener on Linux, so the
//! option is set here, once, for every way in; the TLS accept loop also sets it on each
//! accepted socket ([`set_nodelay`]) for platforms that do not inherit it.

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpSocket, TcpStream};

/// Connections the kernel queues before `accept` (tokio's own `TcpListener::bind` value).
const BACKLOG: u32 = 1024;

/// Binds `addr` with `SO_REUSEADDR` (as `TcpListener::bind` does on Unix, so a restart does
/// not wait out `TIME_WAIT`) and `TCP_NODELAY` for the connections it accepts.
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.set_nodelay(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// Turns Nagle's algorithm off on an accepted socket. A failure only costs latency, so it is
/// logged and the connection is served anyway.
pub fn set_nodelay(stream: &TcpStream) {
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(error = %e, "could not set TCP_NODELAY on an accepted socket");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn accepted_sockets_have_nagle_off() {
        let listener = bind("127.0.0.1:0".parse().expect("address")).expect("bind");
        let addr = listener.local_addr().expect("local address");
        let client = TcpStream::connect(addr).await.expect("connect");
        let (accepted, _) = listener.accept().await.expect("accept");
        assert!(
            accepted.nodelay().expect("read TCP_NODELAY"),
            "an accepted socket must not delay small writes (Nagle's algorithm)"
        );
        drop(client);
    }
}
