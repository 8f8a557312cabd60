//! The client's socket address, whichever accept loop took the connection.
//!
//! warp's own server records it where only [`warp::addr::remote`] can read it; the TLS loop
//! ([`crate::tls::serve`]) records it as a [`PeerAddr`] request extension. [`remote`] reads
//! either, so routes never care which loop served them. Owns nothing else.

use std::net::SocketAddr;

use warp::Filter;

/// The client address of a connection accepted by the TLS loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr(pub SocketAddr);

/// The client's address, when the transport has one.
pub fn remote()
-> impl Filter<Extract = (Option<SocketAddr>,), Error = std::convert::Infallible> + Copy {
    warp::addr::remote()
        .and(warp::ext::optional::<PeerAddr>())
        .map(|plain: Option<SocketAddr>, tls: Option<PeerAddr>| plain.or(tls.map(|p| p.0)))
}
