//! `server_icon_available`: this connection's user holds a server's icon at a version; peers
//! asking for a newer icon will be pointed at it.

use signalbox_protocol::ws::ServerIconAvailable;

use super::{Handled, Next, Session, validate};

/// Handles `server_icon_available`.
pub fn handle(session: &Session, available: ServerIconAvailable) -> Handled {
    validate::id("serverId", available.server_id.as_str())?;
    session.hub().icon_available(
        session.key(),
        &available.server_id,
        available.icon_updated_at,
    )?;
    Ok(Next::Continue)
}
