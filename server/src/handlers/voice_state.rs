//! `voice_state`: pure signaling, the server keeps no voice room state. Broadcast to the server
//! with `oderId` set by the server; the user's own connections are left out (each device
//! reports its own voice state).

use signalbox_protocol::ServerEnvelope;
use signalbox_protocol::ws::{VoiceState, VoiceStateBroadcast};

use super::{Handled, Next, Session, implied_server};
use crate::hub::Exclude;

/// Handles `voice_state` (without `serverId`, and without the `voiceState` wrapper, too: see
/// [`implied_server`] and [`VoiceState::into_state`]).
pub fn handle(session: &Session, mut voice: VoiceState) -> Handled {
    let server = implied_server::resolve(session, voice.server_id.take())?;
    let state = voice.into_state();
    session
        .hub()
        .broadcast(session.key(), &server, Exclude::SenderUser, |sender| {
            ServerEnvelope::VoiceState(VoiceStateBroadcast {
                server_id: server.clone(),
                oder_id: sender.user_id.clone(),
                voice_state: state,
            })
        })?;
    Ok(Next::Continue)
}
