//! One handler per client envelope type, each in its own file named after the wire type
//! (`join_server` is [`join_server::handle`]).
//!
//! [`dispatch`] is the one `match` over [`ClientEnvelope`]: it is exhaustive, so an envelope
//! added to the protocol crate does not compile until it has a handler here. It also enforces
//! the lifecycle rule every handler relies on (only `identify` and `keepalive` before
//! `identify`) and turns a [`Refusal`] into the `error` envelope.
//!
//! Handlers are transport-agnostic: they see a [`Session`] (hub connection, identity, shared
//! state) and never frames, sockets or timers. They must never block: database work goes
//! through [`crate::directory::Directory`], hub calls never wait.

mod implied_server;
mod session;
pub(crate) mod validate;

pub mod chat_message;
pub mod forward;
pub mod identify;
pub mod join_server;
pub mod keepalive;
pub mod leave_server;
pub mod plugin_event;
pub mod plugin_requirements;
pub mod server_icon_available;
pub mod server_icon_sync_request;
pub mod status_update;
pub mod typing;
pub mod view_server;
pub mod voice_state;

use signalbox_protocol::{ClientEnvelope, CloseCode, ErrorCode};

pub use session::{Handled, Next, Refusal, Session};

/// Runs the handler of `envelope`; on a refusal, queues the `error` for the client. Returns the
/// close code when the connection must end.
pub async fn dispatch(session: &mut Session, envelope: ClientEnvelope) -> Option<CloseCode> {
    let request_type = envelope.wire_type();
    let result = if session.user.is_none()
        && !matches!(
            envelope,
            ClientEnvelope::Identify(_) | ClientEnvelope::Keepalive(_)
        ) {
        Err(Refusal::new(
            ErrorCode::NotIdentified,
            format!("send `identify` before `{request_type}`"),
        ))
    } else {
        route(session, envelope).await
    };
    match result {
        Ok(Next::Continue) => None,
        Ok(Next::Close(code)) => Some(code),
        Err(refusal) => {
            session.send(&refusal.to_event(Some(request_type)));
            refusal.close
        }
    }
}

async fn route(session: &mut Session, envelope: ClientEnvelope) -> Handled {
    use ClientEnvelope as C;
    match envelope {
        C::Identify(m) => identify::handle(session, m).await,
        C::Keepalive(m) => keepalive::handle(session, m),
        C::StatusUpdate(m) => status_update::handle(session, m),
        C::JoinServer(m) => join_server::handle(session, m).await,
        C::ViewServer(m) => view_server::handle(session, m).await,
        C::LeaveServer(m) => leave_server::handle(session, m),
        C::ChatMessage(m) => chat_message::handle(session, m),
        C::Typing(m) => typing::handle(session, m),
        C::VoiceState(m) => voice_state::handle(session, m),
        C::ServerIconAvailable(m) => server_icon_available::handle(session, m),
        C::ServerIconSyncRequest(m) => server_icon_sync_request::handle(session, m),
        C::PluginEvent(m) => plugin_event::handle(session, m).await,
        forwarded @ (C::Offer(_)
        | C::Answer(_)
        | C::IceCandidate(_)
        | C::DirectCall(_)
        | C::DirectMessage(_)
        | C::DirectMessageStatus(_)
        | C::DirectMessageMutation(_)
        | C::DirectMessageSync(_)
        | C::DirectMessageSyncRequest(_)
        | C::ServerIconPeerRequest(_)
        | C::ServerIconPeerData(_)
        | C::RpcRequest(_)
        | C::RpcResponse(_)) => forward::handle(session, forwarded).await,
    }
}
