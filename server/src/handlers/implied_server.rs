//! The server an envelope is about: the `serverId` it names, or, when it names none (Toju's
//! catalogue shapes of `typing`, `chat_message`, `voice_state`, `server_icon_sync_request`), the
//! one server the connection has joined or views.
//!
//! It owns only that choice. It never guesses between several servers and never checks
//! membership: the handler's hub call does, exactly as for a named `serverId`.

use signalbox_protocol::ServerId;

use super::{Refusal, Session, validate};

/// The wire name of the field this module fills in.
const FIELD: &str = "serverId";

/// `given` when the envelope named a server (validated as an id), else the one server in the
/// connection's scope; refused with `INVALID_MESSAGE` naming `serverId` when there is not
/// exactly one.
pub fn resolve(session: &Session, given: Option<ServerId>) -> Result<ServerId, Refusal> {
    if let Some(server) = given {
        validate::id(FIELD, server.as_str())?;
        return Ok(server);
    }
    let mut servers = session.hub().servers_in_scope(session.key());
    match servers.len() {
        1 => Ok(servers.swap_remove(0)),
        0 => Err(Refusal::invalid(format!(
            "missing field `{FIELD}`: this connection has joined or viewed no server it could mean"
        ))),
        n => Err(Refusal::invalid(format!(
            "missing field `{FIELD}`: this connection has joined or viewed {n} servers; name one"
        ))),
    }
}
