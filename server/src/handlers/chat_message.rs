//! `chat_message`: broadcast to every joined connection of the server but the sending one, with
//! `senderId`, `senderName` and `timestamp` set by the server (never the client's). The sender's
//! other devices receive it too, so a message typed on the phone shows on the laptop.

use signalbox_protocol::ws::{ChatMessage, ChatMessageBroadcast};
use signalbox_protocol::{ServerEnvelope, TimestampMs};

use super::{Handled, Next, Session, implied_server};
use crate::hub::Exclude;

/// Handles `chat_message` (without `serverId` too: see [`implied_server`]).
pub fn handle(session: &Session, chat: ChatMessage) -> Handled {
    let server = implied_server::resolve(session, chat.server_id)?;
    session.hub().broadcast(
        session.key(),
        &server,
        Exclude::SenderConnection,
        |sender| {
            ServerEnvelope::ChatMessage(ChatMessageBroadcast {
                server_id: server.clone(),
                message: chat.message,
                sender_id: sender.user_id.clone(),
                sender_name: sender.display_name.to_owned(),
                timestamp: TimestampMs::now(),
            })
        },
    )?;
    Ok(Next::Continue)
}
