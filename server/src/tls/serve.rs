//! The TLS accept loop: TCP accept, rustls handshake (bounded by `tls.handshakeTimeoutMs`), then
//! the warp filter over HTTP/1.1 with upgrades (WebSocket), one task per connection.
//!
//! Mirrors warp's own graceful loop (used for plain HTTP): when `stop` resolves it stops
//! accepting and waits for in-flight connections to finish. Never reads or writes application
//! data itself.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::service::Service as _;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use warp::Filter;

use crate::peer::PeerAddr;

/// Serves `filter` over TLS on `listener` until `stop` resolves, then drains.
pub async fn serve<F>(
    listener: TcpListener,
    filter: F,
    config: ServerConfig,
    handshake_timeout: Duration,
    stop: impl Future<Output = ()>,
) where
    F: Filter<Extract = (warp::reply::Response,), Error = std::convert::Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
{
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let graceful = GracefulShutdown::new();
    let mut stop = std::pin::pin!(stop);
    loop {
        let (tcp, addr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    accept_error(e).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        crate::listener::set_nodelay(&tcp);
        let acceptor = acceptor.clone();
        let service = TowerToHyperService::new(warp::service(filter.clone()));
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(handshake_timeout, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    tracing::debug!(peer = %addr, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(peer = %addr, "TLS handshake timed out");
                    return;
                }
            };
            let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
                req.extensions_mut().insert(PeerAddr(addr));
                service.call(req)
            });
            let builder = auto::Builder::new(TokioExecutor::new()).http1_only();
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(tls), service);
            if let Err(e) = watcher.watch(conn).await {
                // The one mapping of transport errors to log levels (a client going away is
                // DEBUG, a server fault ERROR).
                crate::telemetry::levels::log_connection_error(&*e);
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// Like warp's loop: per-connection errors are ignored; anything else (out of file descriptors)
/// is logged and accepting pauses for a second.
async fn accept_error(e: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "accept error");
    tokio::time::sleep(Duration::from_secs(1)).await;
}
