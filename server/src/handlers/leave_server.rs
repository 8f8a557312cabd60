//! `leave_server`: leaves a joined or viewed server; `user_left` goes out when this was the
//! user's last connection there. Membership in the directory is kept (leaving the live room is
//! not leaving the server).

use signalbox_protocol::ws::LeaveServer;

use super::{Handled, Next, Session, validate};

/// Handles `leave_server`.
pub fn handle(session: &Session, leave: LeaveServer) -> Handled {
    validate::id("serverId", leave.server_id.as_str())?;
    session
        .hub()
        .leave_server(session.key(), &leave.server_id)?;
    Ok(Next::Continue)
}
