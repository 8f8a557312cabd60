//! `server_icon_sync_request`: answered with `server_icon_sync_peers`, the online peers holding
//! a newer icon than the one the client has, newest first.

use signalbox_protocol::ServerEnvelope;
use signalbox_protocol::ws::ServerIconSyncRequest;

use super::{Handled, Next, Session, validate};

/// Handles `server_icon_sync_request`.
pub fn handle(session: &Session, request: ServerIconSyncRequest) -> Handled {
    validate::id("serverId", request.server_id.as_str())?;
    let peers =
        session
            .hub()
            .icon_peers(session.key(), &request.server_id, request.icon_updated_at)?;
    session.send(&ServerEnvelope::ServerIconSyncPeers(peers));
    Ok(Next::Continue)
}
