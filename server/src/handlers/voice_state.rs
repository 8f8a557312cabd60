//! `voice_state`: pure signaling, the server keeps no voice room state. Broadcast to the server
//! with `oderId` set by the server; the user's own connections are left out (each device
//! reports its own voice state).

use signalbox_protocol::ServerEnvelope;
use signalbox_protocol::ws::{VoiceState, VoiceStateBroadcast};

use super::{Handled, Next, Session, validate};
use crate::hub::Exclude;

/// Handles `voice_state`.
pub fn handle(session: &Session, voice: VoiceState) -> Handled {
    validate::id("serverId", voice.server_id.as_str())?;
    let server = voice.server_id.clone();
    session
        .hub()
        .broadcast(session.key(), &server, Exclude::SenderUser, |sender| {
            ServerEnvelope::VoiceState(VoiceStateBroadcast {
                server_id: voice.server_id,
                oder_id: sender.user_id.clone(),
                voice_state: voice.voice_state,
            })
        })?;
    Ok(Next::Continue)
}
