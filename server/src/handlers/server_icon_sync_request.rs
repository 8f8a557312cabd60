//! `server_icon_sync_request`: answered with `server_icon_sync_peers`, the online peers holding
//! a newer icon than the one the client has, newest first.

use signalbox_protocol::ws::ServerIconSyncRequest;
use signalbox_protocol::{ServerEnvelope, TimestampMs};

use super::{Handled, Next, Session, validate};

/// Handles `server_icon_sync_request`; without `iconUpdatedAt` (Toju's catalogue shape) the
/// asker holds no icon, so every peer's is newer.
pub fn handle(session: &Session, request: ServerIconSyncRequest) -> Handled {
    validate::id("serverId", request.server_id.as_str())?;
    let held = request.icon_updated_at.unwrap_or(TimestampMs(0));
    let peers = session
        .hub()
        .icon_peers(session.key(), &request.server_id, held)?;
    session.send(&ServerEnvelope::ServerIconSyncPeers(peers));
    Ok(Next::Continue)
}
