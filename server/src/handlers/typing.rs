//! `typing`: broadcast to the server with `oderId` and `displayName` set by the server. Every
//! connection of the typing user is left out: its own devices need no typing indicator.

use signalbox_protocol::ServerEnvelope;
use signalbox_protocol::ws::{Typing, TypingBroadcast};

use super::{Handled, Next, Session, validate};
use crate::hub::Exclude;

/// Handles `typing`.
pub fn handle(session: &Session, typing: Typing) -> Handled {
    validate::id("serverId", typing.server_id.as_str())?;
    validate::id("channelId", typing.channel_id.as_str())?;
    let server = typing.server_id.clone();
    session
        .hub()
        .broadcast(session.key(), &server, Exclude::SenderUser, |sender| {
            ServerEnvelope::Typing(TypingBroadcast {
                server_id: typing.server_id,
                channel_id: typing.channel_id,
                is_typing: typing.is_typing,
                oder_id: sender.user_id.clone(),
                display_name: sender.display_name.to_owned(),
            })
        })?;
    Ok(Next::Continue)
}
