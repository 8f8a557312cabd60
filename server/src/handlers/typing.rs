//! `typing`: broadcast to the server with `oderId` and `displayName` set by the server. Every
//! connection of the typing user is left out: its own devices need no typing indicator.

use signalbox_protocol::ServerEnvelope;
use signalbox_protocol::ws::{Typing, TypingBroadcast};

use super::{Handled, Next, Session, implied_server, validate};
use crate::hub::Exclude;

/// Handles `typing` (without `serverId` too: see [`implied_server`]).
pub fn handle(session: &Session, typing: Typing) -> Handled {
    let server = implied_server::resolve(session, typing.server_id)?;
    validate::id("channelId", typing.channel_id.as_str())?;
    session
        .hub()
        .broadcast(session.key(), &server, Exclude::SenderUser, |sender| {
            ServerEnvelope::Typing(TypingBroadcast {
                server_id: server.clone(),
                channel_id: typing.channel_id,
                is_typing: typing.is_typing,
                oder_id: sender.user_id.clone(),
                display_name: sender.display_name.to_owned(),
            })
        })?;
    Ok(Next::Continue)
}
