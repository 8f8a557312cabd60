//! `keepalive`: answered with the server's clock. Liveness itself is refreshed by the transport
//! on any frame, so this handler only replies.

use signalbox_protocol::ws::{Keepalive, KeepaliveAck};
use signalbox_protocol::{ServerEnvelope, TimestampMs};

use super::{Handled, Next, Session};

/// Handles `keepalive`.
pub fn handle(session: &Session, _keepalive: Keepalive) -> Handled {
    session.send(&ServerEnvelope::Keepalive(KeepaliveAck {
        server_time: TimestampMs::now(),
    }));
    Ok(Next::Continue)
}
