//! `status_update`: sets the user's status; every connection sharing a joined server with the
//! user hears it once, the sender's own other devices included (they show the status too).

use signalbox_protocol::ws::StatusUpdate;

use super::{Handled, Next, Session};
use crate::hub::Exclude;

/// Handles `status_update`.
pub fn handle(session: &Session, update: StatusUpdate) -> Handled {
    session
        .hub()
        .set_status(session.key(), update.status, Exclude::SenderConnection)?;
    Ok(Next::Continue)
}
