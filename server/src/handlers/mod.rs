//! One handler per client envelope type, each in its own file named after the wire type
//! (`join_server` is [`join_server::handle`]).
//!
//! [`dispatch`] runs the one exhaustive `match` over [`ClientEnvelope`], so an envelope added
//! to the protocol crate does not compile until it has a handler here. It also enforces the
//! lifecycle rule every handler relies on (only `identify` and `keepalive` before `identify`)
//! and turns a [`Refusal`] into the `error` envelope. [`dispatch_now`] does the same, without a
//! future, for the handlers that never wait (most of the traffic), and hands every other
//! envelope back for [`dispatch`].
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
    let result = match lifecycle(session, &envelope) {
        Err(refusal) => Err(refusal),
        Ok(()) => route(session, envelope).await,
    };
    conclude(session, request_type, result)
}

/// What [`dispatch_now`] did with an envelope.
#[derive(Debug)]
pub enum Immediate {
    /// Handled (or refused) already; `Some` when the connection must end with that code.
    Done(Option<CloseCode>),
    /// This envelope's handler may wait (on the database, the plugins, the cluster backplane):
    /// hand it to [`dispatch`].
    Wait(ClientEnvelope),
}

/// [`dispatch`] without a future, for the envelopes whose handlers never wait (forwards on a
/// standalone server, presence, chat, typing, voice, icons, `keepalive`) and for envelopes the
/// lifecycle rule refuses. Those are most of a connection's traffic, and a transport can then
/// run them without allocating a future per envelope. The outcome is exactly what [`dispatch`]
/// would give; any other envelope comes back as [`Immediate::Wait`].
pub fn dispatch_now(session: &mut Session, envelope: ClientEnvelope) -> Immediate {
    let request_type = envelope.wire_type();
    let result = match lifecycle(session, &envelope) {
        Err(refusal) => Err(refusal),
        Ok(()) => match route_now(session, envelope) {
            Routed::Handled(result) => result,
            Routed::Waits(waits) => return Immediate::Wait(waits),
        },
    };
    Immediate::Done(conclude(session, request_type, result))
}

/// The lifecycle rule: only `identify` and `keepalive` before `identify`.
fn lifecycle(session: &Session, envelope: &ClientEnvelope) -> Result<(), Refusal> {
    if session.user.is_none()
        && !matches!(
            envelope,
            ClientEnvelope::Identify(_) | ClientEnvelope::Keepalive(_)
        )
    {
        return Err(Refusal::new(
            ErrorCode::NotIdentified,
            format!("send `identify` before `{}`", envelope.wire_type()),
        ));
    }
    Ok(())
}

/// Queues the `error` of a refusal; the close code when the connection must end.
fn conclude(session: &Session, request_type: &str, result: Handled) -> Option<CloseCode> {
    match result {
        Ok(Next::Continue) => None,
        Ok(Next::Close(code)) => Some(code),
        Err(refusal) => {
            session.send(&refusal.to_event(Some(request_type)));
            refusal.close
        }
    }
}

/// The handlers that never wait, run at once; the envelope back when its handler may wait.
/// [`route`] stays the one exhaustive match: an envelope missing here only takes the slower
/// path.
fn route_now(session: &mut Session, envelope: ClientEnvelope) -> Routed {
    use ClientEnvelope as C;
    Routed::Handled(match envelope {
        C::Keepalive(m) => keepalive::handle(session, m),
        C::StatusUpdate(m) => status_update::handle(session, m),
        C::LeaveServer(m) => leave_server::handle(session, m),
        C::ChatMessage(m) => chat_message::handle(session, m),
        C::Typing(m) => typing::handle(session, m),
        C::VoiceState(m) => voice_state::handle(session, m),
        C::ServerIconAvailable(m) => server_icon_available::handle(session, m),
        C::ServerIconSyncRequest(m) => server_icon_sync_request::handle(session, m),
        forwarded if forwarded.forward_target().is_some() && session.hub().remote().is_none() => {
            forward::handle_local(session, forwarded)
        }
        waits => return Routed::Waits(waits),
    })
}

/// What [`route_now`] did.
enum Routed {
    /// The handler ran.
    Handled(Handled),
    /// The handler may wait: the envelope, untouched.
    Waits(ClientEnvelope),
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
